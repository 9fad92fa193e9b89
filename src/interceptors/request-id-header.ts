/**
 * The API request id as a Temporal header. Headers travel with a workflow start, a signal, an update, an activity
 * and a child workflow without adding any history event of their own. Pure code: it is bundled into the workflows
 * (src/interceptors/workflow-log-context.ts) as well as used by the client and the activities.
 */
import { defaultPayloadConverter, type Payload } from '@temporalio/common';

/** The header's name in Temporal (lower case, like the SDK's own `_tracer-data`). */
export const REQUEST_ID_HEADER = 'pubflow-request-id';

/** What a request id may be: 1 to 128 letters, digits and `._:-` (what proxies and tracers generate). */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

export type Headers = Record<string, Payload>;

/** The request id a set of headers carries, or undefined (absent, or not a valid id). */
export function readRequestId(headers: Headers | undefined): string | undefined {
  const payload = headers?.[REQUEST_ID_HEADER];
  if (!payload) return undefined;
  try {
    const value: unknown = defaultPayloadConverter.fromPayload(payload);
    return typeof value === 'string' && REQUEST_ID_PATTERN.test(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** The headers with the request id added (unchanged when there is none, or they carry one already). */
export function withRequestId(headers: Headers, requestId: string | undefined): Headers {
  if (!requestId || headers[REQUEST_ID_HEADER]) return headers;
  return { ...headers, [REQUEST_ID_HEADER]: defaultPayloadConverter.toPayload(requestId) };
}
