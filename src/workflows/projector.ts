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
  getExternalWorkflowHandle,
  patched,
  proxyActivities,
  upsertMemo,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { createActivities } from '../activities';
import { childStatusSignal } from '../shared/definitions';
import { SEARCH_ATTRIBUTE_KEYS } from '../shared/search-attributes';
import type { TaskDoc } from '../shared/types';

export const projectionOptions = {
  startToCloseTimeout: '15s',
  // Redis may be down for a while: keep trying, never give up, never hammer it.
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
} as const;

const { projectTask, fileReview } = proxyActivities<ReturnType<typeof createActivities>>(projectionOptions);

/** The memo key that holds the task's document, so the reconciler can rebuild a closed task from visibility. */
export const DOC_MEMO_KEY = 'pubflowDoc';
/**
 * Temporal refuses a memo over 2 MB (limit.memoSize.error) and logs a warning over 2 KB; a document is ~1 KB
 * unless its request carries a long description or large options. Over this many JSON characters (<= 3 bytes
 * each) the memo is cleared instead, and the reconciler queries that workflow.
 */
const DOC_MEMO_MAX_CHARS = 64_000;

/**
 * Mirrors the document into the workflow's memo. Called when the status changes or a review opens or closes, so
 * a closed workflow's memo is its final document. Behind a patch: workflows started before it replay unchanged.
 */
export function memoizeDoc(doc: TaskDoc): void {
  if (!patched('pubflow-doc-memo')) return;
  const json = JSON.stringify(doc);
  upsertMemo({ [DOC_MEMO_KEY]: json.length <= DOC_MEMO_MAX_CHARS ? (JSON.parse(json) as TaskDoc) : null });
}

export class Projector {
  private projected = 0;
  private reviewFiledForAttempt = 0;

  constructor(
    private readonly doc: TaskDoc,
    private readonly parent: { parentTaskId: string | null; index: number },
  ) {}

  /** Apply a change to the document and schedule its projection. */
  change(patch: Partial<TaskDoc>): void {
    const statusChanged = patch.status !== undefined && patch.status !== this.doc.status;
    const reviewWasOpen = this.doc.review?.open === true;
    Object.assign(this.doc, patch);
    this.doc.version++;
    if (statusChanged) upsertSearchAttributes([{ key: SEARCH_ATTRIBUTE_KEYS.status, value: this.doc.status }]);
    // A discarded or expired review ends the task without a status change (failed -> failed): memoize that too.
    if (statusChanged || reviewWasOpen !== (this.doc.review?.open === true)) memoizeDoc(this.doc);
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
      } else {
        await projectTask(snapshot);
      }
      if (this.parent.parentTaskId) await this.reportToParent(snapshot);
      this.projected = snapshot.version;
    }
  }

  private async reportToParent(snapshot: TaskDoc): Promise<void> {
    try {
      await getExternalWorkflowHandle(this.parent.parentTaskId!).signal(childStatusSignal, {
        index: this.parent.index,
        taskId: snapshot.task_id,
        status: snapshot.status,
        inReview: snapshot.review?.open === true,
        version: snapshot.version,
      });
    } catch {
      // The batch has closed (cancelled or deleted): nothing is listening any more.
    }
  }
}
