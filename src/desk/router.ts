/**
 * The review desk (docs/desk.md): server-rendered pages under /ui/, served by the API process.
 *
 * Sign-in takes an API key, checks it with the API's own KeyRegistry and starts a session (sessions.ts). Every POST
 * needs the session's CSRF token and the role of the API route it stands for (actions.ts), and calls the same
 * service use case as that route, with the same zod schema for its input: the desk can do nothing a script with the
 * same key could not. Live updates come from one server-side Redis poll (live.ts) over server-sent events.
 */
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type Redis from 'ioredis';
import type { KeyRegistry } from '../auth/key-registry';
import { TokenBucketLimiter } from '../auth/rate-limit';
import { roleAtLeast, type Principal } from '../auth/roles';
import type { Logger } from '../log';
import type { TaskStateManager } from '../projection/task-state-manager';
import type { PubflowService } from '../service';
import { ConflictError, InvalidInputError, NotFoundError } from '../service/errors';
import { ApiError, parse } from '../api/errors';
import {
  DiscardBody,
  ListReviewsQuery,
  ListTasksQuery,
  NoteBody,
  ResolveBody,
  RetryAllBody,
  RetryBody,
  TaskIdParam,
  AccountIdParam,
} from '../api/schemas';
import { z } from 'zod';
import { TASK_STATUSES, type TaskDoc } from '../shared/types';
import { DESK_ACTIONS, type DeskAction } from './actions';
import { DESK_CSS, DESK_JS } from './assets';
import type { Html } from './html';
import { LiveHub, MAX_LIVE_IDS } from './live';
import { readThroughput } from './throughput';
import {
  accountsPage,
  errorPage,
  loginPage,
  overviewPage,
  reviewsPage,
  taskPage,
  tasksPage,
  type PageContext,
} from './pages';
import { csrfMatches, readCookie, SESSION_COOKIE, SessionStore, type Session } from './sessions';

export interface DeskDeps {
  service: PubflowService;
  tsm: TaskStateManager;
  redis: Redis;
  keys: KeyRegistry | null;
  limiter?: TokenBucketLimiter | null;
  log: Logger;
  config: { temporal: { namespace: string } };
  /** PUBFLOW_TEMPORAL_UI_URL (default http://localhost:8233), read from `env` when not given. */
  temporalUiUrl?: string;
  /** Session lifetime (default 12 h). */
  sessionTtlMs?: number;
  env?: NodeJS.ProcessEnv;
}

export const DEFAULT_TEMPORAL_UI_URL = 'http://localhost:8233';
const PAGE_SIZE = 50;

/** PUBFLOW_TEMPORAL_UI_URL, checked once at start-up: an http(s) URL, no trailing slash. */
export function temporalUiUrlFrom(env: NodeJS.ProcessEnv): string {
  const raw = env.PUBFLOW_TEMPORAL_UI_URL?.trim() || DEFAULT_TEMPORAL_UI_URL;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new Error(`PUBFLOW_TEMPORAL_UI_URL: "${raw}" is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new Error(`PUBFLOW_TEMPORAL_UI_URL: must be an http or https URL, not "${raw}"`);
  return u.href.replace(/\/+$/, '');
}

const ASSETS: Record<string, { type: string; body: string }> = {
  'desk.js': { type: 'text/javascript; charset=utf-8', body: DESK_JS },
  'desk.css': { type: 'text/css; charset=utf-8', body: DESK_CSS },
};

const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
  "form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

type DeskRequest = Request & { session?: Session };

export function createDeskRouter(deps: DeskDeps): Router {
  const { service, tsm, keys, log } = deps;
  const temporalUi = deps.temporalUiUrl ?? temporalUiUrlFrom(deps.env ?? process.env);
  const sessions = new SessionStore(deps.sessionTtlMs ?? 12 * 3600_000);
  const hub = new LiveHub({ redis: deps.redis, tsm, log });
  const flashes = new Map<string, { kind: 'ok' | 'error'; text: string }>();
  const router = express.Router();

  router.get('/', (_req, res) => res.redirect(302, '/ui/'));
  // Express matches '/ui' for '/ui/' too (non-strict routing): redirect only the bare path.
  router.get('/ui', (req, res, next) => (req.originalUrl.split('?')[0] === '/ui' ? res.redirect(302, '/ui/') : next()));

  router.use('/ui', (_req, res, next) => {
    res.set({
      'Content-Security-Policy': CSP,
      'X-Content-Type-Options': 'nosniff',
      // same-origin, not no-referrer: under no-referrer a browser sends "Origin: null" with its own form posts.
      'Referrer-Policy': 'same-origin',
      'X-Frame-Options': 'DENY',
      'Cache-Control': 'no-store',
    });
    next();
  });

  // A POST from another site is refused outright (sign-in included, so nobody can be signed in to someone else's key
  // by a forged form). Browsers send Origin with every POST; a client that sends none (a script) passes to the checks.
  router.use('/ui', (req, res, next) => {
    const origin = req.get('origin');
    if (req.method !== 'POST' || !origin) return next();
    let host: string | null = null;
    try {
      host = new URL(origin).host;
    } catch {
      // "null" or garbage: not this site
    }
    if (host !== null && host === req.get('host')) return next();
    log.warn('desk cross-site POST refused', { origin, path: req.path, ip: req.ip });
    send(res, 403, errorPage(null, 403, 'cross-site request refused'));
  });

  router.get('/ui/assets/:name', (req, res) => {
    const a = Object.hasOwn(ASSETS, req.params.name) ? ASSETS[req.params.name] : undefined;
    if (!a) return void res.status(404).type('text/plain').send('not found');
    res.set('Cache-Control', 'public, max-age=300').type(a.type).send(a.body);
  });

  const form = express.urlencoded({ extended: false, limit: '256kb', parameterLimit: 50 });
  const json = express.json({ limit: '256kb' });

  const send = (res: Response, status: number, page: Html) => res.status(status).type('html').send(page.value);
  const wantsJson = (req: Request) => (req.get('accept') ?? '').includes('application/json');
  const setCookie = (req: Request, res: Response, value: string, maxAgeS: number) =>
    res.append(
      'Set-Cookie',
      `${SESSION_COOKIE}=${value}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=${maxAgeS}${req.secure ? '; Secure' : ''}`,
    );

  /** The session's principal, if its key still exists with the same role (a revoked key ends its sessions). */
  const sessionOf = (req: Request): Session | null => {
    const id = readCookie(req.get('cookie'), SESSION_COOKIE);
    const s = sessions.get(id);
    if (!s) return null;
    const still = keys?.principals().some((p) => p.name === s.principal.name && p.role === s.principal.role);
    if (!still) {
      sessions.destroy(s.id);
      return null;
    }
    return s;
  };

  const ctxOf = (req: DeskRequest): PageContext => {
    const s = req.session!;
    const flash = flashes.get(s.id) ?? null;
    flashes.delete(s.id);
    return { principal: s.principal, csrf: s.csrf, flash, now: Date.now() };
  };

  // ---------------------------------------------------------------- sign-in

  router.get('/ui/login', (req, res) => {
    if (sessionOf(req)) return res.redirect(303, '/ui/');
    send(res, 200, loginPage(null));
  });

  // Sign-in attempts per client address: 30 at once, then one every 2 s (tokens are long and random; this keeps a
  // guessing loop from costing CPU). The buckets start afresh every 10,000 attempts, so memory stays bounded.
  let signIns = new TokenBucketLimiter({ perSecond: 0.5, burst: 30 });
  let signInAttempts = 0;
  router.post('/ui/login', form, (req, res) => {
    if (++signInAttempts > 10_000) {
      signIns = new TokenBucketLimiter(signIns.limit);
      signInAttempts = 0;
    }
    const gate = signIns.take(req.ip ?? '');
    if (!gate.allowed) {
      res.set('Retry-After', String(gate.retryAfterSeconds));
      return send(res, 429, loginPage(`Too many sign-in attempts; try again in ${gate.retryAfterSeconds} s.`));
    }
    const token = typeof req.body?.token === 'string' ? req.body.token.trim() : '';
    const principal = token && keys ? keys.lookup(token) : null;
    if (!principal) {
      log.warn('desk sign-in failed', { ip: req.ip, reason: keys && keys.size > 0 ? 'unknown_key' : 'no_keys' });
      const why =
        keys && keys.size > 0
          ? 'Unknown or revoked API key.'
          : 'This server has no API keys (PUBFLOW_API_KEYS_FILE), so nobody can sign in.';
      return send(res, 401, loginPage(why));
    }
    const old = readCookie(req.get('cookie'), SESSION_COOKIE);
    sessions.destroy(old); // a fresh id at every sign-in (no session fixation)
    const s = sessions.create(principal);
    log.info('desk sign-in', { key: principal.name, role: principal.role, ip: req.ip });
    setCookie(req, res, s.id, Math.floor((s.expiresAt - s.createdAt) / 1000));
    res.redirect(303, '/ui/');
  });

  // Everything below needs a session.
  router.use('/ui', (req: DeskRequest, res, next) => {
    const s = sessionOf(req);
    if (!s) {
      if (req.method === 'GET' && !wantsJson(req) && req.path !== '/events') return res.redirect(303, '/ui/login');
      return res.status(401).json({ error: { code: 'unauthorized', message: 'sign in first', details: null } });
    }
    if (deps.limiter) {
      const d = deps.limiter.take(s.principal.name);
      if (!d.allowed) {
        res.set('Retry-After', String(d.retryAfterSeconds));
        return res.status(429).type('text/plain').send(`too many requests; retry in ${d.retryAfterSeconds} s`);
      }
    }
    req.session = s;
    next();
  });

  router.post('/ui/logout', form, (req: DeskRequest, res) => {
    if (!csrfMatches(req.session!, req.body?._csrf)) return send(res, 403, errorPage(null, 403, 'bad CSRF token'));
    sessions.destroy(req.session!.id);
    setCookie(req, res, '', 0);
    res.redirect(303, '/ui/login');
  });

  // ---------------------------------------------------------------- pages

  const page =
    (fn: (req: DeskRequest, res: Response) => Promise<Html>) =>
    async (req: DeskRequest, res: Response, next: NextFunction) => {
      try {
        send(res, 200, await fn(req, res));
      } catch (err) {
        renderError(req, res, next, err, '/ui/');
      }
    };

  router.get(
    '/ui/',
    page(async (req) => {
      const [stats, reviews, accounts, throughput] = await Promise.all([
        tsm.getQueueStats(),
        tsm.listReviews({ limit: 1000 }),
        service.listAccounts(),
        readThroughput(deps.redis, Date.now()),
      ]);
      return overviewPage(ctxOf(req), { stats, reviews, accounts, throughput });
    }),
  );

  router.get(
    '/ui/reviews',
    page(async (req) => {
      const q = parse(ListReviewsQuery, blankless(req.query), 'query');
      const { limit, offset, ...filters } = q;
      const [p, matching] = await Promise.all([
        tsm.listReviews(q),
        tsm.listReviewTaskIds(filters).then((ids) => ids.slice(0, MAX_LIVE_IDS)),
      ]);
      return reviewsPage(ctxOf(req), { filters, page: p, offset, limit, matching });
    }),
  );

  router.get('/ui/tasks/search', (req, res) => {
    const id = typeof req.query.id === 'string' ? req.query.id.trim() : '';
    res.redirect(303, id ? `/ui/tasks/${encodeURIComponent(id)}` : '/ui/tasks');
  });

  router.get(
    '/ui/tasks',
    page(async (req) => {
      const q = parse(ListTasksQuery, withZone(blankless(req.query)), 'query');
      return tasksPage(ctxOf(req), { query: q, page: await service.listTasks(q) });
    }),
  );

  router.get(
    '/ui/batches',
    page(async (req) => {
      const q = parse(ListTasksQuery, { ...withZone(blankless(req.query)), type: 'batch_publish' }, 'query');
      return tasksPage(ctxOf(req), { query: q, page: await service.listTasks(q) }, 'Batches', '/ui/batches');
    }),
  );

  router.get(
    '/ui/tasks/:id',
    page(async (req) => {
      const id = parse(TaskIdParam, req.params.id, 'id');
      const read = await service.getTask(id);
      const doc = 'raw' in read ? (JSON.parse(read.raw) as TaskDoc) : read.doc;
      // A batch's items, optionally by status (the parent and status indexes intersected: exact, paged).
      const childStatus = parse(ChildrenQuery, blankless(req.query), 'query').children;
      const children =
        doc.task_type === 'batch_publish'
          ? await tsm.listTasks({ parent: id, status: childStatus, limit: PAGE_SIZE })
          : null;
      // The timeline comes from Temporal's history; if Temporal cannot answer, the page still shows the document.
      const timeline = await service.timeline(id).catch((err: unknown) => {
        deps.log.warn('desk timeline unavailable', { taskId: id, error: (err as Error).message });
        return null;
      });
      const temporalUrl = `${temporalUi}/namespaces/${encodeURIComponent(deps.config.temporal.namespace)}/workflows/${encodeURIComponent(doc.workflow_id || id)}`;
      return taskPage(ctxOf(req), { doc, children, childStatus, timeline, temporalUrl });
    }),
  );

  router.get(
    '/ui/accounts',
    page(async (req) => {
      const [accounts, waiting] = await Promise.all([service.listAccounts(), tsm.waitingByAccount()]);
      return accountsPage(ctxOf(req), accounts, waiting);
    }),
  );

  router.get('/ui/events', (req: DeskRequest, res) => {
    const raw = typeof req.query.ids === 'string' ? req.query.ids : '';
    const ids = raw
      .split(',')
      .map((s) => s.trim())
      .filter((s) => TaskIdParam.safeParse(s).success)
      .slice(0, MAX_LIVE_IDS);
    hub.subscribe(res, ids, req.query.stats === '1');
  });

  // ---------------------------------------------------------------- actions

  /**
   * One desk action: the CSRF token, then the API route's role (403 otherwise, whatever the page showed), then the
   * same use case the route calls. A form gets a redirect back with a message; a script (Accept: JSON) the result.
   */
  const action =
    (
      name: DeskAction,
      run: (req: DeskRequest, by: Principal) => Promise<{ result: unknown; message: string; back: string }>,
    ) =>
    async (req: DeskRequest, res: Response, next: NextFunction) => {
      const s = req.session!;
      const fallbackBack = safeBack(req.get('referer'));
      try {
        const token = req.get('x-csrf-token') ?? (req.body as Record<string, unknown> | undefined)?._csrf;
        if (!csrfMatches(s, token)) throw new ApiError(403, 'csrf', 'missing or wrong CSRF token; reload the page');
        const required = DESK_ACTIONS[name];
        if (!roleAtLeast(s.principal.role, required))
          throw new ApiError(
            403,
            'forbidden',
            `this needs role ${required}; key "${s.principal.name}" has role ${s.principal.role}`,
            {
              required,
              role: s.principal.role,
            },
          );
        const out = await run(req, s.principal);
        if (wantsJson(req)) return void res.json(out.result);
        flashes.set(s.id, { kind: 'ok', text: out.message });
        res.redirect(303, out.back);
      } catch (err) {
        renderError(req, res, next, err, fallbackBack);
      }
    };

  const body = (req: Request): Record<string, unknown> => {
    const b = { ...((req.body ?? {}) as Record<string, unknown>) };
    delete b._csrf;
    delete b.confirm;
    return b;
  };
  const note = (b: Record<string, unknown>) =>
    typeof b.note === 'string' && b.note.trim() ? b.note.trim() : undefined;

  router.post(
    '/ui/reviews/retry-all',
    form,
    json,
    action('retryAll', async (req, by) => {
      const b = body(req);
      if (!wantsJson(req) && req.body?.confirm !== 'yes')
        throw new ApiError(400, 'invalid_request', 'confirm: tick the box to confirm the bulk retry');
      const { note: n, ...filter } = parse(RetryAllBody, blankless({ ...b, note: note(b) }), 'body');
      const out = await service.retryAll(filter, n, by);
      const failed = out.failed.length ? `; ${out.failed.length} could not be retried` : '';
      return {
        result: out,
        message: `Retried ${out.retried} of ${out.matched}${failed}.`,
        back: `/ui/reviews${qs(filter)}`,
      };
    }),
  );

  router.post(
    '/ui/reviews/:taskId/retry',
    form,
    json,
    action('retry', async (req, by) => {
      const taskId = parse(TaskIdParam, req.params.taskId, 'taskId');
      const b = body(req);
      const current = await tsm.getTaskState(taskId);
      const parsed = parse(RetryBody, wantsJsonBody(req) ? b : retryFromForm(b, current), 'body');
      const out = await service.retry(taskId, parsed, by);
      return { result: out, message: `Retry sent for ${taskId}.`, back: `/ui/tasks/${encodeURIComponent(taskId)}` };
    }),
  );

  router.post(
    '/ui/reviews/:taskId/resolve',
    form,
    json,
    action('resolve', async (req, by) => {
      const taskId = parse(TaskIdParam, req.params.taskId, 'taskId');
      const b = body(req);
      const parsed = parse(ResolveBody, blankless({ url: b.url, note: note(b) }), 'body');
      const out = await service.resolve(taskId, parsed, by);
      return { result: out, message: `Resolved ${taskId}.`, back: '/ui/reviews' };
    }),
  );

  router.post(
    '/ui/reviews/:taskId/discard',
    form,
    json,
    action('discard', async (req, by) => {
      const taskId = parse(TaskIdParam, req.params.taskId, 'taskId');
      const parsed = parse(DiscardBody, blankless({ note: note(body(req)) }), 'body');
      const out = await service.discard(taskId, parsed, by);
      return { result: out, message: `Discarded ${taskId}.`, back: '/ui/reviews' };
    }),
  );

  router.post(
    '/ui/tasks/:id/cancel',
    form,
    json,
    action('cancel', async (req, by) => {
      const id = parse(TaskIdParam, req.params.id, 'id');
      const { note: n } = parse(NoteBody, blankless({ note: note(body(req)) }), 'body');
      const out = await service.cancel(id, by, n);
      return { result: out, message: `Task ${id}: ${out.status}.`, back: `/ui/tasks/${encodeURIComponent(id)}` };
    }),
  );

  router.post(
    '/ui/accounts/:id/reactivate',
    form,
    json,
    action('reactivate', async (req, by) => {
      const id = parse(AccountIdParam, req.params.id, 'id');
      const { note: n } = parse(NoteBody, blankless({ note: note(body(req)) }), 'body');
      const out = await service.reactivate(id, by, n);
      return {
        result: out,
        message: `Account ${id} reactivated (${out.waiting} task(s) waiting).`,
        back: '/ui/accounts',
      };
    }),
  );

  router.use('/ui', (req: DeskRequest, res) => {
    send(res, 404, errorPage(req.session ? ctxOf(req) : null, 404, `no page ${req.method} ${req.path}`, '/ui/'));
  });

  function renderError(req: DeskRequest, res: Response, next: NextFunction, err: unknown, back: string): void {
    const mapped = mapError(err);
    if (!mapped) {
      next(err); // the API's error handler: 500 with a request id, the stack to the log
      return;
    }
    if (wantsJson(req)) {
      res
        .status(mapped.status)
        .json({ error: { code: mapped.code, message: mapped.message, details: mapped.details } });
      return;
    }
    send(res, mapped.status, errorPage(req.session ? ctxOf(req) : null, mapped.status, mapped.message, back));
  }

  // Streams end when the API's server closes its sockets; nothing else to stop.
  Object.defineProperty(router, 'liveHub', { value: hub });
  return router;
}

function mapError(err: unknown): ApiError | null {
  if (err instanceof ApiError) return err;
  if (err instanceof InvalidInputError) return new ApiError(400, 'invalid_request', err.message, err.issues);
  if (err instanceof NotFoundError) return new ApiError(404, 'not_found', err.message);
  if (err instanceof ConflictError) return new ApiError(409, err.code, err.message, err.details);
  return null;
}

/** Empty form fields mean "not set". */
/** `<input type="datetime-local">` sends no offset: the desk labels those fields UTC and adds it. */
function withZone(q: Record<string, unknown>): Record<string, unknown> {
  const out = { ...q };
  for (const k of ['since', 'until'])
    if (typeof out[k] === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d)?$/.test(out[k]))
      out[k] = `${out[k]}${out[k].length === 16 ? ':00' : ''}Z`;
  return out;
}

const ChildrenQuery = z.object({ children: z.enum(TASK_STATUSES).optional() });

function blankless(q: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== '') out[k] = v;
  return out;
}

const qs = (filter: Record<string, unknown>): string => {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(filter)) if (typeof v === 'string' && v) p.set(k, v);
  const s = p.toString();
  return s ? `?${s}` : '';
};

/** A same-site page to go back to from an error: only /ui/ paths. */
function safeBack(referer: string | undefined): string {
  if (!referer) return '/ui/';
  try {
    const u = new URL(referer);
    return u.pathname.startsWith('/ui/') ? u.pathname + u.search : '/ui/';
  } catch {
    return '/ui/';
  }
}

const wantsJsonBody = (req: Request) => req.is('application/json') === 'application/json';

/**
 * The retry form shows the task's current fields; only those a person changed go into the patch, so the audit and
 * the history say what was corrected.
 */
function retryFromForm(b: Record<string, unknown>, current: TaskDoc | null): Record<string, unknown> {
  const data = (current?.data ?? {}) as Record<string, unknown>;
  const str = (k: string) => (typeof b[k] === 'string' ? (b[k] as string) : undefined);
  const patch: Record<string, unknown> = {};
  const title = str('title')?.trim();
  if (title && title !== data.title) patch.title = title;
  const description = str('description');
  if (description !== undefined && description !== (data.description ?? '')) patch.description = description;
  const tags = str('tags');
  if (tags !== undefined) {
    const list = tags
      .split(',')
      .map((t) => t.trim())
      .filter(Boolean);
    const was = Array.isArray(data.tags) ? (data.tags as unknown[]).map(String) : [];
    if (list.join('\u0000') !== was.join('\u0000')) patch.tags = list;
  }
  const accountId = str('accountId')?.trim();
  if (accountId && accountId !== current?.account_id) patch.accountId = accountId;
  const video = str('video')?.trim();
  const wasVideo = (data.video as { path?: unknown } | undefined)?.path;
  if (video && video !== wasVideo) patch.video = { path: video };
  const n = str('note')?.trim();
  return { ...(Object.keys(patch).length ? { patch } : {}), ...(n ? { note: n } : {}) };
}
