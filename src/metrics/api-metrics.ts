/**
 * The API's Prometheus endpoint (`GET /metrics`, prom-client): HTTP requests by method, route pattern and status
 * with a latency histogram, the process's default metrics, and the projection's gauges, read at scrape time.
 * Each app has its own registry (no module-level singleton: tests build many apps in one process).
 */
import type { Client } from '@temporalio/client';
import type express from 'express';
import type { RequestHandler } from 'express';
import type { Redis } from 'ioredis';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Logger } from '../log';
import type { DriverRegistry } from '../platforms';
import type { AccountRegistry } from '../platforms/accounts';
import { HTTP_DURATION_BUCKETS, METRICS } from './names';
import { countAccountsNeedingLogin, readProjectionSnapshot } from './projection-gauges';

export interface ApiMetricsDeps {
  redis: Redis;
  client: Client;
  drivers: DriverRegistry;
  accounts: AccountRegistry;
  config: { temporal: { taskQueue: string } };
  log: Logger;
}

/** Methods outside this set are counted as `other`, so a client cannot grow the label set. */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
/** The route label of a request no route matched (404s, and requests refused before routing). */
export const UNMATCHED_ROUTE = 'unmatched';
/** How long a scrape waits for Temporal's answer about accounts before leaving that gauge out. */
const TEMPORAL_TIMEOUT_MS = 5000;

export function createApiMetrics(deps: ApiMetricsDeps) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const labelNames = ['method', 'route', 'code'] as const;
  const requests = new Counter({
    name: METRICS.httpRequests,
    help: 'HTTP requests by method, route pattern and status code',
    labelNames,
    registers: [registry],
  });
  const duration = new Histogram({
    name: METRICS.httpDuration,
    help: 'HTTP request latency by method, route pattern and status code',
    labelNames,
    buckets: HTTP_DURATION_BUCKETS,
    registers: [registry],
  });
  const tasks = new Gauge({
    name: METRICS.tasks,
    help: 'Tasks in the projection by status (index cardinality; may include documents expired since the last prune)',
    labelNames: ['status'],
    registers: [registry],
  });
  const reviews = new Gauge({
    name: METRICS.reviewsOpen,
    help: 'Open reviews by error kind and platform',
    labelNames: ['kind', 'platform'],
    registers: [registry],
  });
  const oldest = new Gauge({
    name: METRICS.reviewOldestAge,
    help: 'Seconds since the oldest open review failed (0 with none open)',
    registers: [registry],
  });
  const needingLogin = new Gauge({
    name: METRICS.accountsNeedingLogin,
    help: 'Accounts whose queue is held until a new login',
    registers: [registry],
  });
  const collectErrors = new Counter({
    name: METRICS.collectErrors,
    help: 'Scrapes that could not read a source (redis, temporal); its gauges are left out of that scrape',
    labelNames: ['source'],
    registers: [registry],
  });
  for (const source of ['redis', 'temporal']) collectErrors.inc({ source }, 0);

  async function refreshProjection(): Promise<void> {
    tasks.reset();
    reviews.reset();
    oldest.reset();
    try {
      const snap = await readProjectionSnapshot(deps.redis, deps.drivers.platforms());
      for (const [status, n] of Object.entries(snap.tasks)) tasks.set({ status }, n);
      for (const r of snap.reviews) reviews.set({ kind: r.kind, platform: r.platform }, r.count);
      oldest.set(snap.oldestReviewAgeSeconds);
    } catch (err) {
      collectErrors.inc({ source: 'redis' });
      deps.log.warn('metrics: cannot read the projection', { error: (err as Error).message });
    }
  }

  async function refreshAccounts(): Promise<void> {
    needingLogin.reset();
    try {
      const n = await deps.client.withDeadline(Date.now() + TEMPORAL_TIMEOUT_MS, () =>
        countAccountsNeedingLogin(
          deps.client,
          deps.accounts.list().map((a) => a.id),
          deps.config.temporal.taskQueue,
        ),
      );
      needingLogin.set(n);
    } catch (err) {
      collectErrors.inc({ source: 'temporal' });
      deps.log.warn('metrics: cannot count the accounts needing a login', { error: (err as Error).message });
    }
  }

  /**
   * Counts every request once it is answered. The route label is the matched pattern (`/api/v1/tasks/:id`), never
   * the URL. Express sets `req.route` when a route matches and restores `req.baseUrl` when an error leaves the
   * router, so by the time the response ends the mount path may be gone: the pattern is taken the moment
   * `req.route` is set.
   */
  const http: RequestHandler = (req, res, next) => {
    const start = process.hrtime.bigint();
    let route = UNMATCHED_ROUTE;
    let current: unknown;
    Object.defineProperty(req, 'route', {
      configurable: true,
      enumerable: true,
      get: () => current,
      set: (value: { path?: unknown } | undefined) => {
        current = value;
        if (value && typeof value.path === 'string') route = `${req.baseUrl}${value.path}`;
      },
    });
    res.once('finish', () => {
      const labels = { method: METHODS.has(req.method) ? req.method : 'other', route, code: String(res.statusCode) };
      requests.inc(labels);
      duration.observe(labels, Number(process.hrtime.bigint() - start) / 1e9);
    });
    next();
  };

  const scrape: RequestHandler = async (_req, res) => {
    await Promise.all([refreshProjection(), refreshAccounts()]);
    res.type(registry.contentType).send(await registry.metrics());
  };

  return { registry, http, scrape };
}

/**
 * Mounts the HTTP metrics middleware (call it first, so every request is counted) and `GET /metrics`, behind
 * `guards` (the auth middleware: like every GET, the endpoint needs the viewer role).
 */
export function registerMetricsRoutes(app: express.Express, deps: ApiMetricsDeps, ...guards: RequestHandler[]): void {
  const metrics = createApiMetrics(deps);
  app.use(metrics.http);
  app.get('/metrics', ...guards, metrics.scrape);
}
