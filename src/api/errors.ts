import { randomUUID } from 'node:crypto';
import type { ErrorRequestHandler } from 'express';
import type { z } from 'zod';
import type { Logger } from '../log';
import { TaskNotFoundError, TaskStateConflictError } from '../projection/task-control';

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

export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err, _req, res, _next) => {
    if (err instanceof TaskNotFoundError) {
      res.status(404).json({ error: { code: 'not_found', message: err.message, details: null } });
      return;
    }
    if (err instanceof TaskStateConflictError) {
      res.status(409).json({ error: { code: err.code, message: err.message, details: null } });
      return;
    }
    if (err instanceof ApiError) {
      res.status(err.status).json({ error: { code: err.code, message: err.message, details: err.details } });
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
    const requestId = randomUUID();
    log.error('unexpected error', { requestId, error: err instanceof Error ? err.stack : String(err) });
    res.status(500).json({ error: { code: 'internal', message: 'internal error', details: { requestId } } });
  };
}
