/**
 * An activity interceptor: every line an activity logs through `Context.current().log` carries the task id (from the
 * activity's input, `taskId` or a task document's `task_id`) and the id of the API request behind it (the
 * `pubflow-request-id` header the workflow passed on), besides the SDK's workflowId, runId and attempt.
 */
import type { Context } from '@temporalio/activity';
import type { ActivityInterceptors } from '@temporalio/worker';
import { readRequestId } from './request-id-header';

/** `taskId` or `task_id` of an activity's first argument, when it is a string. */
export function taskIdOfArgs(args: readonly unknown[]): string | undefined {
  const first = args[0];
  if (!first || typeof first !== 'object') return undefined;
  const o = first as { taskId?: unknown; task_id?: unknown };
  const id = o.taskId ?? o.task_id;
  return typeof id === 'string' && id.length > 0 ? id : undefined;
}

export function activityLogContext(_ctx: Context): ActivityInterceptors {
  let fields: Record<string, string> = {};
  return {
    inbound: {
      execute(input, next) {
        const taskId = taskIdOfArgs(input.args);
        const requestId = readRequestId(input.headers);
        fields = { ...(taskId ? { taskId } : {}), ...(requestId ? { requestId } : {}) };
        return next(input);
      },
    },
    outbound: {
      // The SDK's attributes first, ours after; a line's own fields still win over both.
      getLogAttributes: (input, next) => next({ ...input, ...fields }),
    },
  };
}
