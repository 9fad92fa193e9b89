/**
 * A pubflow worker process: runs the workflows and the bookkeeping activities on the main task queue, and the
 * platform uploads on the upload queue with PUBFLOW_WORKER_CONCURRENCY slots. Start more processes to scale out.
 */
import { Client } from '@temporalio/client';
import { type NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from './activities';
import { loadConfig, type Config } from './config';
import { connectTemporalClient, connectTemporalWorker, createRedis, describeRedis } from './connections';
import { createLogger, toTemporalLogger, type Logger, type LogLevel } from './log';
import { createWorkerMetrics, installWithMetrics, type WorkerMetricsEndpoint } from './metrics/worker-metrics';
import { createDefaultDrivers } from './platforms';
import { loadAccounts } from './platforms/accounts';
import { ProjectionStore } from './projection/store';
import { ensureSchedules } from './schedules';
import { uploadQueueFor } from './shared/task-queues';
import { eventsQueueFor } from './events/types';
import { loadSubscriptions } from './events/subscriptions';
import { EventWebhooks } from './events/webhooks';
import { prebuiltWorkflowBundle, workflowInterceptorModules } from './prebuilt-workflows';
import { startTracing, type Tracing } from './tracing';
import { activityInterceptors, workflowSpanSinks } from './tracing/temporal';

export interface PubflowWorkersOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  deps: ActivityDeps;
  uploadConcurrency: number;
  /** The main queue's workflow-task slots (Config.workflowTaskSlots); absent: the SDK's default. */
  workflowTaskSlots?: number;
  /** Open runs kept in memory (Config.workflowCacheSize); absent: the SDK's default. */
  workflowCacheSize?: number;
  shutdownGraceMs?: number;
  /**
   * Pre-bundled workflow code: the worker process passes lib/workflow-bundle.js (built by `npm run build`), tests
   * their own bundle. Without it (nor workflowsPath) the worker bundles ./workflows at start.
   */
  workflowBundle?: WorkerOptions['workflowBundle'];
  /** Workflow source to bundle at start (tests); ignored when workflowBundle is given. */
  workflowsPath?: string;
  /**
   * OpenTelemetry (src/tracing): activity spans, and the sink for workflow spans. A prebuilt `workflowBundle` must
   * then be the traced one. Absent: only the log-context interceptors.
   */
  tracing?: Tracing | null;
}

/**
 * How long after the grace period a stopping worker gives up waiting (the SDK's shutdownForceTime, counted from the
 * shutdown request): `run()` then rejects (the SDK logs GracefulShutdownPeriodExpiredError) and runWorker's caller
 * logs "worker failed" and exits 1. Without it a worker waits for ever on an upload whose driver ignores the abort,
 * or on a workflow run the SDK failed to evict (seen in the fault suite: a core "invalid state MarkerCommandCreated"
 * error, after which a worker never finished draining). Whatever it leaves running is Temporal's to time out: an
 * upload becomes an Unconfirmed review.
 */
export const SHUTDOWN_FORCE_AFTER_GRACE_MS = 10_000;

/** Event POSTs at once per worker process (each has a 10 s limit). */
const EVENT_POST_SLOTS = 20;

/** The workers of one pubflow process. Run them together; shutting one down shuts all. */
export async function createPubflowWorkers(opts: PubflowWorkersOptions) {
  const activities = createActivities(opts.deps);
  const { upload, postEvent, ...bookkeeping } = activities;
  const tracing = opts.tracing ?? null;
  // A prebuilt bundle has its workflow interceptors built in (src/prebuilt-workflows.ts); source bundled here gets them.
  const workflowModules = workflowInterceptorModules(__dirname, { traced: tracing !== null });
  const workflowSource = opts.workflowBundle
    ? { workflowBundle: opts.workflowBundle }
    : { workflowsPath: opts.workflowsPath ?? require.resolve('./workflows') };
  const activity = activityInterceptors(tracing);
  const sinks = workflowSpanSinks(tracing);
  const shutdownGraceTime = opts.shutdownGraceMs ?? 30_000;
  const shutdownForceTime = shutdownGraceTime + SHUTDOWN_FORCE_AFTER_GRACE_MS;
  const main = await Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue,
    ...workflowSource,
    interceptors: { activity, ...(opts.workflowBundle ? {} : { workflowModules }) },
    ...(sinks ? { sinks } : {}),
    activities: bookkeeping,
    ...(opts.workflowTaskSlots !== undefined ? { maxConcurrentWorkflowTaskExecutions: opts.workflowTaskSlots } : {}),
    ...(opts.workflowCacheSize !== undefined ? { maxCachedWorkflows: opts.workflowCacheSize } : {}),
    shutdownGraceTime,
    shutdownForceTime,
  });
  const uploads = await Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: uploadQueueFor(opts.taskQueue),
    activities: { upload },
    interceptors: { activity },
    maxConcurrentActivityTaskExecutions: opts.uploadConcurrency,
    // Heartbeats carry cancellation: send them at least every 2 s (not the SDK's default 80% of the heartbeat
    // timeout), so cancelling a task aborts its upload within seconds.
    maxHeartbeatThrottleInterval: '2s',
    shutdownGraceTime,
    shutdownForceTime,
  });
  // Event webhooks only: their POSTs on a queue of their own, so a slow receiver never takes a main-queue slot.
  const events = opts.deps.events
    ? await Worker.create({
        connection: opts.connection,
        namespace: opts.namespace,
        taskQueue: eventsQueueFor(opts.taskQueue),
        activities: { postEvent },
        interceptors: { activity },
        maxConcurrentActivityTaskExecutions: EVENT_POST_SLOTS,
        shutdownGraceTime,
        shutdownForceTime,
      })
    : undefined;
  const all = [main, uploads, ...(events ? [events] : [])];
  return {
    main,
    uploads,
    events,
    /** Runs them all until shutdown (SIGINT/SIGTERM or shutdown()). */
    async run(): Promise<void> {
      await Promise.all(all.map((w) => w.run()));
    },
    shutdown(): void {
      for (const w of all) if (w.getState() === 'RUNNING') w.shutdown();
    },
  };
}

/**
 * Routes the SDK's own lines (the core's, workflow `log` through the logger sink, activity `Context.current().log`)
 * to our logger, so a worker process writes one JSON format. Must run before the first connection is made.
 */
export function installTemporalRuntime(
  log: Logger,
  level: LogLevel,
  metrics: WorkerMetricsEndpoint = { host: '127.0.0.1', port: 0 },
): boolean {
  // The core is chatty at info; forward its warnings unless debugging.
  const core = level === 'trace' ? 'TRACE' : level === 'debug' ? 'DEBUG' : 'WARN';
  // The SDK's metrics and ours (src/metrics/worker-metrics.ts) on one Prometheus endpoint.
  return installWithMetrics(
    (m) =>
      Runtime.install({
        logger: toTemporalLogger(log),
        telemetryOptions: { logging: { filter: { core, other: 'ERROR' }, forward: {} }, ...(m ? { metrics: m } : {}) },
      }),
    metrics,
    log,
  );
}

export async function runWorker(config: Config = loadConfig()): Promise<void> {
  const log = createLogger('worker');
  // Before anything connects: a missing bundle is a build problem, and should say so at once.
  // Tracing on: the bundle with the OpenTelemetry workflow interceptors; off, the one without (no cost).
  const workflowBundle = prebuiltWorkflowBundle(__dirname, { traced: config.tracing !== null });
  const tracing = startTracing(config.tracing, 'worker');
  // A bad events file is a configuration error: stop before anything connects, naming the file and the field.
  const events = config.events.file
    ? new EventWebhooks({ subscriptions: loadSubscriptions(config.events.file), retry: config.events.retry })
    : undefined;
  const metricsOn = installTemporalRuntime(log, config.logLevel, config.workerMetrics);
  const metrics = createWorkerMetrics(Runtime.instance().metricMeter);
  const redis = createRedis(config.redis, { maxRetriesPerRequest: 1, enableOfflineQueue: false });
  redis.on('error', (err) => log.warn('redis error', { error: err.message }));
  const store = new ProjectionStore(redis, { ttlSeconds: config.statusTtlSeconds });
  const accounts = loadAccounts(config.accountsFile);
  const drivers = createDefaultDrivers({
    publishedRoot: config.publishedDir,
    mediaRoot: config.mediaRoot,
    // The driver gives up (Unconfirmed, with its own message) just before the activity would time out.
    webhookTimeoutMs: Math.max(1000, config.policyFor('webhook').uploadTimeoutMs - 5000),
  });
  const connection = await connectTemporalWorker(config.temporalTarget);
  const clientConnection = await connectTemporalClient(config.temporalTarget);
  const client = new Client({ connection: clientConnection, namespace: config.temporal.namespace });
  await ensureSchedules(client, { taskQueue: config.temporal.taskQueue, pruneIntervalMs: config.pruneIntervalMs });
  const workers = await createPubflowWorkers({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    deps: { store, accounts, drivers, log, client, metrics, events },
    uploadConcurrency: config.workerConcurrency,
    workflowTaskSlots: config.workflowTaskSlots,
    workflowCacheSize: config.workflowCacheSize,
    shutdownGraceMs: config.shutdownGraceMs,
    workflowBundle,
    tracing,
  });
  log.info('worker started', {
    temporal: config.temporalTarget.summary,
    redis: describeRedis(config.redis),
    taskQueue: config.temporal.taskQueue,
    uploadConcurrency: config.workerConcurrency,
    workflowTaskSlots: config.workflowTaskSlots,
    workflowCache: config.workflowCacheSize ?? 'sdk default',
    workflowBundle: workflowBundle.codePath,
    metrics: metricsOn ? `http://${config.workerMetrics.host}:${config.workerMetrics.port}/metrics` : null,
    eventSubscriptions: events?.subscriptions.list().length ?? 0,
    traces: config.tracing ? `${config.tracing.tracesUrl} (${config.tracing.protocol})` : null,
  });
  try {
    await workers.run();
  } finally {
    await clientConnection.close();
    await connection.close();
    redis.disconnect();
    await tracing?.shutdown().catch((err: Error) => log.warn('traces not flushed', { error: err.message }));
    log.info('worker stopped');
  }
}

if (require.main === module) {
  runWorker().catch((err) => {
    createLogger('worker').fatal('worker failed', { error: err instanceof Error ? err.stack : String(err) });
    process.exit(1);
  });
}
