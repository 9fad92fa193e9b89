/**
 * The workflow side of the Redis projection.
 *
 * Every state change bumps the document's version. A single background loop ships the newest snapshot to Redis
 * through an activity with unlimited retries; the store applies a write only if its version is newer, so a
 * late or duplicated write never moves a task backwards. The loop never blocks the publish itself: while Redis
 * is down, uploads go on, and the mirror converges when Redis answers again.
 */
import {
  CancellationScope,
  condition,
  proxyActivities,
  proxyLocalActivities,
  sleep,
  upsertMemo,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { createActivities } from '../activities';
import { childStatusSignal } from '../shared/definitions';
import { SEARCH_ATTRIBUTE_KEYS } from '../shared/search-attributes';
import { DOC_MEMO_KEY } from '../shared/task-doc';
import type { TaskDoc } from '../shared/types';
import { LOCAL_REPORTS_PROTOCOL, signalRun } from './signals';

export const projectionOptions = {
  startToCloseTimeout: '15s',
  // Redis may be down for a while: keep trying, never give up, never hammer it.
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
} as const;

const { fileReview } = proxyActivities<ReturnType<typeof createActivities>>(projectionOptions);
const local = proxyLocalActivities<ReturnType<typeof createActivities>>(projectionOptions);

/**
 * Protocol 2: a write is tried a few times within the workflow task (well under a second when Redis refuses
 * connections: the worker's client has no offline queue), then the loop waits on a durable timer and tries again.
 * With unlimited local retries, an outage kept the workflow task open: the worker extended it every few seconds
 * (three history events each time), and signals and updates (a review decision, a gate's grant) waited for it.
 */
export const boundedProjectionOptions = {
  startToCloseTimeout: '5s',
  retry: { initialInterval: '100ms', backoffCoefficient: 2, maximumInterval: '1s', maximumAttempts: 3 },
} as const;
const bounded = proxyLocalActivities<ReturnType<typeof createActivities>>(boundedProjectionOptions);
const boundedRemote = proxyActivities<ReturnType<typeof createActivities>>(boundedProjectionOptions);
/**
 * Protocol 2's write: a few quick tries in this workflow task; false when Redis did not take it.
 *
 * `byActivity` (protocol 6, a batch's write): the same bounded tries, as a regular activity. A batch has no local
 * activity then, so each of its activations is a whole workflow task, grouped on replay exactly as it ran. With its
 * document written by local activity (protocol 5 and before), a replay once delivered child-start resolutions that had
 * arrived while the write ran in the activation that resolved the write, not in the next workflow task as live: the
 * projection loop's timer then came before the dispatch loop's child starts, and every replay of that run failed with
 * TMPRL1100 (SDK 1.24.0; the history is test/replay/known-failures/). A write is at most once a second, so this
 * costs a few events per second of a batch's life, not per item.
 */
export async function tryWriteDoc(doc: TaskDoc, opts: { byActivity?: boolean } = {}): Promise<boolean> {
  try {
    await (opts.byActivity ? boundedRemote : bounded).projectTask(doc);
    return true;
  } catch {
    return false;
  }
}

/** The wait after `failures` failed writes in a row (1 s doubling, at most `max`). */
export function projectionBackoffMs(failures: number, max = PROJECTION_RETRY_MAX_MS): number {
  return Math.min(max, PROJECTION_RETRY_FIRST_MS * 2 ** Math.min(failures, 20));
}

/** Waits between failed writes while Redis is down: 1 s, doubling, up to the policy's projectionRetryMaxMs (5 min). */
export const PROJECTION_RETRY_FIRST_MS = 1000;
export const PROJECTION_RETRY_MAX_MS = 5 * 60_000;

/**
 * Writes a document to Redis. A local activity: it runs on the worker that runs the workflow, inside the workflow
 * task, and is recorded as one marker. As a regular activity each write cost Temporal a task-queue round trip, three
 * history events and a further workflow task; on a 2-core dev server the writes were most of the work of a batch
 * (see docs/benchmarks.md). The guarantees are the same: retried until Redis answers (the worker keeps the
 * workflow task alive meanwhile), versioned on the Redis side, never blocking the publish (the loop runs beside
 * it). Filing a review stays a regular activity (`fileReview`): it is rare, and it is the review library's own
 * entry point.
 */
export async function writeDoc(doc: TaskDoc): Promise<void> {
  await local.projectTask(doc);
}

/**
 * Temporal refuses a memo over 2 MB (limit.memoSize.error) and logs a warning over 2 KB; a document is ~1 KB
 * unless its request carries a long description or large options. Over this many JSON characters (<= 3 bytes
 * each) the memo is cleared instead, and the reconciler queries that workflow.
 */
const DOC_MEMO_MAX_CHARS = 64_000;

/**
 * Mirrors the document into the workflow's memo. Called when the status changes or a review opens or closes, so
 * a closed workflow's memo is its final document.
 */
export function memoizeDoc(doc: TaskDoc): void {
  const json = JSON.stringify(doc);
  upsertMemo({ [DOC_MEMO_KEY]: json.length <= DOC_MEMO_MAX_CHARS ? (JSON.parse(json) as TaskDoc) : null });
}

/** Statuses a task rests in, waiting for a person or a timer: protocol 2 shows them in PubflowStatus at once. */
const RESTING = new Set<TaskDoc['status']>(['failed', 'retry']);

export class Projector {
  private projected = 0;
  private reviewFiledForAttempt = 0;
  /** What the batch was last told (status/review open); a started child is pending in the batch's eyes. */
  private lastReported = 'pending/false';
  /** Protocol 2: the PubflowStatus visibility holds (the API and the batch start a task with `pending`). */
  private visibleStatus: TaskDoc['status'] = 'pending';
  /** Protocol 2: consecutive failed writes (the backoff), and a version bump that cuts a wait short. */
  private failures = 0;

  constructor(
    private readonly doc: TaskDoc,
    private readonly parent: { parentTaskId: string | null; index: number },
    private readonly opts: { protocol?: number; retryMaxMs?: number; firstWritten?: boolean } = {},
  ) {
    // The first document is not written again when the caller says the API wrote it (see publishSingle).
    if (this.lean && opts.firstWritten) this.projected = doc.version;
  }

  private get lean(): boolean {
    return (this.opts.protocol ?? 1) >= 2;
  }

  /** Apply a change to the document and schedule its projection. */
  change(patch: Partial<TaskDoc>): void {
    const statusChanged = patch.status !== undefined && patch.status !== this.doc.status;
    const reviewWasOpen = this.doc.review?.open === true;
    Object.assign(this.doc, patch);
    this.doc.version++;
    if (this.lean) {
      // Each upsert is a history event and a visibility write. The seconds a task runs are not worth one: the
      // status shows where a task rests (in review, waiting to retry) and, from finish(), how it ended.
      if (statusChanged && (RESTING.has(this.doc.status) || RESTING.has(this.visibleStatus))) this.showStatus();
      return;
    }
    if (statusChanged) upsertSearchAttributes([{ key: SEARCH_ATTRIBUTE_KEYS.status, value: this.doc.status }]);
    // A discarded or expired review ends the task without a status change (failed -> failed): memoize that too.
    if (statusChanged || reviewWasOpen !== (this.doc.review?.open === true)) memoizeDoc(this.doc);
  }

  private showStatus(): void {
    if (this.doc.status === this.visibleStatus) return;
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTE_KEYS.status, value: this.doc.status }]);
    this.visibleStatus = this.doc.status;
  }

  /**
   * Protocol 2, just before the run ends: the final status and the final document into visibility, in the same
   * workflow task as the run's close, so the reconciler rebuilds a closed task from its memo alone.
   */
  finish(): void {
    if (!this.lean) return;
    this.showStatus();
    memoizeDoc(this.doc);
  }

  start(): void {
    // Non-cancellable: a cancelled task must still have its "cancelled" status written.
    void CancellationScope.nonCancellable(() => this.loop());
  }

  /** Resolves once the current version is in Redis (and reported to the batch). */
  async flush(): Promise<void> {
    await condition(() => this.projected >= this.doc.version);
  }

  private async loop(): Promise<void> {
    for (;;) {
      await condition(() => this.doc.version > this.projected);
      const snapshot = JSON.parse(JSON.stringify(this.doc)) as TaskDoc;
      const review = snapshot.review;
      if (review?.open && review.attempt > this.reviewFiledForAttempt) {
        await fileReview(snapshot);
        this.reviewFiledForAttempt = review.attempt;
      } else if (this.lean) {
        if (!(await this.tryWrite(snapshot))) {
          // The batch counts its children from these signals, not from Redis: it hears of this one regardless.
          if (this.parent.parentTaskId) await this.reportToParent(snapshot);
          await this.backoff();
          continue;
        }
      } else {
        await writeDoc(snapshot);
      }
      if (this.parent.parentTaskId) await this.reportToParent(snapshot);
      this.projected = snapshot.version;
    }
  }

  /** One bounded write (a few quick tries in this workflow task); false when Redis did not take it. */
  private async tryWrite(snapshot: TaskDoc): Promise<boolean> {
    const ok = await tryWriteDoc(snapshot);
    if (ok) this.failures = 0;
    return ok;
  }

  /** After a failed write: a durable wait, 1 s doubling up to retryMaxMs, then the loop writes the newest version. */
  private async backoff(): Promise<void> {
    const wait = projectionBackoffMs(this.failures, this.opts.retryMaxMs);
    this.failures++;
    // A timer that is never cancelled (see the batch's projection loop): one TIMER_STARTED and one TIMER_FIRED.
    await sleep(wait);
  }

  /**
   * Tells the batch when what it counts changes: the status, or whether a review is open. Progress-only versions
   * (stages, percentages) are not sent, nor is the first `pending`, which the batch assumes of a child it started:
   * every signal is a write on the batch's one workflow, which all of its children share.
   */
  private async reportToParent(snapshot: TaskDoc): Promise<void> {
    const key = `${snapshot.status}/${snapshot.review?.open === true}`;
    if (key === this.lastReported) return;
    this.lastReported = key;
    // False when the batch has closed (cancelled or deleted): nothing is listening any more. From protocol 5 by local
    // activity like the other signals (a batch item 46 -> about 39.5 events, docs/benchmarks.md); under 3 and 4 still
    // a signal command (protocol 2 here), so their histories replay unchanged. The reports waited for
    // test/cli/cli-live's retry-all + watch test to be made deterministic: a report by local activity reaches the batch
    // a workflow task sooner, and that test had found the batch's mirror already past the moment it tests.
    const protocol = this.opts.protocol ?? 1;
    await signalRun(
      protocol >= LOCAL_REPORTS_PROTOCOL ? protocol : Math.min(protocol, 2),
      { workflowId: this.parent.parentTaskId! },
      childStatusSignal,
      {
        index: this.parent.index,
        taskId: snapshot.task_id,
        status: snapshot.status,
        inReview: snapshot.review?.open === true,
        version: snapshot.version,
      },
    );
  }
}
