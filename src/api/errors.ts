import { randomUUID } from 'node:crypto';
import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { z } from 'zod';
import type { Logger } from '../log';
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
    const requestId = randomUUID();
    log.error('unexpected error', { requestId, error: err instanceof Error ? err.stack : String(err) });
    res.status(500).json({ error: { code: 'internal', message: 'internal error', details: { requestId } } });
  };
}

/** What the fallback needs of a route: its method and Express path (the route table of openapi.ts). */
export interface RoutedPath {
  method: string;
  path: string;
}

/** An Express path as Express 5 matches it: case-insensitive, one segment per `:param`, an optional trailing slash. */
function pathPattern(expressPath: string): RegExp {
  const source = expressPath
    .split(/(:\w+)/)
    .map((part) => (part.startsWith(':') ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}/?$`, 'i');
}

/**
 * The last handler: a path no route has is 404 `not_found`; a path that exists with another method is 405
 * `method_not_allowed` with `Allow` (RFC 9110 §15.5.6), and OPTIONS there is 204 with `Allow`. Without this a TRACE
 * or PUT on /api/v1/tasks said the resource did not exist (Schemathesis's unsupported_method check found it).
 */
export function unmatchedRoute(routes: readonly RoutedPath[]): RequestHandler {
  const table = routes.map((r) => ({ pattern: pathPattern(r.path), method: r.method.toUpperCase() }));
  return (req, res, next) => {
    // Every route the path matches counts: /tasks/stats is also /tasks/:id (DELETE).
    const methods = new Set(table.filter((r) => r.pattern.test(req.path)).map((r) => r.method));
    if (methods.size === 0) {
      next(new ApiError(404, 'not_found', `no route ${req.method} ${req.path}`));
      return;
    }
    // Express answers HEAD with the GET route.
    if (methods.has('GET')) methods.add('HEAD');
    const allow = [...methods].sort();
    res.set('Allow', allow.join(', '));
    if (req.method === 'OPTIONS') {
      res.status(204).end();
      return;
    }
    next(
      new ApiError(
        405,
        'method_not_allowed',
        `${req.method} is not allowed on ${req.path}; allowed: ${allow.join(', ')}`,
        {
          allow,
        },
      ),
    );
  };
}
