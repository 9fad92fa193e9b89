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
import { prebuiltWorkflowBundle } from './prebuilt-workflows';

export interface PubflowWorkersOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  deps: ActivityDeps;
  uploadConcurrency: number;
  shutdownGraceMs?: number;
  /**
   * Pre-bundled workflow code: the worker process passes lib/workflow-bundle.js (built by `npm run build`), tests
   * their own bundle. Without it (nor workflowsPath) the worker bundles ./workflows at start.
   */
  workflowBundle?: WorkerOptions['workflowBundle'];
  /** Workflow source to bundle at start (tests); ignored when workflowBundle is given. */
  workflowsPath?: string;
}

/** The two workers of one pubflow process. Run them together; shutting one down shuts both. */
export async function createPubflowWorkers(opts: PubflowWorkersOptions) {
  const activities = createActivities(opts.deps);
  const { upload, ...bookkeeping } = activities;
  const workflowSource = opts.workflowBundle
    ? { workflowBundle: opts.workflowBundle }
    : { workflowsPath: opts.workflowsPath ?? require.resolve('./workflows') };
  const shutdownGraceTime = opts.shutdownGraceMs ?? 30_000;
  const main = await Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue,
    ...workflowSource,
    activities: bookkeeping,
    shutdownGraceTime,
  });
  const uploads = await Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: uploadQueueFor(opts.taskQueue),
    activities: { upload },
    maxConcurrentActivityTaskExecutions: opts.uploadConcurrency,
    // Heartbeats carry cancellation: send them at least every 2 s (not the SDK's default 80% of the heartbeat
    // timeout), so cancelling a task aborts its upload within seconds.
    maxHeartbeatThrottleInterval: '2s',
    shutdownGraceTime,
  });
  return {
    main,
    uploads,
    /** Runs both until shutdown (SIGINT/SIGTERM or shutdown()). */
    async run(): Promise<void> {
      await Promise.all([main.run(), uploads.run()]);
    },
    shutdown(): void {
      if (main.getState() === 'RUNNING') main.shutdown();
      if (uploads.getState() === 'RUNNING') uploads.shutdown();
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
  const workflowBundle = prebuiltWorkflowBundle();
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
    deps: { store, accounts, drivers, log, client, metrics },
    uploadConcurrency: config.workerConcurrency,
    shutdownGraceMs: config.shutdownGraceMs,
    workflowBundle,
  });
  log.info('worker started', {
    temporal: config.temporalTarget.summary,
    redis: describeRedis(config.redis),
    taskQueue: config.temporal.taskQueue,
    uploadConcurrency: config.workerConcurrency,
    workflowBundle: workflowBundle.codePath,
    metrics: metricsOn ? `http://${config.workerMetrics.host}:${config.workerMetrics.port}/metrics` : null,
  });
  try {
    await workers.run();
  } finally {
    await clientConnection.close();
    await connection.close();
    redis.disconnect();
    log.info('worker stopped');
  }
}

if (require.main === module) {
  runWorker().catch((err) => {
    createLogger('worker').fatal('worker failed', { error: err instanceof Error ? err.stack : String(err) });
    process.exit(1);
  });
}
