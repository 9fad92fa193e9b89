/**
 * Signals, updates and queries, defined once at module level and used by both the workflows and the API.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { RetryPatch, TaskDoc, TaskStatus } from './types';

export type ReviewDecision =
  | { action: 'retry'; patch?: RetryPatch; note?: string }
  | { action: 'resolve'; url?: string; note?: string }
  | { action: 'discard'; note?: string };

export interface ReviewOutcome {
  taskId: string;
  action: ReviewDecision['action'];
  /** The attempt the decision applies to. */
  attempt: number;
}

/** A person's decision on an open review. Validated: rejected unless a review is open. */
export const reviewDecisionUpdate = defineUpdate<ReviewOutcome, [ReviewDecision]>('reviewDecision');
/** The same decision as a signal (fire-and-forget); ignored when no review is open. */
export const reviewDecisionSignal = defineSignal<[ReviewDecision]>('reviewDecisionSignal');

/** The task's current document, the truth the Redis projection mirrors. */
export const taskStateQuery = defineQuery<TaskDoc>('taskState');

/** A child reports its status to its batch (issue "Batch publish"). */
export interface ChildStatusReport {
  index: number;
  taskId: string;
  status: TaskStatus;
  /** True while a review is open: the child counts as settled-failed until a person decides. */
  inReview: boolean;
  version: number;
}
export const childStatusSignal = defineSignal<[ChildStatusReport]>('childStatus');

/** Move a scheduled task's publish time (only while it is still waiting). Returns the new time. */
export const rescheduleUpdate = defineUpdate<{ publishAt: string }, [{ publishAt: string }]>('reschedule');
