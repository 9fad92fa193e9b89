import { createHash, randomUUID } from 'node:crypto';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowExecutionDescription,
} from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import express, { type Request, type Response, type Router } from 'express';
import type Redis from 'ioredis';
import type { z } from 'zod';
import type { Config } from '../config';
import type { Logger } from '../log';
import type { DriverRegistry } from '../platforms';
import type { AccountRegistry } from '../platforms/accounts';
import type { ProjectionStore } from '../projection/store';
import type { TaskStateManager } from '../projection/task-state-manager';
import { rescheduleUpdate, reviewDecisionUpdate, taskStateQuery, type ReviewDecision } from '../shared/definitions';
import { SEARCH_ATTRIBUTE_KEYS } from '../shared/search-attributes';
import { DOC_MEMO_KEY, initialTaskDoc } from '../shared/task-doc';
import type { PublishRequest, TaskDoc } from '../shared/types';
import { priorityKey } from '../shared/priority';
import type { PublishSingleInput } from '../workflows/publish-single';
import { registerAccountRoutes } from './accounts';
import { registerBatchRoutes } from './batch';
import { requireJsonBody } from './content-type';
import { ApiError, badRequest, conflict, errorHandler, fromZod, notFound } from './errors';
import { resolveMediaPath } from './media';
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

export interface AppDeps {
  client: Client;
  redis: Redis;
  tsm: TaskStateManager;
  store: ProjectionStore;
  accounts: AccountRegistry;
  drivers: DriverRegistry;
  config: Pick<Config, 'mediaRoot' | 'policyFor' | 'temporal' | 'scheduleHorizonMs'>;
  log: Logger;
}

function parse<S extends z.ZodType>(schema: S, value: unknown, where: string): z.infer<S> {
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw fromZod(where, r.error);
  return r.data;
}

/** Workflow ids derived from an Idempotency-Key: the same key always names the same task. */
export function idempotentTaskId(prefix: string, key: string): string {
  return `${prefix}-${createHash('sha256').update(key).digest('hex').slice(0, 32)}`;
}

export function createApp(deps: AppDeps): express.Express {
  const { client, tsm, store, accounts, config, log } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.use(requireJsonBody());
  app.use(express.json({ limit: '50mb' }));

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  app.get('/readyz', async (_req, res) => {
    const checks = await Promise.all([
      deps.redis
        .ping()
        .then(() => 'ok')
        .catch((e: Error) => `error: ${e.message}`),
      client.connection.workflowService
        .getSystemInfo({})
        .then(() => 'ok')
        .catch((e: Error) => `error: ${e.message}`),
    ]);
    const [redis, temporal] = checks;
    const ready = redis === 'ok' && temporal === 'ok';
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not_ready', redis, temporal });
  });

  app.get('/openapi.json', (_req, res) => {
    res.json(openApiDocument);
  });

  const api: Router = express.Router();
  app.use('/api/v1', api);

  function checkHorizon(publishAt: string, field: string) {
    if (Date.parse(publishAt) > Date.now() + config.scheduleHorizonMs)
      throw badRequest(
        field,
        `more than ${Math.round(config.scheduleHorizonMs / 86_400_000)} days ahead (PUBFLOW_SCHEDULE_HORIZON)`,
      );
  }

  /** Validates a parsed publish body against the accounts, drivers and media root; returns the request to run. */
  function toRequest(body: PublishBody, where: string): PublishRequest {
    const f = (name: string) => (where ? `${where}.${name}` : name);
    if (!deps.drivers.get(body.platform))
      throw badRequest(
        f('platform'),
        `unknown platform "${body.platform}" (known: ${deps.drivers.platforms().join(', ')})`,
      );
    const account = accounts.get(body.accountId);
    if (!account) throw badRequest(f('accountId'), `unknown account "${body.accountId}"`);
    if (account.platform !== body.platform)
      throw badRequest(
        f('platform'),
        `account "${account.id}" is on platform "${account.platform}", not "${body.platform}"`,
      );
    if (body.publishAt) checkHorizon(body.publishAt, f('publishAt'));
    const request: PublishRequest = {
      ...body,
      video: { path: resolveMediaPath(config.mediaRoot, body.video.path, f('video.path')) },
    };
    if (body.cover) request.cover = { path: resolveMediaPath(config.mediaRoot, body.cover.path, f('cover.path')) };
    return request;
  }

  registerBatchRoutes(api, { client, store, tsm, config, log, toRequest });

  async function currentStatus(taskId: string): Promise<string> {
    const doc = await tsm.getTaskState(taskId).catch(() => null);
    return doc?.status ?? 'pending';
  }

  api.post('/publish', async (req: Request, res: Response) => {
    const body = parse(PublishBody, req.body, '');
    const request = toRequest(body, '');
    const key = req.get('Idempotency-Key');
    if (key !== undefined && (key.length === 0 || key.length > 256))
      throw badRequest('Idempotency-Key', 'must be 1 to 256 characters');
    const taskId = key ? idempotentTaskId('pub', key) : `pub-${randomUUID()}`;
    const createdAt = new Date().toISOString();
    const input: PublishSingleInput = { request, policy: config.policyFor(request.platform), createdAt };
    // Also the workflow's first memo: until the task first changes status, the reconciler can rebuild it from
    // visibility alone when no worker answers its query.
    const doc = initialTaskDoc({ taskId, request, parentTaskId: null, createdAt, runId: null });
    try {
      const handle = await client.workflow.start('publishSingle', {
        taskQueue: config.temporal.taskQueue,
        workflowId: taskId,
        args: [input],
        memo: { [DOC_MEMO_KEY]: doc },
        // The id is the task: one key, one task, ever (within retention). Temporal enforces it.
        workflowIdConflictPolicy: 'FAIL',
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        priority: { priorityKey: priorityKey(request.priority) },
        typedSearchAttributes: new TypedSearchAttributes([
          { key: SEARCH_ATTRIBUTE_KEYS.status, value: 'pending' },
          { key: SEARCH_ATTRIBUTE_KEYS.type, value: 'publish' },
          { key: SEARCH_ATTRIBUTE_KEYS.platform, value: request.platform },
          { key: SEARCH_ATTRIBUTE_KEYS.account, value: request.accountId },
        ]),
      });
      // Visible at once; best-effort (the workflow writes every later version, and Redis may be down).
      await store
        .write({ ...doc, run_id: handle.firstExecutionRunId })
        .catch((err: Error) => log.warn('initial projection write failed', { taskId, error: err.message }));
      res.status(202).json({ taskId, status: 'pending' });
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) {
        res.status(200).json({ taskId, status: await currentStatus(taskId) });
        return;
      }
      throw err;
    }
  });

  api.get('/tasks/stats', async (_req, res) => {
    res.json(await tsm.getQueueStats());
  });

  api.get('/tasks', async (req, res) => {
    const q = parse(ListTasksQuery, req.query, 'query');
    res.json(await tsm.listTasks(q));
  });

  async function describe(taskId: string): Promise<WorkflowExecutionDescription | null> {
    try {
      return await client.workflow.getHandle(taskId).describe();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return null;
      throw err;
    }
  }

  api.get('/tasks/:id', async (req, res) => {
    const id = parse(TaskIdParam, req.params.id, 'id');
    const raw = await tsm.getRaw(id);
    if (raw !== null) {
      res.type('application/json').send(raw);
      return;
    }
    // Not in the mirror but still running (e.g. Redis was wiped): ask the truth, so a live task is never hidden.
    // A finished task without a document has expired or was deleted: 404, as redis-cli GET would say.
    const d = await describe(id);
    if (!d || d.status.name !== 'RUNNING') throw notFound(`task ${id}`);
    try {
      const doc: TaskDoc = await client.workflow.getHandle(id).query(taskStateQuery);
      res.json(doc);
    } catch {
      throw notFound(`task ${id}`);
    }
  });

  api.post('/tasks/:id/cancel', async (req, res) => {
    const id = parse(TaskIdParam, req.params.id, 'id');
    const out = await tsm.cancelTask(id);
    res.status(out.status === 'cancelled' ? 200 : 202).json(out);
  });

  api.delete('/tasks/:id', async (req, res) => {
    const id = parse(TaskIdParam, req.params.id, 'id');
    const q = parse(DeleteQuery, req.query, 'query');
    res.json(await tsm.deleteTask(id, { force: q.force === 'true' }));
  });

  api.post('/tasks/:id/reschedule', async (req, res) => {
    const id = parse(TaskIdParam, req.params.id, 'id');
    const body = parse(RescheduleBody, req.body, 'body');
    checkHorizon(body.publishAt, 'body.publishAt');
    const d = await describe(id);
    if (!d) throw notFound(`task ${id}`);
    if (d.status.name !== 'RUNNING') throw conflict('task_finished', `task ${id} has finished; nothing to reschedule`);
    try {
      const out = await client.workflow.getHandle(id).executeUpdate(rescheduleUpdate, { args: [body] });
      res.json({ taskId: id, scheduled_for: out.publishAt });
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError)
        throw conflict('not_waiting', err.cause?.message ?? `task ${id} is no longer waiting for its publish time`);
      throw err;
    }
  });

  async function decide(taskId: string, decision: ReviewDecision) {
    const d = await describe(taskId);
    if (!d) throw notFound(`task ${taskId}`);
    if (d.status.name !== 'RUNNING')
      throw conflict('review_closed', `task ${taskId} has finished; it has no open review`);
    try {
      return await client.workflow.getHandle(taskId).executeUpdate(reviewDecisionUpdate, { args: [decision] });
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError)
        throw conflict('no_open_review', err.cause?.message ?? `task ${taskId} has no open review`);
      if (err instanceof WorkflowNotFoundError) throw conflict('review_closed', `task ${taskId} has finished`);
      throw err;
    }
  }

  api.get('/reviews', async (req, res) => {
    const q = parse(ListReviewsQuery, req.query, 'query');
    res.json(await tsm.listReviews(q));
  });

  api.post('/reviews/:taskId/retry', async (req, res) => {
    const taskId = parse(TaskIdParam, req.params.taskId, 'taskId');
    const body = parse(RetryBody, req.body, 'body');
    const patch = body.patch ? { ...body.patch } : undefined;
    if (patch?.video)
      patch.video = { path: resolveMediaPath(config.mediaRoot, patch.video.path, 'body.patch.video.path') };
    if (patch?.accountId) {
      const account = accounts.get(patch.accountId);
      if (!account) throw badRequest('body.patch.accountId', `unknown account "${patch.accountId}"`);
      const current = await tsm.getTaskState(taskId).catch(() => null);
      if (current?.platform && account.platform !== current.platform)
        throw badRequest(
          'body.patch.accountId',
          `account "${account.id}" is on platform "${account.platform}", not "${current.platform}"`,
        );
    }
    res.json(await decide(taskId, { action: 'retry', patch, note: body.note }));
  });

  api.post('/reviews/:taskId/resolve', async (req, res) => {
    const taskId = parse(TaskIdParam, req.params.taskId, 'taskId');
    const body = parse(ResolveBody, req.body, 'body');
    res.json(await decide(taskId, { action: 'resolve', url: body.url, note: body.note }));
  });

  api.post('/reviews/:taskId/discard', async (req, res) => {
    const taskId = parse(TaskIdParam, req.params.taskId, 'taskId');
    const body = parse(DiscardBody, req.body, 'body');
    res.json(await decide(taskId, { action: 'discard', note: body.note }));
  });

  registerAccountRoutes(api, { client, accounts, config });

  app.use((req, _res, next) => next(new ApiError(404, 'not_found', `no route ${req.method} ${req.path}`)));
  app.use(errorHandler(log));
  return app;
}
