/**
 * Workflow interceptors, bundled with the workflows (src/prebuilt-workflows.ts): deterministic code only.
 *
 * - Every workflow `log` line of a task's workflow (publishSingle, publishBatch) carries `taskId` (the workflow id)
 *   and, when the workflow was started, signalled or updated by an API request, that request's id (`requestId`).
 * - The id travels on: to each activity, child workflow and continue-as-new as the `pubflow-request-id` header. The
 *   latest signal or update from a client that brings one (a person's retry) replaces it for what follows. Signals
 *   between workflows (a child's status to its batch, a turn to a gate) carry none: a child's retry is not its
 *   batch's request.
 * - A task's workflow logs its start and end ("workflow started", "workflow completed", ...), so a task's story in
 *   the worker's log does not depend on what the workflow code itself logs.
 *
 * Headers add no history events and are not part of the commands Temporal compares on replay, so this module changes
 * no workflow's history (test/replay).
 */
import {
  ContinueAsNew,
  isCancellation,
  log,
  workflowInfo,
  type WorkflowInterceptors,
  type WorkflowInterceptorsFactory,
} from '@temporalio/workflow';
import { isTaskWorkflowType } from '../shared/workflow-contracts';
import { readRequestId, withRequestId } from './request-id-header';

export const interceptors: WorkflowInterceptorsFactory = (): WorkflowInterceptors => {
  let requestId: string | undefined;
  let isTask: boolean | undefined;
  const task = () => (isTask ??= isTaskWorkflowType(workflowInfo().workflowType));
  const adopt = (headers: Parameters<typeof readRequestId>[0]) => {
    const id = readRequestId(headers);
    if (id) requestId = id;
  };

  return {
    inbound: [
      {
        async execute(input, next) {
          adopt(input.headers);
          if (!task()) return next(input);
          const info = workflowInfo();
          log.info('workflow started', {
            ...(info.continuedFromExecutionRunId ? { continuedFrom: info.continuedFromExecutionRunId } : {}),
            ...(info.parent ? { parentTaskId: info.parent.workflowId } : {}),
          });
          try {
            const result = await next(input);
            log.info('workflow completed');
            return result;
          } catch (err) {
            if (err instanceof ContinueAsNew) log.info('workflow continued as new');
            else if (isCancellation(err)) log.info('workflow cancelled');
            else log.warn('workflow failed', { error: err instanceof Error ? err.message : String(err) });
            throw err;
          }
        },
        handleSignal(input, next) {
          adopt(input.headers);
          return next(input);
        },
        handleUpdate(input, next) {
          adopt(input.headers);
          return next(input);
        },
      },
    ],
    outbound: [
      {
        scheduleActivity: (input, next) => next({ ...input, headers: withRequestId(input.headers, requestId) }),
        scheduleLocalActivity: (input, next) => next({ ...input, headers: withRequestId(input.headers, requestId) }),
        startChildWorkflowExecution: (input, next) =>
          next({ ...input, headers: withRequestId(input.headers, requestId) }),
        continueAsNew: (input, next) => next({ ...input, headers: withRequestId(input.headers, requestId) }),
        getLogAttributes: (input, next) =>
          next({
            ...input,
            ...(task() ? { taskId: workflowInfo().workflowId } : {}),
            ...(requestId ? { requestId } : {}),
          }),
      },
    ],
  };
};
