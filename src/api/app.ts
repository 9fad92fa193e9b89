/**
 * The HTTP API: thin adapters over the service layer (src/service). Each route parses its input with its zod
 * schema, calls one use case and maps the result; the service's errors become HTTP statuses in errors.ts.
 */
import type { Tracer } from '@opentelemetry/api';
import express, { type Router } from 'express';
import type { KeyRegistry } from '../auth/key-registry';
import type { TokenBucketLimiter } from '../auth/rate-limit';
import type { Config } from '../config';
import type { Logger } from '../log';
import { createDeskRouter } from '../desk/router';
import { registerMetricsRoutes } from '../metrics/api-metrics';
import { createService, type PubflowService, type ServiceDeps } from '../service';
import { registerAccountRoutes } from './accounts';
import { authenticate, createRateLimiter, loadKeyRegistry, principalOf, rateLimit, requireRole as role } from './auth';
import { registerBatchRoutes } from './batch';
import { requireJsonBody } from './content-type';
import { requestIds } from './request-id';
import { traceRequests } from '../tracing/express';
import { ApiError, errorHandler, parse } from './errors';
import { methodGuard } from './methods';
import { openApiDocument, ROUTES } from './openapi';
import {
  DeleteQuery,
  DiscardBody,
  ListReviewsQuery,
  ListTasksQuery,
  NoteBody,
  PublishBody,
  RescheduleBody,
  ResolveBody,
  RetryBody,
  TaskIdParam,
} from './schemas';

/**
 * What createApp needs: the service's dependencies (or a service already built from them), and the API keys:
 * `keys` and `limiter` as given, or read from `config.api` (PUBFLOW_API_KEYS_FILE, PUBFLOW_API_RATE_LIMIT) when
 * absent. There is no way to turn authentication off: no keys means nobody gets in.
 */
export type AppDeps = ServiceDeps & {
  config: ServiceDeps['config'] & Partial<Pick<Config, 'api'>>;
  service?: PubflowService;
  log: Logger;
  keys?: KeyRegistry | null;
  limiter?: TokenBucketLimiter | null;
  /** Tracing on (src/tracing): a server span per request. */
  tracer?: Tracer;
};

/** Today's JSON body limit, under Temporal's 2 MiB payload limit so an oversized request is a fast 413. */
export const JSON_BODY_LIMIT = '2mb';

export function createApp(deps: AppDeps): express.Express {
  const service = deps.service ?? createService(deps);
  const { tsm } = deps;
  const { api: apiConfig } = deps.config;
  const keys = deps.keys !== undefined ? deps.keys : apiConfig ? loadKeyRegistry({ api: apiConfig }) : null;
  const limiter = deps.limiter !== undefined ? deps.limiter : apiConfig ? createRateLimiter({ api: apiConfig }) : null;
  const app = express();
  app.disable('x-powered-by');
  // Before everything: the request's span and id are on every line and workflow start that follows.
  if (deps.tracer) app.use(traceRequests(deps.tracer));
  app.use(requestIds(deps.log));
  // First: counts every request. GET /metrics needs a key with the viewer role, as every GET (src/metrics/api-metrics.ts).
  registerMetricsRoutes(app, deps, authenticate(keys, { log: deps.log }), rateLimit(limiter), role('viewer'));
  // A method a documented path does not have is 405 with Allow (before the key check: it says nothing about tasks).
  app.use(methodGuard(ROUTES));

  // Open, and they say nothing about tasks.
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  app.get('/readyz', async (_req, res) => {
    const { ready, redis, temporal } = await service.readiness();
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not_ready', redis, temporal });
  });

  app.get('/openapi.json', (_req, res) => {
    res.json(openApiDocument);
  });

  // Who asks first, then how much, and only then is a body read: nobody without a key makes the server parse 2 MB.
  // Each route then names the least role that may use it (src/auth/roles.ts: viewer < publisher < operator < admin).
  const api: Router = express.Router();
  app.use('/api/v1', api);
  api.use(authenticate(keys, { log: deps.log }), rateLimit(limiter));
  api.use(requireJsonBody());
  api.use(express.json({ limit: JSON_BODY_LIMIT }));

  api.post('/publish', role('publisher'), async (req, res) => {
    const body = parse(PublishBody, req.body, '');
    const out = await service.submitSingle(body, { idempotencyKey: req.get('Idempotency-Key') });
    res.status(out.created ? 202 : 200).json({ taskId: out.taskId, status: out.status });
  });

  registerBatchRoutes(api, service);

  api.get('/tasks/stats', role('viewer'), async (_req, res) => {
    res.json(await tsm.getQueueStats());
  });

  api.get('/tasks', role('viewer'), async (req, res) => {
    res.json(await service.listTasks(parse(ListTasksQuery, req.query, 'query')));
  });

  api.get('/tasks/:id', role('viewer'), async (req, res) => {
    const read = await service.getTask(parse(TaskIdParam, req.params.id, 'id'));
    if ('raw' in read) res.type('application/json').send(read.raw);
    else res.json(read.doc);
  });

  api.get('/tasks/:id/timeline', role('viewer'), async (req, res) => {
    res.json(await service.timeline(parse(TaskIdParam, req.params.id, 'id')));
  });

  api.post('/tasks/:id/cancel', role('publisher'), async (req, res) => {
    const id = parse(TaskIdParam, req.params.id, 'id');
    const { note } = parse(NoteBody, req.body ?? {}, 'body');
    const out = await service.cancel(id, principalOf(req), note);
    res.status(out.status === 'cancelled' ? 200 : 202).json(out);
  });

  api.delete('/tasks/:id', role('admin'), async (req, res) => {
    const id = parse(TaskIdParam, req.params.id, 'id');
    const q = parse(DeleteQuery, req.query, 'query');
    res.json(await service.remove(id, { force: q.force === 'true', note: q.note }, principalOf(req)));
  });

  api.post('/tasks/:id/reschedule', role('publisher'), async (req, res) => {
    const id = parse(TaskIdParam, req.params.id, 'id');
    const body = parse(RescheduleBody, req.body, 'body');
    service.checkHorizon(body.publishAt, 'body.publishAt');
    res.json(await service.reschedule(id, body.publishAt, principalOf(req), body.note));
  });

  api.get('/reviews', role('viewer'), async (req, res) => {
    res.json(await tsm.listReviews(parse(ListReviewsQuery, req.query, 'query')));
  });

  api.post('/reviews/:taskId/retry', role('operator'), async (req, res) => {
    const taskId = parse(TaskIdParam, req.params.taskId, 'taskId');
    res.json(await service.retry(taskId, parse(RetryBody, req.body, 'body'), principalOf(req)));
  });

  api.post('/reviews/:taskId/resolve', role('operator'), async (req, res) => {
    const taskId = parse(TaskIdParam, req.params.taskId, 'taskId');
    res.json(await service.resolve(taskId, parse(ResolveBody, req.body, 'body'), principalOf(req)));
  });

  api.post('/reviews/:taskId/discard', role('operator'), async (req, res) => {
    const taskId = parse(TaskIdParam, req.params.taskId, 'taskId');
    res.json(await service.discard(taskId, parse(DiscardBody, req.body, 'body'), principalOf(req)));
  });

  registerAccountRoutes(api, service);

  app.use(createDeskRouter({ service, tsm, redis: deps.redis, keys, limiter, log: deps.log, config: deps.config }));
  app.use((req, _res, next) => next(new ApiError(404, 'not_found', `no route ${req.method} ${req.path}`)));
  app.use(errorHandler(deps.log));
  return app;
}
