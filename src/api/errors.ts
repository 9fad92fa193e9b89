import type { ErrorRequestHandler } from 'express';
import type { z } from 'zod';
import type { Logger } from '../log';
import { requestIdOf } from './request-id';
import {
  ConflictError,
  IdempotencyMismatchError,
  InvalidInputError,
  NotFoundError,
  TooLargeError,
} from '../service/errors';

/** An error with an HTTP status: `{"error": {"code", "message", "details"}}`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown = null,
  ) {
    super(message);
  }
}

export const badRequest = (field: string, message: string, details: unknown = null) =>
  new ApiError(400, 'invalid_request', `${field}: ${message}`, details ?? [{ field, message }]);
export const notFound = (what: string) => new ApiError(404, 'not_found', `${what} not found`);
export const conflict = (code: string, message: string, details: unknown = null) =>
  new ApiError(409, code, message, details);

/** Parses a request part with its schema and passes the parsed value on; a 400 naming every bad field otherwise. */
export function parse<S extends z.ZodType>(schema: S, value: unknown, where: string): z.infer<S> {
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw fromZod(where, r.error);
  return r.data;
}

/** zod issues -> 400 naming each offending field (`body.video.path`, `query.limit`, `items[3].title`). */
export function fromZod(where: string, error: z.ZodError): ApiError {
  const details = error.issues.map((i) => ({ field: fieldName(where, i.path), message: i.message }));
  const first = details[0] ?? { field: where, message: 'invalid' };
  return new ApiError(400, 'invalid_request', `${first.field}: ${first.message}`, details);
}

export function fieldName(where: string, path: readonly PropertyKey[]): string {
  let out = where;
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : `${out ? '.' : ''}${String(p)}`;
  return out || '(root)';
}

/** The service's refusals as HTTP errors; null for anything unexpected. */
function fromServiceError(err: unknown): ApiError | null {
  if (err instanceof ApiError) return err;
  if (err instanceof InvalidInputError) return new ApiError(400, 'invalid_request', err.message, err.issues);
  if (err instanceof NotFoundError) return new ApiError(404, 'not_found', err.message);
  if (err instanceof ConflictError) return new ApiError(409, err.code, err.message, err.details);
  if (err instanceof TooLargeError) return new ApiError(413, err.code, err.message, err.details);
  if (err instanceof IdempotencyMismatchError)
    return new ApiError(422, 'idempotency_mismatch', err.message, { taskId: err.taskId });
  return null;
}

export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err, _req, res, _next) => {
    const mapped = fromServiceError(err);
    if (mapped) {
      res
        .status(mapped.status)
        .json({ error: { code: mapped.code, message: mapped.message, details: mapped.details } });
      return;
    }
    // express.json() parse errors and oversized bodies
    const status = (err as { status?: number }).status;
    if (status && status >= 400 && status < 500) {
      res.status(status).json({
        error: {
          code: (err as { type?: string }).type ?? 'invalid_request',
          message: (err as Error).message,
          details: null,
        },
      });
      return;
    }
    // The request's own id (X-Request-Id), so the 500 a client saw leads to the stack in the log.
    const requestId = requestIdOf(res);
    log.error('unexpected error', { requestId, error: err instanceof Error ? err.stack : String(err) });
    res.status(500).json({ error: { code: 'internal', message: 'internal error', details: { requestId } } });
  };
}
