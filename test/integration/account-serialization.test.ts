/**
 * Queue gates on a real dev server with several worker processes' worth of workers: three worker pairs (workflows +
 * bookkeeping, and uploads), each on its own connection, all polling the same task queues, each with its own driver
 * and Redis client. The per-account rule and the platform cap must hold across all of them; a terminated holder
 * must not block its account; a rate limit outlives a restart of every worker; AuthExpired holds the account until it
 * is reactivated through the API.
 */
import { randomUUID } from 'node:crypto';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import Redis from 'ioredis';
import { createApp } from '../../src/api/app';
import { KeyRegistry } from '../../src/auth/key-registry';
import { authed, createTestKeys } from '../helpers/api-keys';
import { createLogger } from '../../src/log';
import { DriverRegistry } from '../../src/platforms';
import { authExpired, type DriverResult, type PlatformDriver, type PublishContext } from '../../src/platforms/types';
import { ProjectionStore } from '../../src/projection/store';
import { DEFAULT_POLICY, type PublishPolicy, type QueueLimits } from '../../src/shared/policy';
import type { PublishRequest, TaskDoc } from '../../src/shared/types';
import type { publishSingle } from '../../src/workflows';
import { createWorkerPair, type Harness, perFile, startDevStack, waitForDoc } from '../helpers/harness';
import { waitUntil } from '../helpers/polling';
import type { DevServer, RedisServer } from '../helpers/servers';

const ACCOUNTS = ['a1', 'a2', 'a3', 'a4'].map((id) => ({ id, platform: 'scripted', settings: {} }));
const log = createLogger('test-worker', { silent: true });

let dev: DevServer;
let redisServer: RedisServer;
let h: Harness;
let client: Client;

// A dev server with its default dynamic config.
perFile(
  () => startDevStack(ACCOUNTS, { devServer: {} }),
  (s) => ({ dev, redisServer, harness: h, client } = s),
);

/** What every worker's driver reports to: uploads in flight per account and in all, and who ran what. */
class Tracker {
  private readonly inFlight = new Map<string, number>();
  readonly maxPerAccount = new Map<string, number>();
  private total = 0;
  maxTotal = 0;
  readonly calls: Array<{ worker: string; taskId: string; accountId: string }> = [];

  enter(worker: string, ctx: PublishContext) {
    const a = ctx.request.accountId;
    const n = (this.inFlight.get(a) ?? 0) + 1;
    this.inFlight.set(a, n);
    this.maxPerAccount.set(a, Math.max(n, this.maxPerAccount.get(a) ?? 0));
    this.maxTotal = Math.max(this.maxTotal, ++this.total);
    this.calls.push({ worker, taskId: ctx.taskId, accountId: a });
  }

  leave(ctx: PublishContext) {
    this.inFlight.set(ctx.request.accountId, this.inFlight.get(ctx.request.accountId)! - 1);
    this.total--;
  }
}

type Behaviour = (ctx: PublishContext) => Promise<DriverResult>;

const takes =
  (ms: number): Behaviour =>
  async (ctx) => {
    await new Promise((r) => setTimeout(r, ms));
    return { postId: `post-${ctx.taskId}-${ctx.attempt}` };
  };

const hangUntilAborted: Behaviour = (ctx) =>
  new Promise((_resolve, reject) => {
    const fail = () => reject(Object.assign(new Error('aborted'), { name: 'AbortError' }));
    if (ctx.signal.aborted) fail();
    else ctx.signal.addEventListener('abort', fail, { once: true });
  });

/** The platform, as one worker process sees it; the behaviour is chosen by the request's title. */
class TrackedDriver implements PlatformDriver {
  readonly platform = 'scripted';
  constructor(
    private readonly worker: string,
    private readonly tracker: Tracker,
    private readonly behaviours: Record<string, Behaviour>,
  ) {}

  async publish(ctx: PublishContext): Promise<DriverResult> {
    this.tracker.enter(this.worker, ctx);
    try {
      return await (this.behaviours[ctx.request.title] ?? takes(150))(ctx);
    } finally {
      this.tracker.leave(ctx);
    }
  }
}

/**
 * One worker process's pair of workers, as src/worker.ts builds them, plus the gate activity: its own connection,
 * its own Redis client, its own driver.
 */
async function startWorkerPair(
  label: string,
  taskQueue: string,
  tracker: Tracker,
  behaviours: Record<string, Behaviour>,
) {
  const native = await NativeConnection.connect({ address: dev.address });
  const redis = new Redis(redisServer.url, { maxRetriesPerRequest: 1 });
  const deps = {
    store: new ProjectionStore(redis),
    accounts: h.accounts,
    drivers: new DriverRegistry([new TrackedDriver(label, tracker, behaviours)]),
    log,
  };
  const { main, uploads } = await createWorkerPair({
    connection: native,
    taskQueue,
    deps,
    uploadConcurrency: 3,
    maxHeartbeatThrottleInterval: '1s',
  });
  const running = Promise.all([main.run(), uploads.run()]);
  return async () => {
    main.shutdown();
    uploads.shutdown();
    await running;
    await native.close();
    redis.disconnect();
  };
}

async function withWorkers<T>(
  n: number,
  tracker: Tracker,
  behaviours: Record<string, Behaviour>,
  fn: (taskQueue: string) => Promise<T>,
  taskQueue = `tq-${randomUUID()}`,
): Promise<T> {
  const stops = await Promise.all(
    Array.from({ length: n }, (_, i) => startWorkerPair(`w${i + 1}`, taskQueue, tracker, behaviours)),
  );
  try {
    return await fn(taskQueue);
  } finally {
    await Promise.all(stops.map((stop) => stop()));
  }
}

const policyWith = (limits: QueueLimits = {}, over: Partial<PublishPolicy> = {}): PublishPolicy => ({
  ...DEFAULT_POLICY,
  autoRetry: { maxAttempts: 0, initialDelayMs: 1000, maxDelayMs: 1000 },
  limits,
  ...over,
});

function start(taskQueue: string, over: Partial<PublishRequest>, policy = policyWith()) {
  return client.workflow.start<typeof publishSingle>('publishSingle', {
    taskQueue,
    workflowId: `t-${randomUUID()}`,
    args: [
      {
        request: {
          platform: 'scripted',
          accountId: 'a1',
          video: { path: '/media/v.mp4' },
          title: 'ok',
          priority: 5,
          ...over,
        },
        policy,
      },
    ],
  });
}

const docWhere = (id: string, pred: (d: TaskDoc) => boolean, timeoutMs = 30_000) =>
  waitForDoc(h, id, pred, { timeoutMs });

test('three worker pairs: never two uploads at once on an account, accounts in parallel, every worker used', async () => {
  const tracker = new Tracker();
  await withWorkers(3, tracker, {}, async (tq) => {
    const handles: WorkflowHandle[] = [];
    for (let i = 0; i < 6; i++)
      for (const accountId of ['a1', 'a2', 'a3']) handles.push(await start(tq, { accountId, priority: i % 10 }));
    for (const handle of handles) expect((await handle.result()).status).toBe('success');
  });
  expect(tracker.calls).toHaveLength(18);
  for (const a of ['a1', 'a2', 'a3']) expect(tracker.maxPerAccount.get(a)).toBe(1);
  expect(tracker.maxTotal).toBeGreaterThan(1);
  expect(new Set(tracker.calls.map((c) => c.worker)).size).toBeGreaterThan(1);
});

test('the platform cap holds across the workers: at most 2 uploads at once on the platform', async () => {
  const tracker = new Tracker();
  const policy = policyWith({ platformMaxConcurrent: 2 });
  await withWorkers(3, tracker, {}, async (tq) => {
    const handles: WorkflowHandle[] = [];
    for (let i = 0; i < 3; i++)
      for (const accountId of ['a1', 'a2', 'a3', 'a4']) handles.push(await start(tq, { accountId }, policy));
    for (const handle of handles) expect((await handle.result()).status).toBe('success');
  });
  expect(tracker.calls).toHaveLength(12);
  expect(tracker.maxTotal).toBe(2);
  for (const a of ['a1', 'a2', 'a3', 'a4']) expect(tracker.maxPerAccount.get(a)).toBe(1);
  expect(new Set(tracker.calls.map((c) => c.worker)).size).toBeGreaterThan(1);
});

test('a holder terminated mid-upload loses its turn after its lease; the next task then publishes', async () => {
  const tracker = new Tracker();
  // Lease = upload timeout + heartbeat timeout = 5 s.
  const policy = policyWith({}, { uploadTimeoutMs: 3000, heartbeatTimeoutMs: 2000 });
  await withWorkers(2, tracker, { hang: hangUntilAborted }, async (tq) => {
    const holder = await start(tq, { title: 'hang' }, policy);
    await waitUntil('the first upload to start', async () => tracker.calls.length === 1);
    const next = await start(tq, {}, policy);
    await docWhere(next.workflowId, (d) => d.progress?.stage === 'waiting_for_account');
    const t0 = Date.now();
    await holder.terminate('removed by an operator');
    expect((await next.result()).status).toBe('success');
    const waited = Date.now() - t0;
    expect(waited).toBeLessThan(20_000);
    expect(tracker.calls.map((c) => c.taskId)).toEqual([holder.workflowId, next.workflowId]);
  });
});

test('a restart forgets no rate limit: new workers, with empty caches, still hold the next upload to the window', async () => {
  const tracker = new Tracker();
  const policy = policyWith({ maxPerWindow: { count: 1, windowMs: 3_600_000 } });
  const tq = `tq-${randomUUID()}`;
  const first = await withWorkers(
    2,
    tracker,
    {},
    async () => {
      const a = await start(tq, { accountId: 'a3' }, policy);
      expect((await a.result()).status).toBe('success');
      return docWhere(a.workflowId, (d) => d.status === 'success');
    },
    tq,
  );

  // Every worker has stopped. New ones start, as after a deploy or a crash: all they have is Temporal's history.
  await withWorkers(
    2,
    tracker,
    {},
    async () => {
      const b = await start(tq, { accountId: 'a3' }, policy);
      const waiting = await docWhere(
        b.workflowId,
        (d) => d.progress?.stage.startsWith('rate_limited_until_') === true,
        60_000,
      );
      expect(waiting.status).toBe('pending');
      const until = Date.parse(waiting.progress!.stage.slice('rate_limited_until_'.length));
      expect(until).toBeGreaterThan(Date.parse(first.created_at) + 3_600_000 - 1);
      await b.cancel();
      await docWhere(b.workflowId, (d) => d.status === 'cancelled');
    },
    tq,
  );
  expect(tracker.calls.map((c) => c.accountId)).toEqual(['a3']);
});

test('AuthExpired holds the account until POST /accounts/:id/reactivate; GET /accounts shows needs_login', async () => {
  const tracker = new Tracker();
  await withWorkers(
    2,
    tracker,
    { hold: takes(1500), expired: async () => Promise.reject(authExpired('401 from the platform')) },
    async (tq) => {
      const keys = createTestKeys();
      const app = createApp({
        keys: KeyRegistry.fromFile(keys.file),
        client,
        redis: h.redis,
        store: h.store,
        tsm: h.tsm,
        accounts: h.accounts,
        drivers: new DriverRegistry([]),
        config: {
          mediaRoot: '/nonexistent',
          policyFor: () => DEFAULT_POLICY,
          temporal: { address: dev.address, namespace: 'default', taskQueue: tq },
          scheduleHorizonMs: 0,
        },
        log,
      });
      const api = authed(app, keys);

      const warmup = await start(tq, { title: 'hold' });
      await waitUntil('the first upload to start', async () => tracker.calls.length === 1);
      const failing = await start(tq, { title: 'expired', priority: 0 });
      await docWhere(failing.workflowId, (d) => d.progress?.stage === 'waiting_for_account');
      const queued = await start(tq, { priority: 1 });
      await docWhere(queued.workflowId, (d) => d.progress?.stage === 'waiting_for_account');

      const review = await docWhere(failing.workflowId, (d) => d.review?.open === true);
      expect(review.review?.kind).toBe('AuthExpired');
      await docWhere(queued.workflowId, (d) => d.progress?.stage === 'account_needs_login');
      const list = await api.get('/api/v1/accounts');
      expect(list.status).toBe(200);
      const byId = new Map((list.body.items as Array<{ id: string }>).map((a) => [a.id, a]));
      expect(byId.get('a1')).toMatchObject({ status: 'needs_login', needsLogin: { reason: '401 from the platform' } });
      expect(byId.get('a2')).toMatchObject({ status: 'active', needsLogin: null });

      await new Promise((r) => setTimeout(r, 1000));
      expect(tracker.calls).toHaveLength(2); // held, not failed one by one

      expect((await api.post('/api/v1/accounts/nope/reactivate')).status).toBe(404);
      expect((await api.post('/api/v1/accounts/a2/reactivate')).status).toBe(409);
      const ok = await api.post('/api/v1/accounts/a1/reactivate').send({ note: 'logged in again' });
      expect(ok.status).toBe(200);
      expect(ok.body).toEqual({ accountId: 'a1', status: 'active', waiting: 1 });
      expect((await queued.result()).status).toBe('success');
      const again = await api.post('/api/v1/accounts/a1/reactivate');
      expect(again.status).toBe(409);
      expect(again.body.error.code).toBe('not_needing_login');
      // The audit trail: who reactivated it, with the note, as the operator's key says.
      expect((await api.get('/api/v1/accounts')).body.items[0]).toMatchObject({
        id: 'a1',
        status: 'active',
        lastReactivation: { action: 'reactivate', by: 'test-operator', role: 'operator', note: 'logged in again' },
      });

      await failing.cancel();
      await warmup.result();
    },
  );
});
