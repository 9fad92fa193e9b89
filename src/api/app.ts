/**
 * The HTTP API: thin adapters over the service layer (src/service). Each route parses its input with its zod
 * schema, calls one use case and maps the result; the service's errors become HTTP statuses in errors.ts.
 */
import express, { type Router } from 'express';
import type { Logger } from '../log';
import { registerMetricsRoutes } from '../metrics/api-metrics';
import { createService, type PubflowService, type ServiceDeps } from '../service';
import { registerAccountRoutes } from './accounts';
import { registerBatchRoutes } from './batch';
import { requireJsonBody } from './content-type';
import { ApiError, errorHandler, parse } from './errors';
import { openApiDocument } from './openapi';
import {
  DeleteQuery,
  DiscardBody,
  ListReviewsQuery,
  ListTasksQuery,
  PublishBody,
  RescheduleBody,
  ResolveBody,
  RetryBody,
  TaskIdParam,
} from './schemas';

/** What createApp needs: the service's dependencies, or a service already built from them. */
export type AppDeps = ServiceDeps & { service?: PubflowService; log: Logger };

/** Today's JSON body limit, under Temporal's 2 MiB payload limit so an oversized request is a fast 413. */
export const JSON_BODY_LIMIT = '2mb';

export function createApp(deps: AppDeps): express.Express {
  const service = deps.service ?? createService(deps);
  const { tsm } = deps;
  const app = express();
  app.disable('x-powered-by');
  registerMetricsRoutes(app, deps); // first: counts every request; GET /metrics (src/metrics/api-metrics.ts)
  app.use(requireJsonBody());
  app.use(express.json({ limit: JSON_BODY_LIMIT }));

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

  const api: Router = express.Router();
  app.use('/api/v1', api);

  api.post('/publish', async (req, res) => {
    const body = parse(PublishBody, req.body, '');
    const out = await service.submitSingle(body, { idempotencyKey: req.get('Idempotency-Key') });
    res.status(out.created ? 202 : 200).json({ taskId: out.taskId, status: out.status });
  });

  registerBatchRoutes(api, service);

  api.get('/tasks/stats', async (_req, res) => {
    res.json(await tsm.getQueueStats());
  });

  api.get('/tasks', async (req, res) => {
    res.json(await tsm.listTasks(parse(ListTasksQuery, req.query, 'query')));
  });

  api.get('/tasks/:id', async (req, res) => {
    const read = await service.getTask(parse(TaskIdParam, req.params.id, 'id'));
    if ('raw' in read) res.type('application/json').send(read.raw);
    else res.json(read.doc);
  });

  api.post('/tasks/:id/cancel', async (req, res) => {
    const out = await service.cancel(parse(TaskIdParam, req.params.id, 'id'));
    res.status(out.status === 'cancelled' ? 200 : 202).json(out);
  });

  api.delete('/tasks/:id', async (req, res) => {
    const id = parse(TaskIdParam, req.params.id, 'id');
    const q = parse(DeleteQuery, req.query, 'query');
    res.json(await service.remove(id, { force: q.force === 'true' }));
  });

  api.post('/tasks/:id/reschedule', async (req, res) => {
    const id = parse(TaskIdParam, req.params.id, 'id');
    const body = parse(RescheduleBody, req.body, 'body');
    service.checkHorizon(body.publishAt, 'body.publishAt');
    res.json(await service.reschedule(id, body.publishAt));
  });

  api.get('/reviews', async (req, res) => {
    res.json(await tsm.listReviews(parse(ListReviewsQuery, req.query, 'query')));
  });

  api.post('/reviews/:taskId/retry', async (req, res) => {
    const taskId = parse(TaskIdParam, req.params.taskId, 'taskId');
    res.json(await service.retry(taskId, parse(RetryBody, req.body, 'body')));
  });

  api.post('/reviews/:taskId/resolve', async (req, res) => {
    const taskId = parse(TaskIdParam, req.params.taskId, 'taskId');
    res.json(await service.resolve(taskId, parse(ResolveBody, req.body, 'body')));
  });

  api.post('/reviews/:taskId/discard', async (req, res) => {
    const taskId = parse(TaskIdParam, req.params.taskId, 'taskId');
    res.json(await service.discard(taskId, parse(DiscardBody, req.body, 'body')));
  });

  registerAccountRoutes(api, service);

  app.use((req, _res, next) => next(new ApiError(404, 'not_found', `no route ${req.method} ${req.path}`)));
  app.use(errorHandler(deps.log));
  return app;
}
