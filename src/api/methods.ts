import type { RequestHandler } from 'express';
import { ApiError } from './errors';

/** What the guard needs of a route: its method and Express path (the route table of openapi.ts). */
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
 * The methods of a documented path, answered before routing: a method the path does not have is 405
 * `method_not_allowed` with `Allow` (RFC 9110 §15.5.6), OPTIONS is 204 with `Allow`. A path no route has goes on
 * (to the 404). Without this a TRACE or PUT on /api/v1/tasks answered 404, as if the path did not exist, and
 * OPTIONS /api/v1/tasks/stats advertised DELETE (Express routes it to DELETE /tasks/:id) where the document has GET
 * only; both found by Schemathesis (unsupported_method, allow_header_conformance).
 *
 * Paths are matched as OpenAPI matches them: a concrete path before templated ones, so /tasks/stats is GET only and
 * a DELETE there is 405, never a delete of the task "stats".
 */
export function methodGuard(routes: readonly RoutedPath[]): RequestHandler {
  const table = routes.map((r) => ({
    pattern: pathPattern(r.path),
    templated: r.path.includes(':'),
    method: r.method.toUpperCase(),
  }));
  return (req, res, next) => {
    const matches = table.filter((r) => r.pattern.test(req.path));
    const concrete = matches.filter((r) => !r.templated);
    const methods = new Set((concrete.length > 0 ? concrete : matches).map((r) => r.method));
    if (methods.size === 0) {
      next();
      return;
    }
    // Express answers HEAD with the GET route.
    if (methods.has('GET')) methods.add('HEAD');
    if (methods.has(req.method)) {
      next();
      return;
    }
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
