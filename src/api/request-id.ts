/**
 * Every request gets an id: the client's `X-Request-Id` when it is a valid one (1 to 128 of `A-Za-z0-9._:-`), else
 * a new UUID. It is sent back as `X-Request-Id`, named in the 500 envelope, travels to the workflows the request
 * starts, signals or updates (src/interceptors/client-request-id.ts), and is on the request's log line:
 * `{"msg":"request","requestId","method","path","status","ms","taskId"|"taskIds"}`.
 */
import { randomUUID } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import type { Logger } from '../log';
import { runInRequestContext, type RequestContext } from '../interceptors/request-context';
import { REQUEST_ID_PATTERN } from '../interceptors/request-id-header';

export const REQUEST_ID_HTTP_HEADER = 'X-Request-Id';

/** The id {@link requestIds} gave this request (a new one when the middleware did not run). */
export function requestIdOf(res: Response): string {
  const id: unknown = res.locals.requestId;
  return typeof id === 'string' ? id : randomUUID();
}

/** A task id named in the route (`/tasks/:id`, `/reviews/:taskId/...`): the request line names it too. */
function routeTaskId(req: Request): string | undefined {
  const params = req.params as Record<string, unknown> | undefined;
  const id = params?.taskId ?? params?.id;
  return typeof id === 'string' && id.length > 0 && id.length <= 200 ? id : undefined;
}

export function requestIds(log: Logger): RequestHandler {
  return (req, res, next) => {
    const given = req.get(REQUEST_ID_HTTP_HEADER);
    const valid = given !== undefined && REQUEST_ID_PATTERN.test(given);
    const requestId = valid ? given : randomUUID();
    res.locals.requestId = requestId;
    res.setHeader(REQUEST_ID_HTTP_HEADER, requestId);
    const ctx: RequestContext = { requestId, taskIds: new Set() };
    const started = performance.now();
    // The router's req.params are gone by 'finish': note the route's task id as the answer starts.
    let routed: string | undefined;
    const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => Response;
    res.writeHead = ((...args: unknown[]) => {
      routed ??= routeTaskId(req);
      return writeHead(...args);
    }) as Response['writeHead'];
    res.once('finish', () => {
      const taskIds = [...ctx.taskIds];
      const fromRoute = routed ?? routeTaskId(req);
      if (fromRoute && !ctx.taskIds.has(fromRoute)) taskIds.unshift(fromRoute);
      // Probes and scrapes would drown the story: they are logged at debug.
      const path = req.originalUrl.split('?')[0];
      const quiet = path === '/healthz' || path === '/readyz' || path === '/metrics';
      log[quiet ? 'debug' : 'info']('request', {
        requestId,
        method: req.method,
        path,
        status: res.statusCode,
        ms: Math.round((performance.now() - started) * 10) / 10,
        ...(taskIds.length === 1 ? { taskId: taskIds[0] } : taskIds.length > 1 ? { taskIds } : {}),
        ...(given !== undefined && !valid ? { requestIdRefused: true } : {}),
      });
    });
    runInRequestContext(ctx, next);
  };
}
