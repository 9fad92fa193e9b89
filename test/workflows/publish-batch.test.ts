/**
 * The publishBatch workflow on the time-skipping test server, with real publishSingle children, the real
 * activities and a real redis-server; only the platform is scripted. Also the batch routes, through supertest.
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { type WorkflowHandleWithFirstExecutionRunId, WorkflowNotFoundError } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createApp } from '../../src/api/app';
import { KeyRegistry } from '../../src/auth/key-registry';
import { createLogger } from '../../src/log';
import { DriverRegistry } from '../../src/platforms';
import { idempotentId } from '../../src/service/publish';
import { contentRejected, unconfirmed, type DriverResult, type PublishContext } from '../../src/platforms/types';
import { accountGateId, childStatusSignal, reviewDecisionUpdate, taskStateQuery } from '../../src/shared/definitions';
import { DEFAULT_POLICY, type PublishPolicy } from '../../src/shared/policy';
import type { BatchCounts, PublishRequest, TaskDoc } from '../../src/shared/types';
import type { publishBatch } from '../../src/workflows';
import { REQUEST_HASH_MEMO_KEY, type PublishBatchInput } from '../../src/shared/workflow-contracts';
import {
  EXTERNAL_SIGNAL_EVENT_TYPES,
  expectCancelled,
  type Harness,
  historyEventTypes,
  perFile,
  startWorkflowTestStack,
  waitForDoc,
  withWorker,
} from '../helpers/harness';
import { authed, createTestKeys } from '../helpers/api-keys';
import { waitUntil } from '../helpers/polling';
import { hangUntilAborted, ScriptedDriver } from '../helpers/scripted-driver';
import { tempDir } from '../helpers/servers';
import { TASK_PROTOCOL } from '../../src/shared/workflow-contracts';

let env: TestWorkflowEnvironment;
let h: Harness;

/** One account per item: the queue gates allow one upload at a time per account, and these tests are about the batch. */
const ACCOUNTS = Array.from({ length: 12 }, (_, i) => ({
  id: `acct-${i}`,
  platform: 'scripted',
  displayName: `Scripted ${i}`,
  settings: {},
}));

perFile(
  () => startWorkflowTestStack({ accounts: ACCOUNTS }),
  (s) => ({ env, harness: h } = s),
);

const policy: PublishPolicy = {
  ...DEFAULT_POLICY,
  autoRetry: { maxAttempts: 0, initialDelayMs: 60_000, maxDelayMs: 600_000 },
};

/** Item i publishes on account acct-i. */
const item = (title: string, i: number): PublishRequest => ({
  platform: 'scripted',
  accountId: `acct-${i}`,
  video: { path: '/media/v.mp4' },
  title,
  priority: 5,
});
const items = (n: number) => Array.from({ length: n }, (_, i) => item(`t${i}`, i));

async function startBatch(
  taskQueue: string,
  items: PublishRequest[],
  over: Partial<PublishBatchInput> = {},
): Promise<WorkflowHandleWithFirstExecutionRunId<typeof publishBatch>> {
  return env.client.workflow.start<typeof publishBatch>('publishBatch', {
    taskQueue,
    workflowId: `b-${randomUUID()}`,
    // As the API starts it (TASK_PROTOCOL); test/replay covers older protocols.
    args: [{ items, policies: { scripted: policy }, concurrency: 2, protocol: TASK_PROTOCOL, ...over }],
  });
}

const docWhere = (id: string, pred: (d: TaskDoc) => boolean, timeoutMs?: number) =>
  waitForDoc(h, id, pred, { timeoutMs });

const countsAre = (want: Partial<BatchCounts>) => (d: TaskDoc) =>
  Object.entries(want).every(([k, v]) => d.counts?.[k as keyof BatchCounts] === v);

/** The title decides the outcome of the first attempt; every later attempt succeeds. */
function outcomeByTitle(ctx: PublishContext): Promise<DriverResult> {
  if (ctx.attempt === 1 && ctx.request.title === 'reject') return Promise.reject(contentRejected('not allowed'));
  if (ctx.attempt === 1 && ctx.request.title === 'unconfirmed') return Promise.reject(unconfirmed('timed out'));
  return Promise.resolve({ postId: `post-${ctx.taskId}-${ctx.attempt}` });
}

async function expectChildrenOf(batchId: string, n: number) {
  const members = await h.redis.zrange(`celery:index:parent:${batchId}`, 0, -1);
  expect(members.sort()).toEqual(Array.from({ length: n }, (_, i) => `${batchId}-${i}`).sort());
  for (const id of members) expect((await h.tsm.getTaskState(id))?.parent_task_id).toBe(batchId);
}

/**
 * Runs `fn` with a worker, then waits for the account gates of its task queue to end (they do once idle) before the
 * worker stops: a gate left open on a stopped queue would hold the shared test server's clock.
 */
function run<T>(driver: ScriptedDriver, fn: (taskQueue: string) => Promise<T>, uploadConcurrency?: number) {
  return withWorker(
    { connection: env.nativeConnection, harness: h, drivers: [driver], uploadConcurrency },
    async (tq) => {
      const out = await fn(tq);
      await waitUntil('every account gate to end', async () => {
        const open = await Promise.all(
          ACCOUNTS.map((a) =>
            env.client.workflow
              .getHandle(accountGateId(a.id, tq))
              .describe()
              .then(
                (d) => d.status.name === 'RUNNING',
                () => false,
              ),
          ),
        );
        return !open.includes(true);
      });
      return out;
    },
  );
}

test('a batch with mixed outcomes counts them, settles failed, and a late review retry re-evaluates it to success', async () => {
  const driver = new ScriptedDriver();
  driver.fallback = outcomeByTitle;
  await run(driver, async (tq) => {
    const handle = await startBatch(tq, [item('ok-0', 0), item('reject', 1), item('unconfirmed', 2), item('ok-3', 3)]);
    const batchId = handle.workflowId;

    // Every child has settled: two succeeded, two wait in review. The batch is failed but stays open.
    const settled = await docWhere(batchId, (d) => d.status === 'failed');
    expect(settled).toMatchObject({
      task_type: 'batch_publish',
      counts: { total: 4, pending: 0, running: 0, success: 2, failed: 2, cancelled: 0 },
      progress: { percent: 100, stage: 'in_review' },
    });
    expect(settled.completed_at).not.toBeNull();
    expect((await handle.describe()).status.name).toBe('RUNNING');
    expect(await h.tsm.listReviewTaskIds({ batchId })).toHaveLength(2);
    await expectChildrenOf(batchId, 4);

    // Stale, duplicate or impossible reports never move the counts: a lower version, or a closed child.
    const stale = { taskId: `${batchId}-1`, status: 'running' as const, inReview: false, version: 1 };
    await handle.signal(childStatusSignal, { index: 1, ...stale });
    await handle.signal(childStatusSignal, { index: 0, ...stale, taskId: `${batchId}-0`, version: 1000 });
    expect((await handle.query(taskStateQuery)).counts).toEqual(settled.counts);

    // A person resolves one review: still failed, one fewer failure.
    await env.client.workflow
      .getHandle(`${batchId}-2`)
      .executeUpdate(reviewDecisionUpdate, { args: [{ action: 'resolve', url: 'https://x.test/2' }] });
    await docWhere(batchId, countsAre({ success: 3, failed: 1 }));
    expect((await h.tsm.getTaskState(batchId))?.status).toBe('failed');

    // Two days later the other is retried, and succeeds: the batch becomes success.
    await env.sleep('2 days');
    await env.client.workflow
      .getHandle(`${batchId}-1`)
      .executeUpdate(reviewDecisionUpdate, { args: [{ action: 'retry', note: 'try again' }] });
    const out = await handle.result();
    expect(out).toEqual({
      taskId: batchId,
      status: 'success',
      counts: { total: 4, pending: 0, running: 0, success: 4, failed: 0, cancelled: 0 },
    });
    const done = await docWhere(batchId, (d) => d.status === 'success');
    expect(done.counts).toEqual(out.counts);
    expect(done.progress).toEqual({ percent: 100, stage: 'done' });
    expect(driver.callsFor(`${batchId}-1`).map((c) => c.attempt)).toEqual([1, 2]);
    expect(driver.callsFor(`${batchId}-2`)).toHaveLength(1);
  });
});

test('protocols 5 and 6: a child reports by local activity (no external-signal command), the batch writes by activity (no marker)', async () => {
  // Protocol 6: a local activity resolves in an activation of its own, inside a workflow task; on replay the SDK once
  // grouped child-start resolutions into that activation, and the batch's commands came in another order
  // (test/replay/known-failures/). Without local activities every activation of the batch is a whole workflow task.
  const driver = new ScriptedDriver();
  driver.fallback = outcomeByTitle;
  await run(driver, async (tq) => {
    const handle = await startBatch(tq, [item('ok-0', 0), item('reject', 1), item('ok-2', 2)]);
    const batchId = handle.workflowId;
    // The reports still arrive and the document follows: the review, then (after the retry) all three successes.
    await docWhere(batchId, countsAre({ success: 2, failed: 1 }));
    await env.client.workflow
      .getHandle(`${batchId}-1`)
      .executeUpdate(reviewDecisionUpdate, { args: [{ action: 'retry', note: 'again' }] });
    expect((await handle.result()).counts).toMatchObject({ total: 3, success: 3, failed: 0 });
    await docWhere(batchId, (d) => d.status === 'success' && d.counts?.success === 3);

    const { EventType } = temporal.api.enums.v1;
    const types = (workflowId: string) => historyEventTypes(env.client.workflow.getHandle(workflowId));
    for (let i = 0; i < 3; i++)
      expect((await types(`${batchId}-${i}`)).filter((t) => EXTERNAL_SIGNAL_EVENT_TYPES.includes(t))).toEqual([]);
    const batch = await types(batchId);
    // What the children reported reached the batch as signals: for each child at least its success, and for the
    // one that went to review also its failure and its retry.
    expect(
      batch.filter((t) => t === Number(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)).length,
    ).toBeGreaterThanOrEqual(5);
    expect(batch.filter((t) => t === Number(EventType.EVENT_TYPE_MARKER_RECORDED))).toEqual([]);
    // The writes are there, as activities (at least the first state and the last).
    expect(
      batch.filter((t) => t === Number(EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED)).length,
    ).toBeGreaterThanOrEqual(2);
  });
});

test('cancelling a batch mid-way cancels its started children; the rest never start', async () => {
  const driver = new ScriptedDriver();
  driver.fallback = hangUntilAborted;
  await run(driver, async (tq) => {
    const handle = await startBatch(tq, items(6));
    const batchId = handle.workflowId;
    await waitUntil('two uploads to start', async () => driver.calls.length === 2);
    await docWhere(batchId, countsAre({ running: 2, pending: 4 }));

    await handle.cancel();
    await expectCancelled(handle);

    const d = await docWhere(batchId, (x) => x.status === 'cancelled');
    expect(d.counts).toEqual({ total: 6, pending: 0, running: 0, success: 0, failed: 0, cancelled: 6 });
    expect(new Set(driver.calls.map((c) => c.taskId))).toEqual(new Set([`${batchId}-0`, `${batchId}-1`]));
    expect(new Set(driver.aborted.map((c) => c.taskId))).toEqual(new Set([`${batchId}-0`, `${batchId}-1`]));
    for (const i of [0, 1]) {
      await expectCancelled(env.client.workflow.getHandle(`${batchId}-${i}`));
      await docWhere(`${batchId}-${i}`, (x) => x.status === 'cancelled');
    }
    for (const i of [2, 3, 4, 5]) {
      await expect(env.client.workflow.getHandle(`${batchId}-${i}`).describe()).rejects.toBeInstanceOf(
        WorkflowNotFoundError,
      );
      expect(await h.tsm.getTaskState(`${batchId}-${i}`)).toBeNull();
    }
  });
});

test('a window of 3 never has a 4th child in flight', async () => {
  let current = 0;
  let max = 0;
  let released = false;
  const waiting: Array<() => void> = [];
  const driver = new ScriptedDriver();
  driver.fallback = async (ctx) => {
    current++;
    max = Math.max(max, current);
    try {
      await new Promise<void>((resolve) => (released ? setTimeout(resolve, 20) : waiting.push(resolve)));
      return { postId: `post-${ctx.taskId}` };
    } finally {
      current--;
    }
  };
  // Ten upload slots: the batch's window, not the worker, must be what limits the uploads.
  await run(
    driver,
    async (tq) => {
      const handle = await startBatch(tq, items(10), { concurrency: 3 });
      await waitUntil('three uploads to start', async () => driver.calls.length === 3);
      await docWhere(handle.workflowId, countsAre({ running: 3, pending: 7 }));
      await new Promise((r) => setTimeout(r, 1500));
      expect(driver.calls).toHaveLength(3);

      released = true;
      for (const release of waiting.splice(0)) release();
      const out = await handle.result();
      expect(out.counts).toMatchObject({ total: 10, success: 10 });
      expect(driver.calls).toHaveLength(10);
      expect(max).toBe(3);
    },
    10,
  );
});

test('spacing staggers the children: child i starts no earlier than i × interval after the batch', async () => {
  const driver = new ScriptedDriver();
  await run(driver, async (tq) => {
    const handle = await startBatch(tq, items(3), {
      concurrency: 3,
      spacing: { intervalSeconds: 2, jitterSeconds: 1 },
    });
    const out = await handle.result();
    expect(out.counts.success).toBe(3);
    const batch = await docWhere(handle.workflowId, (d) => d.status === 'success');
    const t0 = Date.parse(batch.started_at!);
    for (const i of [0, 1, 2]) {
      const child = await docWhere(`${handle.workflowId}-${i}`, (d) => d.status === 'success');
      const offset = Date.parse(child.started_at!) - t0;
      expect(offset).toBeGreaterThanOrEqual(i * 2000);
      expect(offset).toBeLessThan(i * 2000 + 1000 + 5000); // the jitter, plus a child's start on a busy machine
    }
  });
});

// Runs after the tests that need the test server to skip time: a child that outlives the parent run that started it
// (as children do across continue-as-new) never gives back the time-skipping server's clock lock (the server releases
// it in the parent run's childWorkflowCompleted), so later automatic skips would wait in real time.
test('a batch forced to continue as new keeps its counts true across runs', async () => {
  const driver = new ScriptedDriver();
  await run(driver, async (tq) => {
    const handle = await env.client.workflow.start<typeof publishBatch>('publishBatch', {
      taskQueue: tq,
      workflowId: `b-${randomUUID()}`,
      args: [{ items: items(12), policies: { scripted: policy }, concurrency: 4, continueAsNewAfter: 5 }],
      // As the API starts it: the request's hash, which a reused Idempotency-Key is checked against (422).
      memo: { [REQUEST_HASH_MEMO_KEY]: 'hash-of-the-request' },
    });
    const batchId = handle.workflowId;
    const out = await handle.result();
    expect(out).toEqual({
      taskId: batchId,
      status: 'success',
      counts: { total: 12, pending: 0, running: 0, success: 12, failed: 0, cancelled: 0 },
    });
    const d = await docWhere(batchId, (x) => x.status === 'success');
    expect(d.counts).toEqual(out.counts);
    const last = await handle.describe();
    const lastRun = last.runId;
    expect(lastRun).not.toBe(handle.firstExecutionRunId);
    // The last run still has the hash, so the same key with another body is still a 422 after continue-as-new.
    expect(last.memo?.[REQUEST_HASH_MEMO_KEY]).toBe('hash-of-the-request');
    expect(d.run_id).toBe(lastRun);
    expect(new Set(driver.calls.map((c) => c.taskId)).size).toBe(12);
    expect(driver.calls).toHaveLength(12);
    await expectChildrenOf(batchId, 12);
  });
});

describe('batch routes', () => {
  /** The API on this file's servers (createApp, so the service checks accounts and media as in production). */
  const mediaRoot = tempDir('batch-routes-media');
  writeFileSync(path.join(mediaRoot, 'v.mp4'), 'video');
  const keys = createTestKeys();
  const registry = KeyRegistry.fromFile(keys.file);
  /** supertest on the app, each request with the least role its route needs. */
  const api = (taskQueue: string) => authed(app(taskQueue), keys);
  function app(taskQueue: string) {
    return createApp({
      keys: registry,
      client: env.client,
      redis: h.redis,
      store: h.store,
      tsm: h.tsm,
      accounts: h.accounts,
      drivers: new DriverRegistry([new ScriptedDriver()]),
      config: {
        mediaRoot,
        policyFor: () => policy,
        temporal: { address: '', namespace: 'default', taskQueue },
        scheduleHorizonMs: 90 * 86_400_000,
      },
      log: createLogger('test-api', { silent: true }),
    });
  }

  const body = (items: unknown[]) => ({
    defaults: { platform: 'scripted', accountId: 'acct-1', video: { path: 'v.mp4' } },
    items,
    concurrency: 2,
  });

  test('every bad item is listed by index and field, and nothing starts', async () => {
    const key = `k-${randomUUID()}`;
    const res = await api('unused')
      .post('/api/v1/publish/batch')
      .set('Idempotency-Key', key)
      .send(body([{ title: 'ok' }, { title: '' }, { title: 'x', accountId: 'nobody' }, { title: 'y', priority: 12 }]));
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_request');
    const fields = (res.body.error.details as { field: string }[]).map((d) => d.field);
    expect(fields).toEqual(['items[1].title', 'items[2].accountId', 'items[3].priority']);
    await expect(env.client.workflow.getHandle(idempotentId('batch', key)).describe()).rejects.toBeInstanceOf(
      WorkflowNotFoundError,
    );
  });

  test('a batch is accepted with 202, the same request again answers 200 with the same id, another request under the key is a 422, and it publishes', async () => {
    const driver = new ScriptedDriver();
    await run(driver, async (tq) => {
      const key = `k-${randomUUID()}`;
      const first = await api(tq)
        .post('/api/v1/publish/batch')
        .set('Idempotency-Key', key)
        .send(body([{ title: 'a' }, { title: 'b', priority: 1 }, { title: 'c' }]));
      expect(first.status).toBe(202);
      expect(first.body).toEqual({ taskId: expect.stringMatching(/^batch-[0-9a-f]{32}$/), total: 3 });
      const batchId = first.body.taskId as string;
      const initial = await h.tsm.getTaskState(batchId);
      expect(initial).toMatchObject({ task_type: 'batch_publish', counts: { total: 3 } });

      const again = await api(tq)
        .post('/api/v1/publish/batch')
        .set('Idempotency-Key', key)
        .send(body([{ title: 'a' }, { title: 'b', priority: 1 }, { title: 'c' }]));
      expect(again.status).toBe(200);
      expect(again.body).toEqual({ taskId: batchId, total: 3 });

      // The same key with a different request (item 1 lost its priority) is refused, not answered with the first task.
      const other = await api(tq)
        .post('/api/v1/publish/batch')
        .set('Idempotency-Key', key)
        .send(body([{ title: 'a' }, { title: 'b' }, { title: 'c' }]));
      expect(other.status).toBe(422);
      expect(other.body.error).toMatchObject({ code: 'idempotency_mismatch', details: { taskId: batchId } });

      const out = await env.client.workflow.getHandle<typeof publishBatch>(batchId).result();
      expect(out.counts.success).toBe(3);
      expect(driver.calls).toHaveLength(3);
      // The item's own priority wins over the batch's (defaults: 5).
      expect(driver.callsFor(`${batchId}-1`)[0]?.request.priority).toBe(1);
      expect(driver.callsFor(`${batchId}-0`)[0]?.request.priority).toBe(5);
    });
  });

  test('retry-all retries every open review of a batch in one call', async () => {
    const driver = new ScriptedDriver();
    driver.fallback = outcomeByTitle;
    await run(driver, async (tq) => {
      const res = await api(tq)
        .post('/api/v1/publish/batch')
        .send(body([{ title: 'reject' }, { title: 'ok' }, { title: 'unconfirmed' }]));
      expect(res.status).toBe(202);
      const batchId = res.body.taskId as string;
      await docWhere(batchId, (d) => d.status === 'failed');

      const retried = await api(tq).post('/api/v1/reviews/retry-all').send({ batchId, note: 'bulk' });
      expect(retried.status).toBe(200);
      expect(retried.body).toEqual({ matched: 2, retried: 2, failed: [] });

      const out = await env.client.workflow.getHandle<typeof publishBatch>(batchId).result();
      expect(out.status).toBe('success');
      expect(driver.calls).toHaveLength(5);
      // The audit trail: each retried child says who retried it, through retry-all, with the one note.
      for (const i of [0, 2]) {
        const child = await docWhere(`${batchId}-${i}`, (d) => d.status === 'success');
        expect(child.decisions).toEqual([
          {
            action: 'retry',
            by: 'test-operator',
            role: 'operator',
            at: expect.any(String),
            note: 'bulk',
            via: 'retry-all',
            attempt: 1,
          },
        ]);
      }
      expect((await docWhere(`${batchId}-1`, (d) => d.status === 'success')).decisions).toBeUndefined();
    });
  });
});
