/**
 * Wires the real pubflow worker (real activities, real Redis projection) to a Temporal test environment,
 * with the platform replaced by a ScriptedDriver: only the outside world is simulated.
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import {
  bundleWorkflowCode,
  NativeConnection,
  Worker,
  type WorkerOptions,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import Redis from 'ioredis';
import { createActivities, type ActivityDeps } from '../../src/activities';
import { CLIENT_CHANNEL_ARGS } from '../../src/connections';
import { createLogger } from '../../src/log';
import type { WorkerMetrics } from '../../src/metrics/worker-metrics';
import { DriverRegistry } from '../../src/platforms';
import { loadAccounts, type AccountRegistry } from '../../src/platforms/accounts';
import type { PlatformDriver } from '../../src/platforms/types';
import { ProjectionStore } from '../../src/projection/store';
import { TaskStateManager } from '../../src/projection/task-state-manager';
import { uploadQueueFor } from '../../src/shared/task-queues';
import type { TaskDoc } from '../../src/shared/types';
import { createPubflowWorkers } from '../../src/worker';

/** What createPubflowWorkers returns (main, uploads, run, shutdown). */
export type PubflowWorkers = Awaited<ReturnType<typeof createPubflowWorkers>>;
import { workflowInterceptorModules } from '../../src/prebuilt-workflows';
import { waitUntil, type PollOptions } from './polling';
import {
  createTimeSkippingEnv,
  startDevServer,
  startRedis,
  tempDir,
  type DevServer,
  type DevServerOptions,
  type RedisServer,
} from './servers';

let bundlePromise: Promise<WorkflowBundleWithSourceMap> | undefined;
/** Bundle the workflows once per test file, with the workflow interceptors the prebuilt bundle has (log context). */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundlePromise ??= bundleWorkflowCode({
    workflowsPath: require.resolve('../../src/workflows'),
    workflowInterceptorModules: workflowInterceptorModules(path.resolve(__dirname, '../../src')),
    logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} },
  });
  return bundlePromise;
}

export const TEST_ACCOUNTS = [
  { id: 'acct-1', platform: 'scripted', displayName: 'Scripted 1', settings: {} },
  { id: 'acct-2', platform: 'scripted', displayName: 'Scripted 2', settings: {} },
  { id: 'demo', platform: 'local', displayName: 'Demo', settings: {} },
];

export function writeAccountsFile(accounts: unknown[] = TEST_ACCOUNTS): string {
  const file = path.join(tempDir('accounts'), 'accounts.json');
  writeFileSync(file, JSON.stringify(accounts));
  return file;
}

export interface Harness {
  redis: Redis;
  store: ProjectionStore;
  tsm: TaskStateManager;
  accounts: AccountRegistry;
  close(): Promise<void>;
}

export function projectionHarness(redisUrl: string, accountsFile = writeAccountsFile()): Harness {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  return {
    redis,
    store: new ProjectionStore(redis),
    tsm: new TaskStateManager(redis),
    accounts: loadAccounts(accountsFile),
    async close() {
      redis.disconnect();
    },
  };
}

/**
 * The per-file setup of a test file: `start` runs once in `beforeAll` and its result goes to `onStart` (which
 * assigns the file's variables, and may start more); the stack is closed in `afterAll`, also when `onStart` failed.
 */
export function perFile<T extends { close(): Promise<void> }>(
  start: () => Promise<T>,
  onStart: (stack: T) => unknown,
  timeouts: { startMs?: number; closeMs?: number } = {},
): void {
  let stack: T | undefined;
  beforeAll(async () => {
    stack = await start();
    await onStart(stack);
  }, timeouts.startMs);
  afterAll(async () => {
    await stack?.close();
  }, timeouts.closeMs);
}

export interface WorkflowTestStack {
  env: TestWorkflowEnvironment;
  redisServer: RedisServer;
  harness: Harness;
  close(): Promise<void>;
}

/**
 * What a workflow test file sets up once in `beforeAll`: one time-skipping environment, one redis-server and the
 * projection harness on it, with the workflows bundled meanwhile (each worker of the file reuses the bundle).
 */
export async function startWorkflowTestStack(
  opts: { accounts?: unknown[]; appendonly?: boolean } = {},
): Promise<WorkflowTestStack> {
  const [env, redisServer] = await Promise.all([
    createTimeSkippingEnv(),
    startRedis({ appendonly: opts.appendonly }),
    workflowBundle(),
  ]);
  const harness = projectionHarness(redisServer.url, writeAccountsFile(opts.accounts));
  return {
    env,
    redisServer,
    harness,
    async close() {
      await harness.close();
      await env.teardown();
      await redisServer.destroy();
    },
  };
}

/** Run a pubflow worker pair on a fresh task queue while `fn` runs. */
export async function withWorker<T>(
  opts: {
    connection: NativeConnection;
    namespace?: string;
    harness: Harness;
    drivers: PlatformDriver[];
    uploadConcurrency?: number;
    progressIntervalMs?: number;
    /** Default: a new one, so each call has its own queue. Give one to bring a worker back for open workflows. */
    taskQueue?: string;
    /** What the activities record (src/metrics/worker-metrics.ts); default: nothing. */
    metrics?: WorkerMetrics;
    /** Default: the harness's store. */
    store?: ProjectionStore;
    /** Event webhooks (test/events/); default none. */
    events?: ActivityDeps['events'];
    /** The main queue's workflow-task slots and the workflow cache (PUBFLOW_WORKFLOW_*); default: the SDK's. */
    workflowTaskSlots?: number;
    workflowCacheSize?: number;
  },
  fn: (taskQueue: string, workers: PubflowWorkers) => Promise<T>,
): Promise<T> {
  const taskQueue = opts.taskQueue ?? `tq-${randomUUID()}`;
  const workers = await createPubflowWorkers({
    connection: opts.connection,
    namespace: opts.namespace ?? 'default',
    taskQueue,
    deps: {
      store: opts.store ?? opts.harness.store,
      accounts: opts.harness.accounts,
      drivers: new DriverRegistry(opts.drivers),
      log: createLogger('test-worker', { silent: true }),
      progressIntervalMs: opts.progressIntervalMs,
      metrics: opts.metrics,
      events: opts.events,
    },
    uploadConcurrency: opts.uploadConcurrency ?? 3,
    ...(opts.workflowTaskSlots !== undefined ? { workflowTaskSlots: opts.workflowTaskSlots } : {}),
    ...(opts.workflowCacheSize !== undefined ? { workflowCacheSize: opts.workflowCacheSize } : {}),
    shutdownGraceMs: 1000,
    workflowBundle: await workflowBundle(),
  });
  const running = workers.run();
  try {
    return await fn(taskQueue, workers);
  } finally {
    workers.shutdown();
    await running;
  }
}

/** Wait until the task's document, as the TaskStateManager reads it from Redis, satisfies `pred`; return it. */
export function waitForDoc(h: Harness, id: string, pred: (d: TaskDoc) => boolean, opts?: PollOptions) {
  return waitUntil(
    `the document of ${id} to match`,
    async () => {
      const d = await h.tsm.getTaskState(id);
      return d && pred(d) ? d : undefined;
    },
    opts,
  );
}

/**
 * Waits for the workflow to end cancelled. Always await this before the test's worker stops: a workflow left with
 * activities pending on a stopped task queue would hold the shared test server's clock.
 */
export async function expectCancelled(handle: WorkflowHandle): Promise<void> {
  const err = await handle.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
}

export type { Client };

/** The dynamic config `make up` gives the dev server: 10 priority levels, one partition (strict priority order). */
export const MAKE_UP_DYNAMIC_CONFIG = {
  'matching.priorityLevels': 10,
  'matching.useNewMatcher': true,
  'matching.numTaskqueueReadPartitions': 1,
  'matching.numTaskqueueWritePartitions': 1,
};

export interface DevStack {
  dev: DevServer;
  redisServer: RedisServer;
  harness: Harness;
  /** The client's connection. */
  connection: Connection;
  client: Client;
  /** For workers. */
  native: NativeConnection;
  close(): Promise<void>;
}

/**
 * A dev server (configured as `make up` runs it unless `devServer` says otherwise), a redis-server, and the
 * connections a test file needs; the workflows bundled meanwhile.
 */
export async function startDevStack(
  accounts: unknown[] = TEST_ACCOUNTS,
  opts: { devServer?: DevServerOptions } = {},
): Promise<DevStack> {
  const [dev, redisServer] = await Promise.all([
    startDevServer(opts.devServer ?? { dynamicConfig: MAKE_UP_DYNAMIC_CONFIG }),
    startRedis(),
    workflowBundle(),
  ]);
  const harness = projectionHarness(redisServer.url, writeAccountsFile(accounts));
  const connection = await Connection.connect({ address: dev.address, channelArgs: CLIENT_CHANNEL_ARGS });
  const native = await NativeConnection.connect({ address: dev.address });
  return {
    dev,
    redisServer,
    harness,
    connection,
    client: new Client({ connection }),
    native,
    async close() {
      await native.close();
      await connection.close();
      await harness.close();
      await Promise.all([dev.destroy(), redisServer.destroy()]);
    },
  };
}

/**
 * The two workers of one pubflow process, as src/worker.ts builds them, for tests that run them on their own terms
 * (start the upload worker later, several pairs on one queue). Unlike createPubflowWorkers it leaves the heartbeat
 * throttle to the caller (the SDK's default when absent), as these tests were written against.
 */
export async function createWorkerPair(opts: {
  connection: NativeConnection;
  taskQueue: string;
  deps: ActivityDeps;
  uploadConcurrency: number;
  maxHeartbeatThrottleInterval?: WorkerOptions['maxHeartbeatThrottleInterval'];
}): Promise<{ main: Worker; uploads: Worker }> {
  const { upload, ...bookkeeping } = createActivities(opts.deps);
  const main = await Worker.create({
    connection: opts.connection,
    taskQueue: opts.taskQueue,
    workflowBundle: await workflowBundle(),
    activities: bookkeeping, // createActivities includes the gate activities
    shutdownGraceTime: '1s',
  });
  const uploads = await Worker.create({
    connection: opts.connection,
    taskQueue: uploadQueueFor(opts.taskQueue),
    activities: { upload },
    maxConcurrentActivityTaskExecutions: opts.uploadConcurrency,
    ...(opts.maxHeartbeatThrottleInterval ? { maxHeartbeatThrottleInterval: opts.maxHeartbeatThrottleInterval } : {}),
    shutdownGraceTime: '1s',
  });
  return { main, uploads };
}

/** The event types of a workflow's history, in order (numbers of temporal.api.enums.v1.EventType). */
export async function historyEventTypes(handle: {
  fetchHistory(): Promise<{ events?: Array<{ eventType?: unknown }> | null }>;
}): Promise<number[]> {
  return ((await handle.fetchHistory()).events ?? []).map((e) => Number(e.eventType));
}

/** What an external-signal command costs its sender's history (protocol 3 and 5 send signals by local activity). */
export const EXTERNAL_SIGNAL_EVENT_TYPES = [
  temporal.api.enums.v1.EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
  temporal.api.enums.v1.EventType.EVENT_TYPE_EXTERNAL_WORKFLOW_EXECUTION_SIGNALED,
].map(Number);
