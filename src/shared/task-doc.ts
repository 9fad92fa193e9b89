import type { PublishRequest, TaskDoc } from './types';

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
  return {
    task_id: taskId,
    task_type: 'publish',
    data: { ...request },
    priority: request.priority,
    parent_task_id: args.parentTaskId,
    status: 'pending',
    created_at: args.createdAt,
    started_at: null,
    completed_at: null,
    updated_at: args.createdAt,
    error_message: null,
    result: null,
    retry_count: 0,
    version: 1,
    attempt: 0,
    progress: null,
    review: null,
    platform: request.platform,
    account_id: request.accountId,
    workflow_id: taskId,
    run_id: args.runId,
    scheduled_for: request.publishAt ?? null,
    error_kind: null,
  };
}
