/**
 * API authentication and authorisation: bearer API keys with roles (docs/security.md).
 *
 * Wiring (src/api/app.ts): every `/api/v1` route goes through authenticate() and rateLimit(), then the route's
 * requireRole(). /healthz, /readyz and /openapi.json are mounted outside and stay open. Closed by default: without a
 * keys file nobody gets in (every `/api/v1` request is 401), and src/api.ts refuses a non-loopback listener then.
 */
import { isIP } from 'node:net';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { KeyRegistry } from '../auth/key-registry';
import { KeysFileError } from '../auth/keys-file';
import { TokenBucketLimiter } from '../auth/rate-limit';
import { roleAtLeast, type Principal, type Role } from '../auth/roles';
import type { Config } from '../config';
import type { Logger } from '../log';
import { ApiError } from './errors';

export type { Principal, Role } from '../auth/roles';

declare module 'express-serve-static-core' {
  interface Request {
    /** Who made the request; set by authenticate(). */
    principal?: Principal;
  }
}

export const WWW_AUTHENTICATE = 'Bearer realm="pubflow"';

export const unauthorized = (message: string) => new ApiError(401, 'unauthorized', message);
export const forbidden = (required: Role, principal: Principal) =>
  new ApiError(403, 'forbidden', `this needs role ${required}; key "${principal.name}" has role ${principal.role}`, {
    required,
    role: principal.role,
  });
export const rateLimited = (retryAfterSeconds: number) =>
  new ApiError(429, 'rate_limited', `too many requests for this API key; retry in ${retryAfterSeconds} s`, {
    retryAfterSeconds,
  });

/** The registry of PUBFLOW_API_KEYS_FILE, or null when it is not set. A bad file throws, naming entry and field. */
export function loadKeyRegistry(config: Pick<Config, 'api'>): KeyRegistry | null {
  const file = config.api.keysFile;
  if (!file) return null;
  try {
    return KeyRegistry.fromFile(file);
  } catch (err) {
    if (err instanceof KeysFileError) throw new Error(`PUBFLOW_API_KEYS_FILE: ${err.message}`, { cause: err });
    throw err;
  }
}

/** The per-key limiter of PUBFLOW_API_RATE_LIMIT / PUBFLOW_API_RATE_BURST, or null when the limit is off. */
export function createRateLimiter(config: Pick<Config, 'api'>, now?: () => number): TokenBucketLimiter | null {
  return config.api.rateLimit ? new TokenBucketLimiter(config.api.rateLimit, now) : null;
}

/** 127.0.0.0/8, ::1, ::ffff:127.x and "localhost". Wildcards (0.0.0.0, ::, "") and other names are not. */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, '');
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./.test(h) || /^(0+:){7}0*1$/.test(h);
  return false;
}

/**
 * Refuses to serve beyond this machine without API keys: throws, saying why and what to do. Call it before listen().
 */
export function assertSafeListen(config: Pick<Config, 'api'>, keys: KeyRegistry | null): void {
  const host = config.api.host;
  if (isLoopbackHost(host)) return;
  if (keys && keys.size > 0) return;
  const why = keys ? `the keys file ${keys.file ?? '(in memory)'} holds no keys` : 'PUBFLOW_API_KEYS_FILE is not set';
  // Without keys the API lets nobody in anyway; refusing to start says so at once, rather than 401s on the network.
  throw new Error(
    `refusing to listen on ${host || '(all interfaces)'} (PUBFLOW_API_HOST): it is not a loopback address and ${why}, ` +
      'so anyone who can reach it could publish, cancel and delete. Set PUBFLOW_API_KEYS_FILE to a keys file ' +
      '(node lib/tools/keys.js create --name NAME --role admin --file FILE makes one), or set PUBFLOW_API_HOST=127.0.0.1.',
  );
}

const BEARER = /^Bearer[ \t]+([^\s]+)[ \t]*$/i;

/** What a client is told when the server has no keys at all. */
export const NO_KEYS_MESSAGE =
  'this server has no API keys (PUBFLOW_API_KEYS_FILE is not set, or its file holds none), so every request is ' +
  'refused; create one with: node lib/tools/keys.js create --name NAME --role admin --file FILE';

/**
 * Sets `req.principal` from `Authorization: Bearer <token>`, or answers 401 with `WWW-Authenticate: Bearer`.
 * Without a registry, or with an empty one, nobody is let in: closed by default.
 * Failures are logged with the reason, method, path and client address, never the token or its hash.
 */
export function authenticate(registry: KeyRegistry | null, opts: { log?: Logger } = {}): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const header = req.get('authorization');
    const fail = (reason: string, message: string, error?: string) => {
      opts.log?.warn('api authentication failed', { reason, method: req.method, path: req.path, ip: req.ip });
      res.set('WWW-Authenticate', error ? `${WWW_AUTHENTICATE}, error="${error}"` : WWW_AUTHENTICATE);
      next(unauthorized(message));
    };
    if (!registry || registry.size === 0) return fail('no_keys', NO_KEYS_MESSAGE);
    if (header === undefined) return fail('missing', 'an API key is needed: send Authorization: Bearer <token>');
    const m = BEARER.exec(header);
    if (!m) return fail('malformed', 'Authorization must be "Bearer <token>"', 'invalid_request');
    const principal = registry.lookup(m[1]!);
    if (!principal) return fail('unknown_key', 'unknown or revoked API key', 'invalid_token');
    req.principal = principal;
    next();
  };
}

/** Throws 403 (or 401 when nobody is authenticated) unless the principal has `required` or a role above it. */
export function assertRole(principal: Principal | undefined, required: Role): void {
  if (!principal) throw unauthorized('an API key is needed: send Authorization: Bearer <token>');
  if (!roleAtLeast(principal.role, required)) throw forbidden(required, principal);
}

/** Who made this request (set by authenticate()); the service records it in the audit trail. */
export function principalOf(req: Request): Principal {
  assertRole(req.principal, 'viewer');
  return { name: req.principal!.name, role: req.principal!.role };
}

/** Route guard: 403 naming the role needed when `req.principal` lacks it. Mount after authenticate(). */
export function requireRole(required: Role): RequestHandler {
  return (req, res, next) => {
    try {
      assertRole(req.principal, required);
      next();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) res.set('WWW-Authenticate', WWW_AUTHENTICATE);
      next(err);
    }
  };
}

/** 429 with Retry-After once a key has used its bucket. Mount after authenticate(); a null limiter lets all through. */
export function rateLimit(limiter: TokenBucketLimiter | null): RequestHandler {
  return (req, res, next) => {
    if (!limiter) return next();
    // Mounted after authenticate(), which lets nobody through without a principal.
    const decision = limiter.take(req.principal?.name ?? '');
    if (decision.allowed) return next();
    res.set('Retry-After', String(decision.retryAfterSeconds));
    next(rateLimited(decision.retryAfterSeconds));
  };
}
