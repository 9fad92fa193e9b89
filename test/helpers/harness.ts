/**
 * Wires the real pubflow worker (real activities, real Redis projection) to a Temporal test environment,
 * with the platform replaced by a ScriptedDriver: only the outside world is simulated.
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import Redis from 'ioredis';
import { createLogger } from '../../src/log';
import { DriverRegistry } from '../../src/platforms';
import { loadAccounts, type AccountRegistry } from '../../src/platforms/accounts';
import type { PlatformDriver } from '../../src/platforms/types';
import { ProjectionStore } from '../../src/projection/store';
import { TaskStateManager } from '../../src/projection/task-state-manager';
import { createPubflowWorkers } from '../../src/worker';
import { tempDir } from './servers';

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
