/**
 * The request an API process is serving, for code far below the route (the Temporal client interceptor): its id,
 * and the task ids the request touched, which its `request` log line names.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface RequestContext {
  readonly requestId: string;
  /** Workflow ids the request started, signalled, updated or cancelled. */
  readonly taskIds: Set<string>;
}

const storage = new AsyncLocalStorage<RequestContext>();

export function runInRequestContext<T>(ctx: RequestContext, fn: () => T): T {
  return storage.run(ctx, fn);
}

export function currentRequest(): RequestContext | undefined {
  return storage.getStore();
}
