import type { BatchCounts, PublishRequest, TaskDoc, TaskType } from './types';
import type { BatchSpacing } from './workflow-contracts';

/**
 * A task's first document (status pending, version 1). The API writes it the moment it accepts a task, so the
 * task is visible at once; the workflow starts from the same document and only ever writes newer versions.
 */
export function initialTaskDoc(args: {
  taskId: string;
  request: PublishRequest;
  parentTaskId: string | null;
  createdAt: string;
  runId: string | null;
}): TaskDoc {
  const { taskId, request } = args;
  return pendingDoc({
    taskId,
    taskType: 'publish',
    data: { ...request },
    priority: request.priority,
    parentTaskId: args.parentTaskId,
    createdAt: args.createdAt,
    runId: args.runId,
    platform: request.platform,
    accountId: request.accountId,
    scheduledFor: request.publishAt ?? null,
  });
}

/** Any task's first document: status pending, version 1, nothing started yet. */
export function pendingDoc(a: {
  taskId: string;
  taskType: TaskType;
  data: Record<string, unknown>;
  priority: number;
  parentTaskId: string | null;
  createdAt: string;
  runId: string | null;
  platform: string | null;
  accountId: string | null;
  scheduledFor: string | null;
}): TaskDoc {
  return {
    task_id: a.taskId,
    task_type: a.taskType,
    data: a.data,
    priority: a.priority,
    parent_task_id: a.parentTaskId,
    status: 'pending',
    created_at: a.createdAt,
    started_at: null,
    completed_at: null,
    updated_at: a.createdAt,
    error_message: null,
    result: null,
    retry_count: 0,
    version: 1,
    attempt: 0,
    progress: null,
    review: null,
    platform: a.platform,
    account_id: a.accountId,
    workflow_id: a.taskId,
    run_id: a.runId,
    scheduled_for: a.scheduledFor,
    error_kind: null,
  };
}

/**
 * The memo key that holds the task's document, so the reconciler can rebuild a task from visibility: set at start
 * (by the API, or by the batch for its children) and set to the final document by the projector as the run ends
 * (protocol 2; runs started before it updated it on every status change).
 */
export const DOC_MEMO_KEY = 'pubflowDoc';

export function emptyCounts(total: number): BatchCounts {
  return { total, pending: total, running: 0, success: 0, failed: 0, cancelled: 0 };
}

/** The batch's first document (status pending, version 1), written by the API the moment it accepts a batch. */
export function initialBatchDoc(args: {
  taskId: string;
  total: number;
  concurrency: number;
  spacing?: BatchSpacing;
  priority: number;
  createdAt: string;
  runId: string | null;
}): TaskDoc {
  return {
    ...pendingDoc({
      taskId: args.taskId,
      taskType: 'batch_publish',
      data: { total: args.total, concurrency: args.concurrency, spacing: args.spacing ?? null },
      priority: args.priority,
      parentTaskId: null,
      createdAt: args.createdAt,
      runId: args.runId,
      platform: null,
      accountId: null,
      scheduledFor: null,
    }),
    counts: emptyCounts(args.total),
  };
}
