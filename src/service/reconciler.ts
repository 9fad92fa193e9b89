/**
 * The reconciler: rebuilds or repairs the Redis projection from Temporal, the source of truth.
 *
 * 1. List: visibility lists every publishSingle / publishBatch execution that is open, or closed within the
 *    window. An open task's document comes from its `taskState` query (always current), falling back to its memo;
 *    a closed task's from its memo (the projector keeps it equal to the final document), falling back to a query.
 *    Each document goes through the store's versioned write: never backwards, never over a tombstone.
 * 2. Sweep: a document whose task visibility did not list is removed only if Temporal itself (describe) does not
 *    know the task, it is older than the listing (minus the visibility lag), and it is unchanged since it was read.
 *    One that still says unfinished while describe says its workflow stopped is settled as failed.
 * 3. Indexes: members without a document, or that their document says do not belong there, are removed.
 *
 * Idempotent and safe while traffic flows: every step is a versioned or compare-and-set script.
 */
import { isDeepStrictEqual } from 'node:util';
import { WorkflowNotFoundError, type Client, type WorkflowExecutionInfo } from '@temporalio/client';
import type { Redis } from 'ioredis';
import type { Logger } from '../log';
import { taskStateQuery } from '../shared/definitions';
import type { TaskDoc, TaskStatus } from '../shared/types';
import { DOC_MEMO_KEY } from '../shared/task-doc';
import { TASK_WORKFLOW_TYPES } from '../shared/workflow-contracts';
import { KEY_PREFIX, TASK_PATTERN, taskKey } from '../projection/keys';
import type { ProjectionStore } from '../projection/store';

export interface ReconcileOptions {
  client: Client;
  store: ProjectionStore;
  /** The Redis the store writes to (scanned for stale keys). Default: the store's own client. */
  redis?: Redis;
  /** Checked against the client's namespace, which is the one read. */
  namespace?: string;
  /** Closed tasks closed this recently are rebuilt; open ones always are. Default: the status TTL (7 days). */
  windowDays?: number;
  log?: Logger;
  /** Queries and describes in flight at once. Default 20. */
  concurrency?: number;
  /** Deadline of one query. Default 5000. */
  queryTimeoutMs?: number;
  /**
   * Tries of a query before the run falls back (memo, then the document Redis has). Default 3, 1 s then 2 s apart:
   * a query fails while the task's worker is coming back (it has to replay the history first).
   */
  queryAttempts?: number;
  /** Pause before the second try; doubled each time. Default 1000. */
  queryRetryDelayMs?: number;
  /** A document created this shortly before the listing started is never removed (visibility lags). Default 60 s. */
  visibilityLagMs?: number;
  /** Called as work progresses; the activity heartbeats with it. */
  onProgress?: (progress: ReconcileProgress) => void;
  /** Aborts the run (the activity passes its cancellation signal). */
  signal?: AbortSignal;
}

export interface ReconcileProgress {
  phase: 'list' | 'sweep' | 'indexes';
  scanned: number;
  written: number;
  removed: number;
}

export interface ReconcileReport {
  namespace: string;
  windowDays: number;
  /** When the listing started. */
  listedAt: string;
  /** Executions reconciled: open, or closed within the window (runs superseded by continue-as-new not counted). */
  scanned: number;
  /** Documents written because Redis had none or an older version. */
  written: number;
  /** Documents Redis already had at the same or a newer version. */
  unchanged: number;
  /** Of `written`: closed tasks whose document Redis had at the same version but with other content. */
  corrected: number;
  /** Tasks deleted (tombstoned) after they were created: not brought back. */
  skippedDeleted: number;
  /** Closed tasks whose document would have expired by now (7 days after its last change): not brought back. */
  skippedExpired: number;
  /** Documents read from a workflow query / from the workflow's memo. */
  fromQuery: number;
  fromMemo: number;
  /**
   * Tasks whose query failed every try and that have no memo, while Redis holds their document: kept as it is (an
   * open workflow keeps writing it; a closed one is settled from it if it still looks unfinished). Not errors.
   */
  keptStored: number;
  /** Queries that failed and were tried again. */
  queriesRetried: number;
  /** Documents removed because Temporal does not know their task. */
  removed: number;
  /** Index entries removed: no document, or their document says they do not belong there. */
  removedIndexEntries: number;
  /** Tasks that could not be reconciled (no document could be had, or a call failed). */
  errors: number;
  durationMs: number;
  /** The first task ids written and removed (at most 100 each). */
  changed: { written: string[]; removed: string[] };
  /** The first errors (at most 20). */
  errorSamples: { taskId: string | null; message: string }[];
}

const SAMPLE_LIMIT = 100;
const ERROR_SAMPLE_LIMIT = 20;
const SCAN_COUNT = 1000;
const UNFINISHED: ReadonlySet<TaskStatus> = new Set<TaskStatus>(['pending', 'running', 'retry']);
/** Closed without the workflow writing its own outcome. */
const ABANDONED = new Set(['TERMINATED', 'TIMED_OUT', 'FAILED']);

/** The visibility query: every task workflow that is open, or closed after `since`. */
export function visibilityQuery(since: Date): string {
  const types = TASK_WORKFLOW_TYPES.map((t) => `'${t}'`).join(', ');
  return `WorkflowType IN (${types}) AND (ExecutionStatus = 'Running' OR CloseTime > '${since.toISOString()}')`;
}

export async function reconcile(opts: ReconcileOptions): Promise<ReconcileReport> {
  const { client, store } = opts;
  const redis = opts.redis ?? store.redis;
  const namespace = client.options.namespace;
  if (opts.namespace !== undefined && opts.namespace !== namespace)
    throw new Error(`namespace ${opts.namespace} asked for, but the client reads ${namespace}`);
  const windowDays = opts.windowDays ?? store.ttlSeconds / 86_400;
  const concurrency = opts.concurrency ?? 20;
  const queryTimeoutMs = opts.queryTimeoutMs ?? 5000;
  const visibilityLagMs = opts.visibilityLagMs ?? 60_000;
  const started = Date.now();
  const report: ReconcileReport = {
    namespace,
    windowDays,
    listedAt: new Date(started).toISOString(),
    scanned: 0,
    written: 0,
    unchanged: 0,
    corrected: 0,
    skippedDeleted: 0,
    skippedExpired: 0,
    fromQuery: 0,
    fromMemo: 0,
    keptStored: 0,
    queriesRetried: 0,
    removed: 0,
    removedIndexEntries: 0,
    errors: 0,
    durationMs: 0,
    changed: { written: [], removed: [] },
    errorSamples: [],
  };
  const checkAborted = () => {
    if (opts.signal?.aborted) throw opts.signal.reason ?? new Error('reconcile aborted');
  };
  const progress = (phase: ReconcileProgress['phase']) =>
    opts.onProgress?.({ phase, scanned: report.scanned, written: report.written, removed: report.removed });
  const fail = (taskId: string | null, err: unknown) => {
    report.errors++;
    const message = err instanceof Error ? err.message : String(err);
    // The first few in full; the count says how many more (thousands of lines would say nothing more).
    if (report.errorSamples.length < ERROR_SAMPLE_LIMIT) {
      report.errorSamples.push({ taskId, message });
      opts.log?.warn('reconcile: task not reconciled', { taskId, error: message });
    }
  };

  const queryAttempts = Math.max(1, opts.queryAttempts ?? 3);
  const queryRetryDelayMs = opts.queryRetryDelayMs ?? 1000;
  const queryOnce = (e: WorkflowExecutionInfo): Promise<TaskDoc> =>
    client.withDeadline(Date.now() + queryTimeoutMs, () =>
      client.workflow.getHandle(e.workflowId, e.runId).query(taskStateQuery),
    );
  /** The task's query, tried again after a pause when it fails (its worker may be replaying, or restarting). */
  const query = async (e: WorkflowExecutionInfo): Promise<TaskDoc> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await queryOnce(e);
      } catch (err) {
        if (attempt >= queryAttempts) throw err;
        checkAborted();
        report.queriesRetried++;
        await new Promise((r) => setTimeout(r, queryRetryDelayMs * 2 ** (attempt - 1)));
      }
    }
  };

  /** The stored document of the task, when it has one that parses. */
  const storedDoc = async (taskId: string, raw?: string | null): Promise<TaskDoc | undefined> => {
    const text = raw === undefined ? await redis.get(taskKey(taskId)) : raw;
    const doc = parseDoc(text);
    return doc?.task_id === taskId ? doc : undefined;
  };

  /**
   * The document of a workflow that closed without writing its outcome. It starts from the newest document known:
   * Temporal's (query or memo) or Redis's. The memo changes only with the status, and when the query cannot answer
   * it is all Temporal gives, so Redis may hold a later version the workflow itself projected (one more progress
   * stage, say). Starting from the older one would produce a version Redis already has: no write, and the task
   * would show as running for good.
   */
  const abandonedDoc = async (doc: TaskDoc, closed: Pick<WorkflowExecutionInfo, 'status' | 'closeTime'>) => {
    const stored = await storedDoc(doc.task_id);
    return closedDoc(stored && stored.version > doc.version ? stored : doc, closed);
  };

  /** The task's document as Temporal knows it, and where it came from. */
  const docOf = async (
    e: WorkflowExecutionInfo,
  ): Promise<{ doc: TaskDoc; source: 'query' | 'memo' | 'stored'; closed: boolean }> => {
    const memo = memoDoc(e);
    if (e.status.name === 'RUNNING') {
      let found: { doc: TaskDoc; source: 'query' | 'memo' | 'stored' };
      try {
        found = { doc: await query(e), source: 'query' };
      } catch (err) {
        // An open task keeps writing its own document: the one Redis has will do until it does.
        const stored = memo ? undefined : await storedDoc(e.workflowId);
        if (!memo && !stored) throw err;
        found = memo ? { doc: memo, source: 'memo' } : { doc: stored!, source: 'stored' };
        opts.log?.warn('reconcile: query failed; using the ' + found.source + ' document', {
          taskId: e.workflowId,
          error: err instanceof Error ? err.message : String(err),
        });
      }
      if (!unfinished(found.doc)) return { ...found, closed: false };
      // Visibility lags behind: a run it lists as running may have been terminated since, and its query still answers
      // with the last state (running). Describe reads the run's own record.
      const d = await client.workflow
        .getHandle(e.workflowId, e.runId)
        .describe()
        .catch((err: unknown) => {
          opts.log?.warn('reconcile: describe failed; the next run checks again', {
            taskId: e.workflowId,
            error: err instanceof Error ? err.message : String(err),
          });
          return undefined;
        });
      return d && d.status.name !== 'RUNNING'
        ? { ...found, doc: await abandonedDoc(found.doc, d), closed: true }
        : { ...found, closed: false };
    }
    // A closed workflow's query replays its whole history on a worker: only when there is no memo (workflows
    // started before the memo existed, batches, documents too large for a memo).
    if (memo) return { doc: await abandonedDoc(memo, e), source: 'memo', closed: true };
    try {
      return { doc: await abandonedDoc(await query(e), e), source: 'query', closed: true };
    } catch (err) {
      // No worker to replay it (a batch has no memo): what the workflow last wrote will do, settled if it must be.
      const stored = await storedDoc(e.workflowId);
      if (!stored) throw err;
      opts.log?.warn('reconcile: query of a closed task failed; using the stored document', {
        taskId: e.workflowId,
        error: err instanceof Error ? err.message : String(err),
      });
      return { doc: await abandonedDoc(stored, e), source: 'stored', closed: true };
    }
  };

  /** Writes a document (versioned); a closed task's gets what is left of its 7 days, or is not brought back. */
  const applyDoc = async (doc: TaskDoc, closed: boolean): Promise<'expired' | void> => {
    let ttlSeconds: number | undefined;
    if (closed) {
      // A closed task's document expires 7 days after its last change, as it would have without the rebuild.
      const age = Math.floor((Date.now() - Date.parse(doc.updated_at)) / 1000);
      ttlSeconds = Number.isFinite(age) ? store.ttlSeconds - Math.max(0, age) : store.ttlSeconds;
      if (ttlSeconds <= 0) {
        report.skippedExpired++;
        return 'expired';
      }
    }
    let outcome = await store.apply(doc, { ttlSeconds });
    if (outcome === 'stale' && closed) {
      // A closed task's document is final, so Redis must hold exactly it. At the same version it can still differ:
      // a worker that lost its workflow task (killed mid-task, or the task moved to another worker) may already
      // have projected that version from a run of the workflow code that history then did not keep (workflow time
      // differs on the rerun). The versioned write alone would keep that copy for good.
      const raw = await redis.get(taskKey(doc.task_id));
      const stored = parseDoc(raw);
      if (raw !== null && stored?.version === doc.version && !isDeepStrictEqual(stored, doc)) {
        outcome = await store.apply(doc, { ttlSeconds, replacing: raw });
        if (outcome === 'applied') report.corrected++;
      }
    }
    if (outcome === 'applied') {
      report.written++;
      if (report.changed.written.length < SAMPLE_LIMIT) report.changed.written.push(doc.task_id);
    } else if (outcome === 'deleted') report.skippedDeleted++;
    else report.unchanged++;
  };

  // Without Redis every write would fail one by one: stop at once instead.
  await redis.ping();

  // 1. List.
  const known = new Set<string>();
  const listing = client.workflow.list({ query: visibilityQuery(new Date(started - windowDays * 86_400_000)) });
  await forEachLimit(listing, concurrency, checkAborted, async (e) => {
    known.add(e.workflowId);
    // The chain's current run (open, or closed within the window) carries the task.
    if (e.status.name === 'CONTINUED_AS_NEW') return;
    report.scanned++;
    try {
      const { doc, source, closed } = await docOf(e);
      if (source === 'query') report.fromQuery++;
      else if (source === 'memo') report.fromMemo++;
      else report.keptStored++;
      await applyDoc(doc, closed);
    } catch (err) {
      fail(e.workflowId, err);
    }
    progress('list');
  });

  // 2. Sweep: documents of tasks that visibility did not list. Temporal's own record (describe) decides:
  //    - unknown to Temporal: removed, unless created so recently that visibility may simply not show it yet;
  //    - closed without writing its outcome but still shown as unfinished (terminated before the window, or so
  //      recently that visibility still lists it elsewhere): settled as in the listing, from the newest document;
  //    - otherwise left alone (running, or closed and already showing how it ended).
  const candidates: { id: string; raw: string; young: boolean }[] = [];
  const youngSince = started - visibilityLagMs;
  let cursor = '0';
  do {
    checkAborted();
    const [next, keys] = await redis.scan(cursor, 'MATCH', TASK_PATTERN, 'COUNT', SCAN_COUNT, 'TYPE', 'string');
    cursor = next;
    const ids = keys.map((k) => k.slice(KEY_PREFIX.task.length)).filter((id) => !known.has(id));
    if (ids.length === 0) continue;
    const raws = await redis.mget(ids.map(taskKey));
    ids.forEach((id, i) => {
      const raw = raws[i];
      if (raw === null || raw === undefined) return;
      const young = createdAtMs(raw) >= youngSince;
      // A young finished document needs nothing from Temporal: it may just not be visible yet.
      if (young && !unfinished(parseDoc(raw))) return;
      candidates.push({ id, raw, young });
    });
    progress('sweep');
  } while (cursor !== '0');
  await forEachLimit(candidates, concurrency, checkAborted, async ({ id, raw, young }) => {
    const remove = async () => {
      // No tombstone: nothing can write this task again, and a new task reusing the id must not be blocked.
      if (await store.delete(id, { tombstone: false, ifUnchanged: raw }).catch((e: unknown) => fail(id, e))) {
        report.removed++;
        if (report.changed.removed.length < SAMPLE_LIMIT) report.changed.removed.push(id);
      }
    };
    try {
      // Authoritative, unlike visibility: a task closed before the window (but within retention) is kept.
      const d = await client.workflow.getHandle(id).describe();
      const stored = await storedDoc(id, raw);
      if (d.status.name === 'RUNNING' || !stored || !unfinished(stored)) return;
      const settled = await abandonedDoc(memoDoc(d) ?? stored, d);
      // Stopped so long ago that its document would have expired by now: it goes, rather than say "running".
      if ((await applyDoc(settled, true)) === 'expired') await remove();
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) fail(id, err);
      else if (!young) await remove();
    } finally {
      progress('sweep');
    }
  });

  // 3. Indexes.
  checkAborted();
  progress('indexes');
  report.removedIndexEntries = (await store.repairIndexes()).removed;

  report.durationMs = Date.now() - started;
  const { changed: _changed, errorSamples: _samples, ...summary } = report;
  opts.log?.info('reconcile done', summary);
  return report;
}

/** The document in the execution's memo, if it has a plausible one (also the fault suite's truth of a closed run). */
export function memoDoc(e: Pick<WorkflowExecutionInfo, 'workflowId' | 'memo'>): TaskDoc | undefined {
  const doc = e.memo?.[DOC_MEMO_KEY] as Partial<TaskDoc> | null | undefined;
  if (!doc || typeof doc !== 'object') return undefined;
  if (doc.task_id !== e.workflowId || typeof doc.version !== 'number' || typeof doc.status !== 'string')
    return undefined;
  return doc as TaskDoc;
}

/**
 * A workflow that was terminated, timed out or failed never wrote its outcome: its last document still says
 * pending, running, retry or in review. Temporal's truth is that it has stopped; show it as failed, one version
 * on (deterministic, so the next run finds it unchanged).
 */
function closedDoc(doc: TaskDoc, e: Pick<WorkflowExecutionInfo, 'status' | 'closeTime'>): TaskDoc {
  if (!ABANDONED.has(e.status.name)) return doc;
  if (!unfinished(doc)) return doc;
  const at = e.closeTime?.toISOString() ?? doc.updated_at;
  const how = e.status.name.toLowerCase().replace('_', ' ');
  return {
    ...doc,
    status: 'failed',
    version: doc.version + 1,
    updated_at: at,
    completed_at: at,
    progress: null,
    // An upload in flight when the workflow stopped may have reached the platform.
    error_kind: doc.status === 'running' ? 'Unconfirmed' : doc.error_kind,
    error_message: `the workflow was ${how} at ${at} before the task finished; its history in Temporal has the details`,
    review: doc.review?.open ? { ...doc.review, open: false, decided_at: at, note: `workflow ${how}` } : doc.review,
  };
}

/** created_at of a stored document in epoch ms; 0 when unreadable (an unreadable document is fair game). */
function createdAtMs(raw: string): number {
  const ms = Date.parse(parseDoc(raw)?.created_at ?? '');
  return Number.isFinite(ms) ? ms : 0;
}

function parseDoc(raw: string | null): TaskDoc | undefined {
  if (raw === null) return undefined;
  try {
    const doc = JSON.parse(raw) as TaskDoc | null;
    return doc && typeof doc === 'object' ? doc : undefined;
  } catch {
    return undefined;
  }
}

/** Still waiting for its workflow to say how it ended: pending, running, retrying, or in review. */
function unfinished(doc: TaskDoc | undefined): boolean {
  return doc !== undefined && (UNFINISHED.has(doc.status) || doc.review?.open === true);
}

/**
 * Runs `fn` over the items with at most `limit` in flight; `fn` must not reject. Not p-limit: the listing is an
 * async iterable of possibly 100,000s of executions, and this waits for a free slot before pulling the next one,
 * where p-limit would queue them all.
 */
async function forEachLimit<T>(
  items: AsyncIterable<T> | Iterable<T>,
  limit: number,
  checkAborted: () => void,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  const running = new Set<Promise<void>>();
  try {
    for await (const item of items) {
      checkAborted();
      const p: Promise<void> = fn(item).finally(() => running.delete(p));
      running.add(p);
      if (running.size >= limit) await Promise.race(running);
    }
  } finally {
    await Promise.all(running);
  }
}
