/**
 * Live updates for the desk: one server-side loop per API process reads the Redis projection once a second for the
 * union of the task ids on every open page (one MGET), plus the queue counts when a page asks for them, and pushes
 * what changed to each page over server-sent events. However many tabs are open, Redis sees one read a second.
 */
import type { Response } from 'express';
import type Redis from 'ioredis';
import type { Logger } from '../log';
import { taskKey } from '../projection/keys';
import type { TaskStateManager } from '../projection/task-state-manager';
import type { TaskDoc } from '../shared/types';

/** What a page needs to redraw one task: small, and free of anything secret. */
export interface LiveTask {
  id: string;
  status: string;
  version: number;
  attempt: number;
  progress: TaskDoc['progress'];
  counts: TaskDoc['counts'] | null;
  review: { open: boolean; kind: string } | null;
  title: string | null;
  updated_at: string;
}

/** Ids one page may watch. */
export const MAX_LIVE_IDS = 500;

interface Client {
  res: Response;
  ids: Set<string>;
  stats: boolean;
  /** Last version sent per id, so a client only hears of changes. */
  sent: Map<string, number>;
  lastStats: string;
}

export const liveTask = (doc: TaskDoc): LiveTask => ({
  id: doc.task_id,
  status: doc.status,
  version: doc.version,
  attempt: doc.attempt,
  progress: doc.progress,
  counts: doc.counts ?? null,
  review: doc.review ? { open: doc.review.open, kind: doc.review.kind } : null,
  title: typeof doc.data?.title === 'string' ? doc.data.title : null,
  updated_at: doc.updated_at,
});

export class LiveHub {
  private readonly clients = new Set<Client>();
  private timer: NodeJS.Timeout | null = null;
  private ticking = false;

  constructor(
    private readonly deps: { redis: Redis; tsm: TaskStateManager; log: Logger },
    private readonly intervalMs = 1000,
  ) {}

  get size(): number {
    return this.clients.size;
  }

  /** Streams updates for `ids` (and the counts if `stats`) to `res` until the client goes away. */
  subscribe(res: Response, ids: string[], stats: boolean): void {
    res.status(200).set({
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    res.flushHeaders();
    res.write('retry: 2000\n\n');
    const client: Client = { res, ids: new Set(ids.slice(0, MAX_LIVE_IDS)), stats, sent: new Map(), lastStats: '' };
    this.clients.add(client);
    res.on('close', () => {
      this.clients.delete(client);
      if (this.clients.size === 0) this.stop();
    });
    this.start();
    void this.tick();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Ends every stream (API shutdown). */
  close(): void {
    for (const c of this.clients) c.res.end();
    this.clients.clear();
    this.stop();
  }

  private start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.clients.size === 0) return;
    this.ticking = true;
    try {
      const ids = [...new Set([...this.clients].flatMap((c) => [...c.ids]))];
      const docs = new Map<string, LiveTask>();
      if (ids.length > 0) {
        const raws = await this.deps.redis.mget(ids.map(taskKey));
        raws.forEach((raw) => {
          if (raw === null) return;
          try {
            const doc = JSON.parse(raw) as TaskDoc;
            docs.set(doc.task_id, liveTask(doc));
          } catch {
            // a hostile or half-written document: skip it this round
          }
        });
      }
      const wantStats = [...this.clients].some((c) => c.stats);
      const stats = wantStats ? JSON.stringify(await this.deps.tsm.getQueueStats()) : '';
      for (const c of this.clients) {
        for (const id of c.ids) {
          const t = docs.get(id);
          if (!t || c.sent.get(id) === t.version) continue;
          c.sent.set(id, t.version);
          c.res.write(`event: task\ndata: ${JSON.stringify(t)}\n\n`);
        }
        if (c.stats && stats !== c.lastStats) {
          c.lastStats = stats;
          c.res.write(`event: stats\ndata: ${stats}\n\n`);
        }
      }
    } catch (err) {
      this.deps.log.warn('desk live update failed', { error: (err as Error).message });
    } finally {
      this.ticking = false;
    }
  }
}
