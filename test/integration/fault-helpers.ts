/**
 * Fault injection with the real processes (issue 6 §1): a Temporal dev server on a SQLite file, redis-server with
 * AOF, `node lib/worker.js` and `node lib/api.js` as child processes, and a local webhook endpoint that counts every
 * request per task and per Idempotency-Key. Only the platform is simulated; everything else is what `make up` runs.
 *
 * Every process is started here on 127.0.0.1 with free ports and temporary directories, and stopped by its PID.
 */
import { createTestKeys, type TestKeys } from '../helpers/api-keys';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, writeFileSync, writeSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection, ScheduleNotFoundError, type WorkflowHandle } from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import Redis from 'ioredis';
import { loadConfig } from '../../src/config';
import { CLIENT_CHANNEL_ARGS } from '../../src/connections';
import {
  KEY_PREFIX,
  parentIndex,
  reviewBatchIndex,
  reviewKindIndex,
  reviewOpenIndex,
  statusIndex,
  TASK_PATTERN,
  taskKey,
  typeIndex,
} from '../../src/projection/keys';
import { TASK_PROTOCOL, TASK_WORKFLOW_TYPES } from '../../src/shared/workflow-contracts';
import { TaskStateManager, type QueueStats } from '../../src/projection/task-state-manager';
import { PRUNE_SCHEDULE_ID, RECONCILE_SCHEDULE_ID } from '../../src/schedules';
import { memoDoc } from '../../src/service/reconciler';
import { taskStateQuery } from '../../src/shared/definitions';
import { priorityKey } from '../../src/shared/priority';
import { SEARCH_ATTRIBUTE_KEYS } from '../../src/shared/search-attributes';
import { TASK_STATUSES, type PublishRequest, type TaskDoc, type TaskStatus } from '../../src/shared/types';
import type { publishBatch, publishSingle, PublishBatchInput } from '../../src/workflows';
import { perFile } from '../helpers/harness';
import { StopWaiting, waitUntil, type PollOptions } from '../helpers/polling';
import { WebhookReceiver } from '../helpers/webhook-receiver';
import { freePort, startDevServer, startRedis, tempDir, type DevServer, type RedisServer } from '../helpers/servers';

export const ROOT = path.resolve(__dirname, '../..');
const DEBUG = !!process.env.PUBFLOW_TEST_DEBUG;

/** The suite runs the built entrypoints; say so plainly when they are missing. */
export function requireBuiltLib(): void {
  const missing = ['lib/worker.js', 'lib/api.js', 'lib/reconcile.js'].filter((f) => !existsSync(path.join(ROOT, f)));
  if (missing.length > 0)
    throw new Error(
      `fault-injection tests run the built processes, but ${missing.join(', ')} missing: ` +
        `run \`npm run build\` first (\`make test\` does it)`,
    );
}

// ---------------------------------------------------------------------------------------------------------------
// pubflow processes
// ---------------------------------------------------------------------------------------------------------------

const tracked = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of tracked) if (child.exitCode === null && child.signalCode === null && child.pid) child.kill(9);
});

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  at: number;
}

/** One `node lib/<entry>.js` child process. */
export class PubflowProcess {
  readonly exited: Promise<ExitInfo>;
  exit: ExitInfo | undefined;
  private readonly tail: string[] = [];
  private stdout = '';

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
    readonly logFile: string,
  ) {
    const fd = openSync(logFile, 'a');
    const keep = (buf: Buffer) => {
      writeSync(fd, buf);
      this.tail.push(buf.toString());
      if (this.tail.length > 80) this.tail.shift();
      if (DEBUG) process.stderr.write(`[${name}] ${buf.toString()}`);
    };
    child.stdout?.on('data', (b: Buffer) => {
      this.stdout += b.toString();
      keep(b);
    });
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        tracked.delete(child);
        this.exit = { code, signal, at: Date.now() };
        closeSync(fd);
        resolve(this.exit);
      }),
    );
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  get alive(): boolean {
    return this.exit === undefined;
  }

  /** What the process wrote on stdout (the reconcile report, JSON log lines). */
  output(): string {
    return this.stdout;
  }

  logTail(): string {
    return this.tail.join('').slice(-6000);
  }

  /** JSON log lines (stdout and stderr) whose `msg` is this. */
  logLines(msg: string): Record<string, unknown>[] {
    return this.tail
      .join('')
      .split('\n')
      .filter((l) => l.startsWith('{') && l.includes(`"msg":"${msg}"`))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  async waitForLog(msg: string, timeoutMs = 60_000): Promise<void> {
    const needle = `"msg":"${msg}"`;
    await waitUntil(
      `${this.name} to log "${msg}"`,
      () => {
        if (this.exit) throw new StopWaiting(`${this.name} exited (${JSON.stringify(this.exit)}):\n${this.logTail()}`);
        return this.stdout.includes(needle);
      },
      { timeoutMs },
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n--- ${this.name} log tail ---\n${this.logTail()}`);
    });
  }

  /** Send a signal by PID (SIGKILL is `kill -9`). */
  signal(sig: NodeJS.Signals): void {
    if (this.alive && this.pid) process.kill(this.pid, sig);
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
  async stop(graceMs = 15_000): Promise<ExitInfo> {
    if (!this.alive) return this.exit!;
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    const info = await this.exited;
    clearTimeout(timer);
    return info;
  }
}

export type Entry = 'worker' | 'api' | 'reconcile';

/** Env for a child: the caller's PATH and friends, none of its pubflow, Temporal or Redis settings. */
function baseEnv(): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(PUBFLOW_|TEMPORAL_|REDIS_)/.test(k) || k.startsWith('JEST_') || k === 'NODE_OPTIONS') continue;
    out[k] = v;
  }
  return out;
}

export function spawnPubflow(entry: Entry, env: NodeJS.ProcessEnv, name: string, logDir: string): PubflowProcess {
  const child = spawn(process.execPath, [path.join(ROOT, 'lib', `${entry}.js`)], {
    cwd: ROOT,
    env: { ...baseEnv(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  tracked.add(child);
  return new PubflowProcess(name, child, path.join(logDir, `${name}.log`));
}

// ---------------------------------------------------------------------------------------------------------------
// The stack: servers, endpoint, accounts, media, processes
// ---------------------------------------------------------------------------------------------------------------

export interface FaultStack {
  name: string;
  dir: string;
  dev: DevServer;
  redisServer: RedisServer;
  endpoint: WebhookReceiver;
  /** The test's own Redis client (the test's own redis-server). */
  redis: Redis;
  connection: Connection;
  client: Client;
  accountIds: string[];
  mediaRoot: string;
  /** Media files, relative to the media root. */
  media: string[];
  apiPort: number;
  /** The API's keys file, one real key per role. */
  keys: TestKeys;
  /** The file's own task queue: PUBFLOW_TASK_QUEUE of every process it starts. */
  taskQueue: string;
  processes: PubflowProcess[];
  env(over?: Record<string, string>): NodeJS.ProcessEnv;
  startWorker(name: string, over?: Record<string, string>): Promise<PubflowProcess>;
  startApi(name: string, over?: Record<string, string>): Promise<PubflowProcess>;
  /** `node lib/reconcile.js`: exit code and the JSON report it prints. */
  runReconcile(name: string, over?: Record<string, string>): Promise<{ code: number | null; report: ReconcileOut }>;
  /**
   * `waitUntil` (30 s unless told), whose timeout message says what the processes and the endpoint were doing.
   */
  waitUntil<T>(
    what: string,
    check: () => Promise<T | undefined | null | false> | T | undefined | null | false,
    opts?: PollOptions,
  ): Promise<T>;
  /** Warnings and errors the processes logged last, and what the endpoint saw. */
  diagnostics(): string;
  close(): Promise<void>;
}

export interface ReconcileOut {
  scanned: number;
  written: number;
  unchanged: number;
  removed: number;
  removedIndexEntries: number;
  errors: number;
  durationMs: number;
  errorSamples: unknown[];
}

/** What every scenario needs: the base settings of issue 6 (death noticed fast, no automatic retries). */
export const FAULT_ENV: Record<string, string> = {
  PUBFLOW_HEARTBEAT_TIMEOUT: '3s',
  PUBFLOW_AUTO_RETRY_MAX: '0',
  PUBFLOW_AUTO_RETRY_INITIAL: '500ms',
  PUBFLOW_UPLOAD_TIMEOUT: '90s',
  PUBFLOW_SHUTDOWN_GRACE: '5s',
  PUBFLOW_WORKER_CONCURRENCY: '2',
  // No metrics endpoint: several workers per test, and test files side by side, would compete for one port.
  PUBFLOW_WORKER_METRICS_PORT: '0',
};

export async function startFaultStack(opts: { name: string; accounts?: number }): Promise<FaultStack> {
  requireBuiltLib();
  const dir = tempDir(`fault-${opts.name}`);
  const servers = await Promise.allSettled([
    startDevServer(),
    startRedis({ appendonly: true }),
    WebhookReceiver.start(),
  ]);
  const failed = servers.find((r) => r.status === 'rejected');
  if (failed) {
    // Stop what did start, so a failed beforeAll leaves no process or listener behind.
    const [d, r, e] = servers.map((x) => (x.status === 'fulfilled' ? x.value : undefined));
    await Promise.all([
      (d as DevServer | undefined)?.destroy(),
      (r as RedisServer | undefined)?.destroy(),
      (e as WebhookReceiver | undefined)?.close(),
    ]);
    rmSync(dir, { recursive: true, force: true });
    throw (failed as PromiseRejectedResult).reason;
  }
  const [dev, redisServer, endpoint] = servers.map((x) => (x as PromiseFulfilledResult<unknown>).value) as [
    DevServer,
    RedisServer,
    WebhookReceiver,
  ];
  const apiPort = await freePort();
  const accountIds = Array.from({ length: opts.accounts ?? 8 }, (_, i) => `hook-${i}`);
  const accountsFile = path.join(dir, 'accounts.json');
  writeFileSync(
    accountsFile,
    JSON.stringify(
      accountIds.map((id) => ({
        id,
        platform: 'webhook',
        displayName: `Fault endpoint ${id}`,
        settings: { url: endpoint.url },
        credentials: { headers: { Authorization: 'Bearer fault-suite-token' } },
      })),
    ),
  );
  const mediaRoot = path.join(dir, 'media');
  mkdirSync(mediaRoot);
  const media = Array.from({ length: 4 }, (_, i) => `clip-${i}.mp4`);
  media.forEach((f, i) => writeFileSync(path.join(mediaRoot, f), Buffer.alloc(16 * 1024 + i * 1024, i + 1)));
  const logDir = path.join(dir, 'logs');
  mkdirSync(logDir);
  const redis = new Redis(redisServer.url, { maxRetriesPerRequest: 2 });
  redis.on('error', () => undefined); // the tests restart this server on purpose
  const connection = await Connection.connect({ ...dev.connection, channelArgs: CLIENT_CHANNEL_ARGS }).catch(
    async (err: unknown) => {
      redis.disconnect();
      await Promise.all([endpoint.close(), dev.destroy(), redisServer.destroy()]);
      throw err;
    },
  );
  const client = new Client({ connection, namespace: dev.namespace });
  const taskQueue = `fault-${opts.name}-${process.pid}-${Date.now().toString(36)}`;
  const processes: PubflowProcess[] = [];

  // Real keys, one per role, as `keys create` makes them: the API lets nobody in without one.
  const keys = createTestKeys(dir);
  const env = (over: Record<string, string> = {}): NodeJS.ProcessEnv => ({
    ...dev.env, // TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE (and TLS with PUBFLOW_TEST_TEMPORAL=external)
    REDIS_URL: redisServer.url,
    PUBFLOW_TASK_QUEUE: taskQueue,
    PUBFLOW_ACCOUNTS_FILE: accountsFile,
    PUBFLOW_MEDIA_ROOT: mediaRoot,
    PUBFLOW_PUBLISHED_DIR: path.join(dir, 'published'),
    PUBFLOW_API_HOST: '127.0.0.1',
    PUBFLOW_API_PORT: String(apiPort),
    PUBFLOW_API_KEYS_FILE: keys.file,
    // The clients here send bursts of dozens of publishes at once; the limiter is tested in test/api/auth-routes.test.ts.
    PUBFLOW_API_RATE_LIMIT: '500/s',
    PUBFLOW_API_RATE_BURST: '1000',
    ...FAULT_ENV,
    ...over,
  });

  const launch = async (entry: Entry, name: string, over: Record<string, string>, ready: string) => {
    const p = spawnPubflow(entry, env(over), name, logDir);
    processes.push(p);
    await p.waitForLog(ready);
    return p;
  };

  const stack: FaultStack = {
    name: opts.name,
    dir,
    dev,
    redisServer,
    endpoint,
    redis,
    connection,
    client,
    accountIds,
    mediaRoot,
    media,
    apiPort,
    keys,
    taskQueue,
    processes,
    env,
    startWorker: async (name, over = {}) => {
      const p = await launch('worker', name, over, 'worker started');
      // Each worker creates pubflow's Schedules; pause them so a scheduled prune or reconcile never runs in the
      // middle of a scenario (the test runs the reconciler itself, when the scenario says so).
      await pauseSchedules(client);
      return p;
    },
    startApi: (name, over = {}) => launch('api', name, over, 'api listening'),
    runReconcile: async (name, over = {}) => {
      const p = spawnPubflow('reconcile', env(over), name, logDir);
      processes.push(p);
      const timer = setTimeout(() => p.signal('SIGKILL'), 60_000);
      const { code } = await p.exited;
      clearTimeout(timer);
      let report: ReconcileOut;
      try {
        report = JSON.parse(p.output()) as ReconcileOut;
      } catch {
        throw new Error(`reconcile printed no report (exit ${code}):\n${p.logTail()}`);
      }
      return { code, report };
    },
    diagnostics: () => {
      const lines = [
        `endpoint: ${endpoint.requests.length} requests, ${endpoint.inFlight().length} in flight`,
        ...processes.map((p) => {
          const state = p.alive ? 'running' : `exited ${JSON.stringify(p.exit)}`;
          const noisy = p
            .logTail()
            .split('\n')
            .filter((l) => /warn|error/i.test(l))
            .slice(-8)
            .map((l) => `    ${l.slice(0, 400)}`);
          return [`${p.name} (pid ${p.pid}, ${state})`, ...noisy].join('\n');
        }),
      ];
      return lines.join('\n');
    },
    waitUntil: (what, check, opts) =>
      waitUntil(what, check, { ...opts, timeoutMs: opts?.timeoutMs ?? 30_000 }).catch((err: Error) => {
        throw new Error(`${err.message}\n--- diagnostics ---\n${stack.diagnostics()}`);
      }),
    close: async () => {
      await Promise.all(processes.map((p) => p.stop(5000)));
      await connection.close().catch(() => undefined);
      redis.disconnect();
      await Promise.all([endpoint.close(), dev.destroy(), redisServer.destroy()]);
      if (!DEBUG) rmSync(dir, { recursive: true, force: true });
      else console.log(`fault stack ${opts.name}: logs kept in ${logDir}`);
    },
  };
  return stack;
}

/**
 * This file's fault stack: started in `beforeAll` and handed to `onStart` (which keeps it, and may start the
 * file's workers), closed in `afterAll`. Starting it takes a dev server, redis-server and the built processes.
 */
export function useFaultStack(opts: { name: string; accounts?: number }, onStart: (stack: FaultStack) => unknown) {
  perFile(() => startFaultStack(opts), onStart, { startMs: 120_000, closeMs: 60_000 });
}

export async function pauseSchedules(client: Client): Promise<void> {
  for (const id of [PRUNE_SCHEDULE_ID, RECONCILE_SCHEDULE_ID]) {
    try {
      await client.schedule.getHandle(id).pause('fault-injection suite: runs the reconciler itself');
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Submitting work (as the API would)
// ---------------------------------------------------------------------------------------------------------------

export function publishRequest(stack: FaultStack, i: number, over: Partial<PublishRequest> = {}): PublishRequest {
  return {
    platform: 'webhook',
    accountId: stack.accountIds[i % stack.accountIds.length]!,
    video: { path: path.join(stack.mediaRoot, stack.media[i % stack.media.length]!) },
    title: `fault item ${i}`,
    description: 'fault-injection suite',
    tags: ['fault'],
    priority: 5,
    ...over,
  };
}

/** The policy the API would resolve for a webhook task with this stack's env. */
export function webhookPolicy(stack: FaultStack, over: Record<string, string> = {}) {
  return loadConfig(stack.env(over)).policyFor('webhook');
}

/** Start a batch as `POST /api/v1/publish/batch` does (the route may not be registered yet). */
export async function startBatch(
  stack: FaultStack,
  o: {
    taskQueue: string;
    items: PublishRequest[];
    concurrency: number;
    workflowId?: string;
    /** Settings the API would have resolved the policy with (e.g. PUBFLOW_PLATFORM_LIMITS). */
    policyEnv?: Record<string, string>;
  },
): Promise<WorkflowHandle<typeof publishBatch>> {
  const input: PublishBatchInput = {
    items: o.items,
    policies: { webhook: webhookPolicy(stack, o.policyEnv) },
    concurrency: o.concurrency,
    createdAt: new Date().toISOString(),
    protocol: TASK_PROTOCOL,
  };
  return stack.client.workflow.start<typeof publishBatch>('publishBatch', {
    taskQueue: o.taskQueue,
    workflowId: o.workflowId ?? `fault-batch-${stack.name}-${Date.now().toString(36)}`,
    args: [input],
    workflowIdConflictPolicy: 'FAIL',
    workflowIdReusePolicy: 'REJECT_DUPLICATE',
    priority: { priorityKey: priorityKey(5) },
    typedSearchAttributes: new TypedSearchAttributes([
      { key: SEARCH_ATTRIBUTE_KEYS.status, value: 'pending' },
      { key: SEARCH_ATTRIBUTE_KEYS.type, value: 'batch_publish' },
    ]),
  });
}

/** Start a batch of `total` items, all in flight at once (item i: `publishRequest(stack, i, item(i))`), and name its children. */
export async function startBatchOf(
  stack: FaultStack,
  o: { taskQueue: string; total: number; item?: (i: number) => Partial<PublishRequest> },
): Promise<{ batch: WorkflowHandle<typeof publishBatch>; ids: string[] }> {
  const batch = await startBatch(stack, {
    taskQueue: o.taskQueue,
    items: Array.from({ length: o.total }, (_, i) => publishRequest(stack, i, o.item?.(i))),
    concurrency: o.total,
  });
  return { batch, ids: childIds(batch.workflowId, o.total) };
}

/** Start one publish as `POST /api/v1/publish` does. */
export async function startSingle(
  stack: FaultStack,
  o: { taskQueue: string; request: PublishRequest; workflowId: string },
): Promise<WorkflowHandle<typeof publishSingle>> {
  return stack.client.workflow.start<typeof publishSingle>('publishSingle', {
    taskQueue: o.taskQueue,
    workflowId: o.workflowId,
    args: [
      {
        request: o.request,
        policy: webhookPolicy(stack),
        createdAt: new Date().toISOString(),
        protocol: TASK_PROTOCOL,
      },
    ],
    workflowIdConflictPolicy: 'FAIL',
    workflowIdReusePolicy: 'REJECT_DUPLICATE',
    priority: { priorityKey: priorityKey(o.request.priority) },
    typedSearchAttributes: new TypedSearchAttributes([
      { key: SEARCH_ATTRIBUTE_KEYS.status, value: 'pending' },
      { key: SEARCH_ATTRIBUTE_KEYS.type, value: 'publish' },
      { key: SEARCH_ATTRIBUTE_KEYS.platform, value: o.request.platform },
      { key: SEARCH_ATTRIBUTE_KEYS.account, value: o.request.accountId },
    ]),
  });
}

export const childIds = (batchId: string, n: number) => Array.from({ length: n }, (_, i) => `${batchId}-${i}`);

// ---------------------------------------------------------------------------------------------------------------
// Truth and projection
// ---------------------------------------------------------------------------------------------------------------

export async function storedDoc(redis: Redis, id: string): Promise<TaskDoc | null> {
  const raw = await redis.get(taskKey(id));
  return raw === null ? null : (JSON.parse(raw) as TaskDoc);
}

/**
 * Temporal's view of a task. For a run that ended on its own (completed, or cancelled) that is the document its last
 * workflow task recorded in the memo; for any other, its `taskState` query.
 *
 * Why not the query for all: a closed run answers it by a replay, and a replay can compute other timestamps than the
 * run did. Seen in this suite (kill -9 mid-batch, 2 runs in 13): the first workflow task after the dead worker's
 * sticky queue timed out ran the upload's outcome at 16.002, wrote it to Redis and, its local activities still
 * running, was heartbeated by the SDK (completed empty, a new one started at once, 16.111); the replay hands the
 * outcome to the workflow at the second task's time, so the query said completed_at 16.111 while the memo, the
 * mirror and the reconciler's rebuild all say 16.002. A closed run is not queried at all: while this check also
 * queried closed runs (to compare them with the memo), 3 of 10 runs under load saw the SDK's core fail a run just
 * completed on the replacement worker ("Attempted to check for LA marker handling in invalid state
 * MarkerCommandCreated", SDK 1.24.0), after which that worker answered no query of it and never finished draining;
 * without those queries, 0 of 6. Likely a query reaching a cached run as it completes; not proven.
 */
export async function truthOf(client: Client, id: string): Promise<TaskDoc> {
  const handle = client.workflow.getHandle(id);
  const described = await handle.describe();
  // No memo: a document too large for one (see memoizeDoc).
  const memo = memoDoc(described);
  if ((described.status.name === 'COMPLETED' || described.status.name === 'CANCELLED') && memo) return memo;
  return handle.query(taskStateQuery);
}

export async function truths(client: Client, ids: string[]): Promise<Map<string, TaskDoc>> {
  const out = new Map<string, TaskDoc>();
  // A few at a time: each query of a closed workflow is a replay on a worker.
  for (let k = 0; k < ids.length; k += 8) {
    const docs = await Promise.all(ids.slice(k, k + 8).map((id) => truthOf(client, id)));
    docs.forEach((d, j) => out.set(ids[k + j]!, d));
  }
  return out;
}

const openReview = (d: TaskDoc) => d.review?.open === true;
/** A task that needs nothing more from pubflow: terminal, or waiting for a person. */
export const isSettled = (d: TaskDoc) =>
  d.status === 'success' || d.status === 'cancelled' || (d.status === 'failed' && d.review !== null);

export type Outcome = 'success' | 'review_open' | 'failed' | 'cancelled' | 'unsettled';
export function outcomeOf(d: TaskDoc): Outcome {
  if (d.status === 'success') return 'success';
  if (d.status === 'cancelled') return 'cancelled';
  if (d.status === 'failed') return openReview(d) ? 'review_open' : 'failed';
  return 'unsettled';
}

export function tally(docs: Iterable<TaskDoc>): Record<Outcome, number> {
  const out: Record<Outcome, number> = { success: 0, review_open: 0, failed: 0, cancelled: 0, unsettled: 0 };
  for (const d of docs) out[outcomeOf(d)]++;
  return out;
}

/** Fields a running upload's progress writes change between versions (best-effort, outside the versioned doc). */
const volatile = (d: TaskDoc) => {
  const { progress: _p, updated_at: _u, ...rest } = d;
  return rest;
};

/**
 * The projection equals Temporal's truth for these publish tasks (and their batch): each document equals the
 * workflow's own (`taskState`), the status, type, parent and open-review indexes hold exactly the right ids, and
 * the batch's document and counts match its children. Returns the truth.
 */
export async function expectProjectionMatchesTruth(
  stack: FaultStack,
  o: { ids: string[]; batchId?: string; otherIds?: string[] },
): Promise<Map<string, TaskDoc>> {
  const { redis, client } = stack;
  const truth = await truths(client, o.ids);
  const stored = await redis.mget(o.ids.map(taskKey));
  o.ids.forEach((id, i) => {
    const t = truth.get(id)!;
    const raw = stored[i];
    expect({ id, doc: raw ? 'present' : 'missing' }).toEqual({ id, doc: 'present' });
    const s = JSON.parse(raw!) as TaskDoc;
    if (isSettled(t)) expect({ id, doc: s }).toEqual({ id, doc: t });
    else expect({ id, doc: volatile(s) }).toEqual({ id, doc: volatile(t) });
  });

  // Status indexes: each task is in its status's index and in no other.
  const scope = new Set(o.ids);
  for (const status of TASK_STATUSES) {
    const members = (await redis.zrange(statusIndex(status), 0, -1)).filter((m) => scope.has(m)).sort();
    const want = o.ids.filter((id) => truth.get(id)!.status === status).sort();
    expect({ index: statusIndex(status), members }).toEqual({ index: statusIndex(status), members: want });
  }
  const publishType = new Set(await redis.zrange(typeIndex('publish'), 0, -1));
  expect(o.ids.filter((id) => !publishType.has(id))).toEqual([]);
  // Open reviews: the review indexes hold exactly the tasks with an open review, by kind.
  const reviewOpen = (await redis.zrange(reviewOpenIndex(), 0, -1)).filter((m) => scope.has(m)).sort();
  expect({ reviews: reviewOpen }).toEqual({ reviews: o.ids.filter((id) => openReview(truth.get(id)!)).sort() });
  const unconfirmed = (await redis.zrange(reviewKindIndex('Unconfirmed'), 0, -1)).filter((m) => scope.has(m)).sort();
  expect({ unconfirmed }).toEqual({
    unconfirmed: o.ids
      .filter((id) => openReview(truth.get(id)!) && truth.get(id)!.review!.kind === 'Unconfirmed')
      .sort(),
  });

  if (o.batchId) {
    const batchId = o.batchId;
    const children = await redis.zrange(parentIndex(batchId), 0, -1);
    expect(children.sort()).toEqual([...o.ids].sort());
    expect((await redis.zrange(reviewBatchIndex(batchId), 0, -1)).sort()).toEqual(
      o.ids.filter((id) => openReview(truth.get(id)!)).sort(),
    );
    expect(await redis.zscore(typeIndex('batch_publish'), batchId)).not.toBeNull();
    const batchTruth = await truthOf(client, batchId);
    const batchDoc = await storedDoc(redis, batchId);
    const pick = (d: TaskDoc | null) => d && { status: d.status, counts: d.counts, version: d.version };
    expect(pick(batchDoc)).toEqual(pick(batchTruth));
    const byStatus = (s: TaskStatus) => o.ids.filter((id) => truth.get(id)!.status === s).length;
    expect(batchTruth.counts).toEqual({
      total: o.ids.length,
      pending: byStatus('pending') + byStatus('retry'),
      running: byStatus('running'),
      success: byStatus('success'),
      failed: byStatus('failed'),
      cancelled: byStatus('cancelled'),
    });
    const inStatusIndex = await redis.zscore(statusIndex(batchTruth.status), batchId);
    expect({ batch: batchId, indexed: inStatusIndex !== null }).toEqual({ batch: batchId, indexed: true });
  }
  return truth;
}

/**
 * The whole projection against the whole of Temporal: every task workflow Temporal lists has a document and no
 * other document exists; every status index holds exactly the tasks in that status; the old API's queue stats
 * (`GET /api/v1/tasks/stats`) are Temporal's counts. Returns those counts.
 */
export async function expectWholeProjectionMatchesTemporal(stack: FaultStack): Promise<QueueStats> {
  const { client, redis } = stack;
  const listed = new Set<string>();
  const types = TASK_WORKFLOW_TYPES.map((t) => `'${t}'`).join(', ');
  for await (const e of client.workflow.list({ query: `WorkflowType IN (${types})` })) listed.add(e.workflowId);
  const ids = [...listed].sort();
  const truth = await truths(client, ids);
  const docs = (await redis.keys(TASK_PATTERN)).map((k) => k.slice(KEY_PREFIX.task.length)).sort();
  expect({ documents: docs }).toEqual({ documents: ids });
  const want = { total: ids.length } as QueueStats;
  for (const status of TASK_STATUSES) {
    const members = (await redis.zrange(statusIndex(status), 0, -1)).sort();
    const expected = ids.filter((id) => truth.get(id)!.status === status);
    expect({ index: statusIndex(status), members }).toEqual({ index: statusIndex(status), members: expected });
    want[status] = expected.length;
  }
  const stats = await new TaskStateManager(redis).getQueueStats();
  expect(stats).toEqual(want);
  return stats;
}

/**
 * No attempt was sent twice, and no task got more requests than attempts it was allowed (the automatic safe
 * retries and the human retries all count in `doc.attempt`). Returns the totals.
 */
export function expectRequestsWithinAttempts(
  endpoint: WebhookReceiver,
  truth: Map<string, TaskDoc>,
): { requests: number; attemptsAllowed: number } {
  expect({ duplicateIdempotencyKeys: endpoint.duplicateKeys() }).toEqual({ duplicateIdempotencyKeys: [] });
  let requests = 0;
  let attemptsAllowed = 0;
  for (const [id, doc] of truth) {
    const got = endpoint.requestsFor(id).length;
    expect({ id, requests: got, withinAttempts: got <= doc.attempt }).toEqual({
      id,
      requests: got,
      withinAttempts: true,
    });
    requests += got;
    attemptsAllowed += doc.attempt;
  }
  return { requests, attemptsAllowed };
}

/** One line for the note. */
export function printFigures(scenario: string, figures: Record<string, unknown>): void {
  console.log(`FAULT-FIGURES ${JSON.stringify({ scenario, ...figures })}`);
}

/** Children's documents as Redis has them now (null when absent). */
export async function storedDocs(redis: Redis, ids: string[]): Promise<(TaskDoc | null)[]> {
  const raws = await redis.mget(ids.map(taskKey));
  return raws.map((r) => (r ? (JSON.parse(r) as TaskDoc) : null));
}
