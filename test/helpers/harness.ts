/**
 * Wires the real pubflow worker (real activities, real Redis projection) to a Temporal test environment,
 * with the platform replaced by a ScriptedDriver: only the outside world is simulated.
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, NativeConnection, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import Redis from 'ioredis';
import { createLogger } from '../../src/log';
import { DriverRegistry } from '../../src/platforms';
import { loadAccounts, type AccountRegistry } from '../../src/platforms/accounts';
import type { PlatformDriver } from '../../src/platforms/types';
import { ProjectionStore } from '../../src/projection/store';
import { TaskStateManager } from '../../src/projection/task-state-manager';
import { createPubflowWorkers } from '../../src/worker';
import { startDevServer, startRedis, tempDir, type DevServer, type RedisServer } from './servers';

let bundlePromise: Promise<WorkflowBundleWithSourceMap> | undefined;
/** Bundle the workflows once per test file. */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundlePromise ??= bundleWorkflowCode({
    workflowsPath: require.resolve('../../src/workflows'),
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

/** Run a pubflow worker pair on a fresh task queue while `fn` runs. */
export async function withWorker<T>(
  opts: {
    connection: NativeConnection;
    namespace?: string;
    harness: Harness;
    drivers: PlatformDriver[];
    uploadConcurrency?: number;
    progressIntervalMs?: number;
  },
  fn: (taskQueue: string) => Promise<T>,
): Promise<T> {
  const taskQueue = `tq-${randomUUID()}`;
  const workers = await createPubflowWorkers({
    connection: opts.connection,
    namespace: opts.namespace ?? 'default',
    taskQueue,
    deps: {
      store: opts.harness.store,
      accounts: opts.harness.accounts,
      drivers: new DriverRegistry(opts.drivers),
      log: createLogger('test-worker', { silent: true }),
      progressIntervalMs: opts.progressIntervalMs,
    },
    uploadConcurrency: opts.uploadConcurrency ?? 3,
    shutdownGraceMs: 1000,
    workflowBundle: await workflowBundle(),
  });
  const running = workers.run();
  try {
    return await fn(taskQueue);
  } finally {
    workers.shutdown();
    await running;
  }
}

/** Poll until `check` returns a truthy value (real time; for conditions reached by background work). */
export async function eventually<T>(
  check: () => Promise<T | undefined | null | false>,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`condition not met in ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
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
  client: Client;
  /** For workers. */
  native: NativeConnection;
  close(): Promise<void>;
}

/** A dev server configured as `make up` runs it, a redis-server, and the connections a test file needs. */
export async function startDevStack(accounts: unknown[]): Promise<DevStack> {
  const [dev, redisServer] = await Promise.all([
    startDevServer({ dynamicConfig: MAKE_UP_DYNAMIC_CONFIG }),
    startRedis(),
  ]);
  const harness = projectionHarness(redisServer.url, writeAccountsFile(accounts));
  const connection = await Connection.connect({ address: dev.address });
  const native = await NativeConnection.connect({ address: dev.address });
  return {
    dev,
    redisServer,
    harness,
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
