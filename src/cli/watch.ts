/**
 * `pubflow watch <id>`: polls GET /tasks/:id (every second by default) until the task or batch has an outcome, and
 * shows its progress: a bar redrawn in place when stderr is a terminal, else a plain line whenever it changes.
 * The exit code is the outcome's: 0 success, 1 failed or cancelled.
 */
import type { z } from 'zod';
import type { TaskDocSchema } from '../api/schemas';
import type { ApiClient } from './client';
import { ApiResponseError, CliError, EXIT, type ExitCode } from './errors';
import { json, paint, plain, safe, shortTime, statusStyle, truncate, type Io } from './output';

export type TaskDoc = z.infer<typeof TaskDocSchema>;

export interface WatchOptions {
  intervalMs: number;
  /** How long polling may keep failing (API restarting, network) before giving up. */
  giveUpMs: number;
  json: boolean;
  /**
   * A failed outcome is final only once it holds: the same document version read again this long after (default
   * 2 s), and for a batch its failed items in the index as many as its counts say. Right after `retry` or
   * `retry-all` the mirror still says "failed" for a moment (a batch's document follows its items' reports, written
   * at most once a second); without this, `retry-all && watch` ended at once with exit 1.
   */
  settleMs?: number;
}

export const DEFAULT_SETTLE_MS = 2000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function isFinished(doc: TaskDoc): boolean {
  return doc.status === 'success' || doc.status === 'failed' || doc.status === 'cancelled';
}

export async function watch(client: ApiClient, io: Io, id: string, opts: WatchOptions): Promise<ExitCode> {
  const path = `/tasks/${encodeURIComponent(id)}`;
  let last = '';
  let failingSince: number | undefined;
  let drawn = false;
  // The first read of the current failed version (see WatchOptions.settleMs).
  let candidate: { version: number; since: number } | null = null;
  const onInt = () => {
    if (drawn && io.errTty) io.err('\n');
    process.exit(130);
  };
  process.once('SIGINT', onInt);
  try {
    for (;;) {
      let doc: TaskDoc;
      try {
        doc = await client.get<TaskDoc>(path);
        if (failingSince !== undefined) {
          failingSince = undefined;
          last = ''; // draw again after the warning line
        }
      } catch (err) {
        // A wrong id or token will not get better; an API that is restarting may.
        if (!(err instanceof CliError) || !transient(err)) throw err;
        failingSince ??= Date.now();
        if (Date.now() - failingSince > opts.giveUpMs) throw err;
        if (last !== 'failing') {
          if (drawn && io.errTty) io.err('\n');
          io.err(`watch: ${err.message}; trying again for up to ${Math.round(opts.giveUpMs / 1000)} s\n`);
          last = 'failing';
          drawn = false;
        }
        await sleep(opts.intervalMs);
        continue;
      }
      const line = progressLine(doc, io);
      if (io.errTty) {
        io.err(`\r${fitLine(line, io.columns)}\x1b[K`);
        drawn = true;
      } else if (line !== last) io.err(line + '\n');
      last = line;
      if (doc.status === 'failed') {
        const moving = doc.counts !== undefined && (await itemsMovedOn(client, doc));
        if (moving || candidate?.version !== doc.version) candidate = { version: doc.version, since: Date.now() };
        if (moving || Date.now() - candidate.since < (opts.settleMs ?? DEFAULT_SETTLE_MS)) {
          await sleep(Math.min(opts.intervalMs, 500));
          continue;
        }
      }
      if (isFinished(doc)) {
        if (drawn) io.err('\n');
        io.out(opts.json ? json(doc) : outcomeLine(doc, io.color && io.outTty) + '\n');
        return doc.status === 'success' ? EXIT.ok : EXIT.outcome;
      }
      await sleep(opts.intervalMs);
    }
  } finally {
    process.removeListener('SIGINT', onInt);
  }
}

/** A failed batch whose items in the index are fewer failed than its counts say: some are being retried. */
async function itemsMovedOn(client: ApiClient, doc: TaskDoc): Promise<boolean> {
  const failed = await client.get<{ total: number | null }>('/tasks', {
    parent: doc.task_id,
    status: 'failed',
    limit: 1,
  });
  return failed.total !== null && failed.total < (doc.counts?.failed ?? 0);
}

function transient(err: CliError): boolean {
  if (!(err instanceof ApiResponseError)) return err.exitCode === EXIT.api; // network, timeout
  return err.status === 429 || err.status >= 500;
}

export function bar(fraction: number, width: number, unicode: boolean): string {
  const f = Math.min(1, Math.max(0, fraction));
  const full = Math.round(f * width);
  return unicode
    ? '█'.repeat(full) + '░'.repeat(width - full)
    : '[' + '#'.repeat(full) + '-'.repeat(width - full) + ']';
}

/** One line of progress; on a terminal with a bar sized to fit. */
export function progressLine(doc: TaskDoc, io: Io): string {
  const color = io.color && io.errTty;
  const status = paint(color, statusStyle(doc.status), doc.status);
  const id = safe(doc.task_id);
  if (doc.counts) {
    const c = doc.counts;
    const settled = c.success + c.failed + c.cancelled;
    const pct = c.total === 0 ? 100 : Math.floor((settled * 100) / c.total);
    const tail =
      `${pct}% ${settled}/${c.total} done: success ${c.success}, failed ${c.failed}, cancelled ${c.cancelled}; ` +
      `running ${c.running}, pending ${c.pending} (${status})`;
    return io.errTty
      ? `${id} ${bar(settled / Math.max(1, c.total), barWidth(io, id, tail), true)} ${tail}`
      : `${id} ${tail}`;
  }
  const pct = doc.status === 'success' ? 100 : (doc.progress?.percent ?? 0);
  const stage = doc.progress?.stage ? ` ${safe(doc.progress.stage)}` : '';
  const waiting =
    doc.status === 'pending' && doc.scheduled_for && Date.parse(doc.scheduled_for) > Date.now()
      ? `, waiting until ${shortTime(doc.scheduled_for)}`
      : '';
  const attempt = doc.attempt > 1 ? `, attempt ${doc.attempt}` : '';
  const tail = `${Math.floor(pct)}%${stage} (${status}${attempt}${waiting})`;
  return io.errTty ? `${id} ${bar(pct / 100, barWidth(io, id, tail), true)} ${tail}` : `${id} ${tail}`;
}

/** A line wider than the terminal would wrap, and `\r` would then redraw only its last row. */
export function fitLine(line: string, columns: number): string {
  const text = plain(line);
  return text.length < columns ? line : truncate(text, Math.max(1, columns - 1));
}

function barWidth(io: Io, id: string, tail: string): number {
  const visible = plain(tail).length + id.length + 2;
  return Math.max(10, Math.min(40, io.columns - visible - 1));
}

/** The last line, on stdout: the outcome and what to do next. */
export function outcomeLine(doc: TaskDoc, color: boolean): string {
  const id = safe(doc.task_id);
  const status = paint(color, statusStyle(doc.status), doc.status);
  if (doc.counts) {
    const c = doc.counts;
    if (doc.status === 'success') return `${id} ${status}: all ${c.total} published`;
    const hint = c.failed > 0 ? `; see \`pubflow reviews --batch ${id}\`` : '';
    return `${id} ${status}: ${c.success} of ${c.total} published, ${c.failed} failed, ${c.cancelled} cancelled${hint}`;
  }
  if (doc.status === 'success') return `${id} ${status}${doc.result?.url ? `: ${safe(doc.result.url)}` : ''}`;
  if (doc.status === 'cancelled') return `${id} ${status}`;
  const review = doc.review?.open
    ? ` (in review, ${doc.review.kind}: ${safe(doc.review.message)}); \`pubflow retry ${id}\`, \`resolve\` or \`discard\``
    : doc.error_message
      ? `: ${safe(doc.error_message)}`
      : '';
  return `${id} ${status}${review}`;
}
