/** The Temporal interceptors pubflow installs: request id and log context always, OpenTelemetry with tracing on. */
export { RequestIdClientInterceptor } from './client-request-id';
export { activityLogContext, taskIdOfArgs } from './activity-log-context';
export { currentRequest, runInRequestContext, type RequestContext } from './request-context';
export { REQUEST_ID_HEADER, REQUEST_ID_PATTERN, readRequestId, withRequestId } from './request-id-header';
