import type { RequestHandler } from 'express';
import { ApiError } from './errors';

const WITH_BODY = new Set(['POST', 'PUT', 'PATCH']);

/**
 * 415 `unsupported_media_type` for a request body that is not JSON. express.json() skips such a body silently, and
 * the route would then see no body at all: a form-encoded publish would fail as "title: required", and a decision
 * sent as text would be taken with its fields dropped. A request without a body (none, or an empty one) is let
 * through: most POSTs here need none.
 */
export function requireJsonBody(): RequestHandler {
  return (req, _res, next) => {
    // type-is: null without a body; false with a body whose Content-Type is missing or not JSON.
    // type-is counts `Content-Length: 0` as a body; an empty body has nothing to misread.
    const empty = req.headers['content-length'] === '0';
    if (WITH_BODY.has(req.method) && !empty && req.is('application/json') === false) {
      next(
        new ApiError(
          415,
          'unsupported_media_type',
          `the body must be JSON (Content-Type: application/json), not ${req.get('Content-Type') ?? 'untyped'}`,
          null,
        ),
      );
      return;
    }
    next();
  };
}
