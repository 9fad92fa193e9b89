/**
 * A Temporal client interceptor: every workflow start, signal and update made while serving an API request carries
 * that request's id in a header (read by the workflow and activity interceptors, which log it), and the workflow id
 * is noted on the request, so the API's `request` line names the task.
 */
import type { Next, WorkflowClientInterceptor } from '@temporalio/client';
import { currentRequest } from './request-context';
import { withRequestId } from './request-id-header';

function note(workflowId: string): string | undefined {
  const ctx = currentRequest();
  ctx?.taskIds.add(workflowId);
  return ctx?.requestId;
}

export class RequestIdClientInterceptor implements WorkflowClientInterceptor {
  startWithDetails(
    input: Parameters<NonNullable<WorkflowClientInterceptor['startWithDetails']>>[0],
    next: Next<WorkflowClientInterceptor, 'startWithDetails'>,
  ) {
    const requestId = note(input.options.workflowId);
    return next({ ...input, headers: withRequestId(input.headers, requestId) });
  }

  signal(
    input: Parameters<NonNullable<WorkflowClientInterceptor['signal']>>[0],
    next: Next<WorkflowClientInterceptor, 'signal'>,
  ) {
    const requestId = note(input.workflowExecution.workflowId);
    return next({ ...input, headers: withRequestId(input.headers, requestId) });
  }

  signalWithStart(
    input: Parameters<NonNullable<WorkflowClientInterceptor['signalWithStart']>>[0],
    next: Next<WorkflowClientInterceptor, 'signalWithStart'>,
  ) {
    const requestId = note(input.options.workflowId);
    return next({ ...input, headers: withRequestId(input.headers, requestId) });
  }

  startUpdate(
    input: Parameters<NonNullable<WorkflowClientInterceptor['startUpdate']>>[0],
    next: Next<WorkflowClientInterceptor, 'startUpdate'>,
  ) {
    const requestId = note(input.workflowExecution.workflowId);
    return next({ ...input, headers: withRequestId(input.headers, requestId) });
  }

  startUpdateWithStart(
    input: Parameters<NonNullable<WorkflowClientInterceptor['startUpdateWithStart']>>[0],
    next: Next<WorkflowClientInterceptor, 'startUpdateWithStart'>,
  ) {
    const requestId = note(input.workflowStartOptions.workflowId);
    return next({
      ...input,
      workflowStartHeaders: withRequestId(input.workflowStartHeaders, requestId),
      updateHeaders: withRequestId(input.updateHeaders, requestId),
    });
  }

  cancel(
    input: Parameters<NonNullable<WorkflowClientInterceptor['cancel']>>[0],
    next: Next<WorkflowClientInterceptor, 'cancel'>,
  ) {
    note(input.workflowExecution.workflowId);
    return next(input);
  }
}
