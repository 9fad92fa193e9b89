/**
 * The reconciler on a real dev server (the time-skipping server has no visibility list queries) and a real
 * redis-server, with the real worker; only the platform is scripted.
 */
import { randomUUID } from 'node:crypto';
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { createLogger } from '../../src/log';
import { DriverRegistry } from '../../src/platforms';
import { contentRejected } from '../../src/platforms/types';
import { INDEX_PATTERNS, statusIndex, taskKey, tombstoneKey } from '../../src/projection/keys';
import { reconcile, type ReconcileReport } from '../../src/service/reconciler';
import { ProjectionStore } from '../../src/projection/store';
import { ScheduleOverlapPolicy } from '@temporalio/client';
import { ensureSchedules, PRUNE_SCHEDULE_ID, RECONCILE_SCHEDULE_ID } from '../../src/schedules';
import { reviewDecisionUpdate, taskStateQuery } from '../../src/shared/definitions';
import { DEFAULT_POLICY } from '../../src/shared/policy';
import type { PublishRequest, TaskDoc } from '../../src/shared/types';
import { createPubflowWorkers } from '../../src/worker';
import type { publishBatch, publishSingle } from '../../src/workflows';
import { WORKFLOW_TYPES } from '../../src/shared/workflow-contracts';
import { DOC_MEMO_KEY, initialTaskDoc } from '../../src/shared/task-doc';
import { makeDoc } from '../projection/fixtures';
import { type Harness, perFile, startDevStack, withWorker, workflowBundle } from '../helpers/harness';
import { sleep, waitUntil } from '../helpers/polling';
import { hangUntilAborted, ScriptedDriver } from '../helpers/scripted-driver';
import { TASK_PROTOCOL } from '../../src/shared/workflow-contracts';

let h: Harness;
let native: NativeConnection;
let client: Client;
const log = createLogger('test-reconcile', { silent: true });

// A dev server with its default dynamic config.
perFile(
  () => startDevStack(undefined, { devServer: {} }),
  (s) => ({ harness: h, native, client } = s),
);

const request = (over: Partial<PublishRequest> = {}): PublishRequest => ({
  platform: 'scripted',
  accountId: 'acct-1',
  video: { path: '/media/v.mp4' },
  title: 'hello',
  description: 'a video about reconciling',
  tags: ['a', 'b'],
  priority: 5,
  ...over,
});

/** Starts a task as the API does, with its first document as the memo. */
function start(taskQueue: string, id = `rc-${randomUUID()}`): Promise<WorkflowHandle<typeof publishSingle>> {
  const createdAt = new Date().toISOString();
  const req = request();
  return client.workflow.start<typeof publishSingle>('publishSingle', {
    taskQueue,
    workflowId: id,
    // As the API starts it (TASK_PROTOCOL; from 2 on, the final document reaches the memo as the run ends).
    args: [{ request: req, policy: DEFAULT_POLICY, createdAt, protocol: TASK_PROTOCOL }],
    memo: { [DOC_MEMO_KEY]: initialTaskDoc({ taskId: id, request: req, parentTaskId: null, createdAt, runId: null }) },
  });
}

const run = (
  driver: ScriptedDriver,
  fn: (taskQueue: string) => Promise<void>,
  uploadConcurrency = 3,
  taskQueue?: string,
) => withWorker({ connection: native, harness: h, drivers: [driver], uploadConcurrency, taskQueue }, fn);

/** A task whose upload hangs, terminated by an operator once it runs: its workflow never wrote how it ended. */
const terminatedMidUpload = (fn: (hd: WorkflowHandle<typeof publishSingle>, runningDoc: TaskDoc) => Promise<void>) =>
  run(new ScriptedDriver().then(hangUntilAborted), async (taskQueue) => {
    const hd = await start(taskQueue);
    const runningDoc = await docWhere(hd.workflowId, (d) => d.status === 'running');
    await hd.terminate('operator stopped it'); // answered once the server has terminated the run
    await fn(hd, runningDoc);
  });

const reconcileNow = (over: Partial<Parameters<typeof reconcile>[0]> = {}): Promise<ReconcileReport> =>
  reconcile({ client, store: h.store, log, queryTimeoutMs: 3000, ...over });

const stored = async (id: string): Promise<TaskDoc | null> => {
  const raw = await h.redis.get(taskKey(id));
  return raw === null ? null : (JSON.parse(raw) as TaskDoc);
};

const docWhere = (id: string, pred: (d: TaskDoc) => boolean) =>
  waitUntil(
    `the document of ${id} to match`,
    async () => {
      const d = await stored(id);
      return d && pred(d) ? d : undefined;
    },
    { timeoutMs: 30_000 },
  );

/** Every document, and every index with its members and scores: the whole projection. */
async function snapshot(): Promise<{ docs: Record<string, TaskDoc>; indexes: Record<string, string[]> }> {
  const docs: Record<string, TaskDoc> = {};
  const indexes: Record<string, string[]> = {};
  for (const key of await h.redis.keys('celery:task:*')) docs[key] = JSON.parse((await h.redis.get(key))!) as TaskDoc;
  for (const pattern of INDEX_PATTERNS) {
    for (const key of await h.redis.keys(pattern)) {
      if ((await h.redis.type(key)) === 'zset') indexes[key] = await h.redis.zrange(key, 0, -1, 'WITHSCORES');
    }
  }
  return { docs, indexes };
}

/** Wait until every workflow on the dev server has settled into what visibility and Redis agree on. */
async function closeAll(handles: WorkflowHandle[]) {
  await Promise.all(handles.map((hd) => hd.result().catch(() => undefined)));
}

test('after FLUSHALL the reconciler brings back every document and index entry as Temporal has them; a second run writes nothing', async () => {
  const driver = new ScriptedDriver();
  await run(driver, async (taskQueue) => {
    // Arrange: 5 successes, one open review, one upload still running.
    const ok = await Promise.all(Array.from({ length: 5 }, () => start(taskQueue)));
    await Promise.all(ok.map((hd) => hd.result()));
    driver.then(async () => {
      throw contentRejected('the platform says no');
    });
    const review = await start(taskQueue);
    await docWhere(review.workflowId, (d) => d.review?.open === true);
    driver.then(hangUntilAborted);
    const running = await start(taskQueue);
    await docWhere(running.workflowId, (d) => d.status === 'running');
    const handles = [...ok, review, running];
    const ids = handles.map((hd) => hd.workflowId);
    const truth = new Map<string, TaskDoc>();
    for (const hd of handles) truth.set(hd.workflowId, await hd.query(taskStateQuery));
    const before = await snapshot();
    expect(Object.keys(before.docs)).toHaveLength(ids.length);

    // Act
    await h.redis.flushall(); // the test's own redis-server
    const first = await reconcileNow();

    // Assert: every document equals the workflow's, and the indexes are exactly as before the wipe.
    expect(first).toMatchObject({ errors: 0, written: ids.length, removed: 0, skippedDeleted: 0 });
    expect(first.scanned).toBe(ids.length);
    expect(first.fromQuery).toBe(2); // the open review and the running upload
    expect(first.fromMemo).toBe(5);
    for (const id of ids) expect(await stored(id)).toEqual(truth.get(id));
    const after = await snapshot();
    expect(after.docs).toEqual(before.docs);
    expect(after.indexes).toEqual(before.indexes);
    expect(await h.redis.zrange('pubflow:index:review:open', 0, -1)).toEqual([review.workflowId]);
    expect(await h.redis.zrange(statusIndex('running'), 0, -1)).toEqual([running.workflowId]);
    expect(await h.redis.zcard(statusIndex('success'))).toBe(5);

    const second = await reconcileNow();
    expect(second).toMatchObject({ errors: 0, written: 0, removed: 0, removedIndexEntries: 0 });
    expect(second.unchanged).toBe(ids.length);
    expect(await snapshot()).toEqual(after);

    // Leave nothing open for the next tests.
    await review.executeUpdate(reviewDecisionUpdate, { args: [{ action: 'discard' }] });
    await running.cancel();
    await closeAll(handles);
  });
});

test('a closed task carries its final document in its memo, small enough for visibility', async () => {
  const driver = new ScriptedDriver();
  await run(driver, async (taskQueue) => {
    const hd = await start(taskQueue);
    await hd.result();
    const final = await hd.query(taskStateQuery);

    const desc = await hd.describe();

    expect(desc.memo?.[DOC_MEMO_KEY]).toEqual(final);
    const bytes = desc.raw.workflowExecutionInfo?.memo?.fields?.[DOC_MEMO_KEY]?.data?.length ?? 0;
    console.log(`memo payload of a typical task document: ${bytes} bytes`);
    expect(bytes).toBeGreaterThan(0);
    expect(bytes).toBeLessThan(2048); // Temporal's memo warning threshold
  });
});

test('a discarded review ends with a memo whose review is closed, so the rebuilt task is not in review', async () => {
  const driver = new ScriptedDriver().then(async () => {
    throw contentRejected('no');
  });
  await run(driver, async (taskQueue) => {
    const hd = await start(taskQueue);
    await docWhere(hd.workflowId, (d) => d.review?.open === true);
    await hd.executeUpdate(reviewDecisionUpdate, { args: [{ action: 'discard' }] });
    await hd.result();
    await h.redis.del(taskKey(hd.workflowId));

    await reconcileNow();

    const doc = await stored(hd.workflowId);
    expect(doc).toEqual(await hd.query(taskStateQuery));
    expect(doc?.review?.open).toBe(false);
    expect(await h.redis.zscore('pubflow:index:review:open', hd.workflowId)).toBeNull();
  });
});

test('documents of tasks Temporal does not know are removed with their index entries; recent ones are kept', async () => {
  const stale = makeDoc({ task_id: `unknown-${randomUUID()}`, status: 'success' });
  const young = makeDoc({
    task_id: `unknown-${randomUUID()}`,
    created_at: new Date().toISOString(),
    updated_at: new Date().toISOString(),
  });
  await h.store.write(stale);
  await h.store.write(young);
  const dangling = `dangling-${randomUUID()}`;
  await h.redis.zadd(statusIndex('running'), 1, dangling);

  const report = await reconcileNow();

  expect(report.errorSamples).toEqual([]);
  expect(report.removed).toBe(1);
  expect(report.changed.removed).toEqual([stale.task_id]);
  expect(await h.redis.exists(taskKey(stale.task_id))).toBe(0);
  expect(await h.redis.zscore(statusIndex('success'), stale.task_id)).toBeNull();
  expect(await h.redis.zscore(statusIndex('running'), dangling)).toBeNull();
  expect(report.removedIndexEntries).toBe(1);
  // Created after the listing's visibility margin: it may just not be visible yet.
  expect(await stored(young.task_id)).toEqual(young);
  await h.store.delete(young.task_id, { tombstone: false });
});

test('a deleted task is not brought back, and a newer document is never moved backwards', async () => {
  const driver = new ScriptedDriver();
  await run(driver, async (taskQueue) => {
    const [deleted, ahead] = await Promise.all([start(taskQueue), start(taskQueue)]);
    await Promise.all([deleted.result(), ahead.result()]);
    await docWhere(deleted.workflowId, (d) => d.status === 'success');
    const final = await docWhere(ahead.workflowId, (d) => d.status === 'success');
    await h.store.delete(deleted.workflowId); // what DELETE /api/v1/tasks/:id does
    const newer: TaskDoc = { ...final, version: final.version + 5, status: 'failed', error_message: 'by hand' };
    await h.redis.del(taskKey(ahead.workflowId));
    await h.store.write(newer);

    const report = await reconcileNow();

    expect(report.errors).toBe(0);
    expect(report.skippedDeleted).toBe(1);
    expect(await h.redis.exists(taskKey(deleted.workflowId))).toBe(0);
    expect(await h.redis.exists(tombstoneKey(deleted.workflowId))).toBe(1);
    expect(report.changed.written).not.toContain(ahead.workflowId);
    expect(await stored(ahead.workflowId)).toEqual(newer);
  });
});

test("a closed task's document that differs from Temporal's at the same version is corrected, and a second run finds nothing to do", async () => {
  const driver = new ScriptedDriver();
  await run(driver, async (taskQueue) => {
    const hd = await start(taskQueue);
    await hd.result();
    const final = await docWhere(hd.workflowId, (d) => d.status === 'success');
    // As a worker that lost its workflow task can leave it: the same version, from a run history did not keep.
    const divergent: TaskDoc = { ...final, started_at: new Date(Date.parse(final.started_at!) - 10_000).toISOString() };
    await h.redis.set(taskKey(hd.workflowId), JSON.stringify(divergent));

    const first = await reconcileNow();
    const second = await reconcileNow();

    expect(first.errorSamples).toEqual([]);
    expect(first.changed.written).toContain(hd.workflowId);
    expect(first.corrected).toBeGreaterThanOrEqual(1);
    expect(await stored(hd.workflowId)).toEqual(final);
    expect(second.changed.written).not.toContain(hd.workflowId);
    expect(second.corrected).toBe(0);
  });
});

test('a workflow terminated mid-upload no longer shows as running: failed, Unconfirmed, one version on', async () => {
  await terminatedMidUpload(async (hd, runningDoc) => {
    const first = await reconcileNow();
    const second = await reconcileNow();

    const doc = await stored(hd.workflowId);
    expect(doc).toMatchObject({
      status: 'failed',
      error_kind: 'Unconfirmed',
      version: runningDoc.version + 1,
      progress: null,
    });
    expect(doc?.error_message).toContain('terminated');
    expect({ written: first.changed.written, errors: first.errorSamples }).toMatchObject({ errors: [] });
    expect(first.changed.written).toContain(hd.workflowId);
    expect(second.written).toBe(0);
    expect(await h.redis.zscore(statusIndex('running'), hd.workflowId)).toBeNull();
    expect(await h.redis.zscore(statusIndex('failed'), hd.workflowId)).not.toBeNull();
  });
});

/** The reconcile wrote this stopped task as failed, Unconfirmed (its upload may have gone out), at `version`. */
async function expectSettledUnconfirmed(report: ReconcileReport, taskId: string, version: number) {
  expect(report.errorSamples).toEqual([]);
  expect(report.changed.written).toContain(taskId);
  expect(await stored(taskId)).toMatchObject({ status: 'failed', error_kind: 'Unconfirmed', version });
}

test('a terminated task that the listing misses (closed before the window, or not yet visible) is settled by the sweep', async () => {
  await terminatedMidUpload(async (hd, runningDoc) => {
    // A window of 0 days lists open tasks only; the document is minutes young, as with visibility lagging.
    const report = await reconcileNow({ windowDays: 0 });

    await expectSettledUnconfirmed(report, hd.workflowId, runningDoc.version + 1);
    expect((await reconcileNow({ windowDays: 0 })).changed.written).not.toContain(hd.workflowId);
  });
});

test('a task stopped longer ago than a document lives, still shown as running, is removed rather than settled', async () => {
  await terminatedMidUpload(async (hd) => {
    await new Promise((r) => setTimeout(r, 2100));
    // Documents that live 1 s: the task stopped longer ago than that, so its settled document would have expired.
    const shortLived = new ProjectionStore(h.redis, { ttlSeconds: 1 });

    const report = await reconcileNow({ store: shortLived, visibilityLagMs: 0 });

    expect(report.errorSamples).toEqual([]);
    expect(report.changed.removed).toContain(hd.workflowId);
    expect(await h.redis.exists(taskKey(hd.workflowId))).toBe(0);
    expect(await h.redis.zscore(statusIndex('running'), hd.workflowId)).toBeNull();
  });
});

test('a terminated task is settled from the newest document: Redis ahead of the memo gives the next version', async () => {
  await terminatedMidUpload(async (hd, runningDoc) => {
    // The memo changes with the status only; the projection may hold later versions of the same status, which is
    // all a reconciler has when the query cannot answer.
    const ahead: TaskDoc = { ...runningDoc, version: runningDoc.version + 2 };
    expect(await h.store.write(ahead)).toBe('applied');

    const report = await reconcileNow();

    await expectSettledUnconfirmed(report, hd.workflowId, ahead.version + 1);
  });
});

test('the reconcile Schedule runs the reconciler in the worker and returns its report', async () => {
  let wipedId = '';
  for await (const e of client.workflow.list({ query: "WorkflowType = 'publishSingle'" })) {
    if ((await h.store.isDeleted(e.workflowId)) || !(await h.redis.exists(taskKey(e.workflowId)))) continue;
    wipedId = e.workflowId;
    break;
  }
  expect(wipedId).not.toBe('');
  await h.redis.del(taskKey(wipedId));
  const taskQueue = `tq-${randomUUID()}`;
  const workers = await createPubflowWorkers({
    connection: native,
    namespace: 'default',
    taskQueue,
    deps: { store: h.store, accounts: h.accounts, drivers: new DriverRegistry([]), log, client },
    uploadConcurrency: 1,
    shutdownGraceMs: 1000,
    workflowBundle: await workflowBundle(),
  });
  const running = workers.run();
  try {
    expect(await ensureSchedules(client, { taskQueue, pruneIntervalMs: 3_600_000 })).toBe('created');
    expect(await ensureSchedules(client, { taskQueue, pruneIntervalMs: 3_600_000 })).toBe('exists');
    const schedule = client.schedule.getHandle(RECONCILE_SCHEDULE_ID);
    expect((await schedule.describe()).policies.overlap).toBe(ScheduleOverlapPolicy.SKIP);

    await schedule.trigger();

    const action = await waitUntil(
      'the Schedule to record its action',
      async () => (await schedule.describe()).info.recentActions[0],
      {
        timeoutMs: 30_000,
      },
    );
    const report = (await client.workflow.getHandle(action.action.workflow.workflowId).result()) as ReconcileReport;
    expect(report.errorSamples).toEqual([]);
    expect(report.errors).toBe(0);
    expect(report.changed.written).toContain(wipedId);
    expect(await h.redis.exists(taskKey(wipedId))).toBe(1);
  } finally {
    await client.schedule.getHandle(RECONCILE_SCHEDULE_ID).delete();
    await client.schedule.getHandle(PRUNE_SCHEDULE_ID).delete();
    workers.shutdown();
    await running;
  }
});

// The 10,000-task figure: PUBFLOW_RECONCILE_BENCH_N=10000 npx jest test/integration/reconciler.test.ts -t 'rebuild rate'
const BENCH_N = Number(process.env.PUBFLOW_RECONCILE_BENCH_N ?? 200);

test(
  `rebuild rate: ${BENCH_N} closed tasks after FLUSHALL`,
  async () => {
    const driver = new ScriptedDriver();
    await run(
      driver,
      async (taskQueue) => {
        const t0 = Date.now();
        const ids: string[] = [];
        for (let i = 0; i < BENCH_N; i += 100) {
          const chunk = await Promise.all(
            Array.from({ length: Math.min(100, BENCH_N - i) }, () => start(taskQueue, `bench-${randomUUID()}`)),
          );
          ids.push(...chunk.map((hd) => hd.workflowId));
        }
        await waitUntil(
          'no publishSingle running',
          async () =>
            (await client.workflow.count(`WorkflowType = 'publishSingle' AND ExecutionStatus = 'Running'`)).count === 0,
          { timeoutMs: BENCH_N * 200 + 60_000 },
        );
        const createdMs = Date.now() - t0;
        const total = (await client.workflow.count(`WorkflowType IN ('publishSingle','publishBatch')`)).count;

        await h.redis.flushall(); // the test's own redis-server
        const rebuild = await reconcileNow();
        const again = await reconcileNow();

        expect(rebuild.errors).toBe(0);
        expect(rebuild.written).toBe(total - rebuild.skippedDeleted);
        expect(again.written).toBe(0);
        for (const id of ids.slice(0, 20)) expect((await stored(id))?.status).toBe('success');
        expect(await h.redis.zcard(statusIndex('success'))).toBeGreaterThanOrEqual(BENCH_N);
        const rate = Math.round((rebuild.scanned / rebuild.durationMs) * 1000);
        console.log(
          [
            `${BENCH_N} tasks run to success in ${(createdMs / 1000).toFixed(1)} s`,
            `rebuild after FLUSHALL: ${rebuild.scanned} executions, ${rebuild.written} written in ${rebuild.durationMs} ms (${rate} tasks/s)`,
            `second run (nothing to do): ${again.scanned} executions, ${again.unchanged} unchanged in ${again.durationMs} ms`,
          ].join('\n'),
        );
      },
      50,
    );
  },
  Math.max(900_000, BENCH_N * 250 + 120_000),
);

const BENCH_OPEN = Number(process.env.PUBFLOW_RECONCILE_BENCH_OPEN ?? 200);

test(
  `rebuild rate with ${BENCH_OPEN} open tasks (each one queried) after FLUSHALL`,
  async () => {
    const driver = new ScriptedDriver();
    driver.fallback = hangUntilAborted;
    await run(driver, async (taskQueue) => {
      const handles: WorkflowHandle[] = [];
      for (let i = 0; i < BENCH_OPEN; i += 100) {
        handles.push(
          ...(await Promise.all(
            Array.from({ length: Math.min(100, BENCH_OPEN - i) }, () => start(taskQueue, `open-${randomUUID()}`)),
          )),
        );
      }
      // All on one account: one holds the account's turn (running), the others wait for it (pending). Either way
      // open, so the reconciler must query each.
      const open = async () =>
        (await h.redis.zcard(statusIndex('running'))) + (await h.redis.zcard(statusIndex('pending')));
      await waitUntil(`${BENCH_OPEN} open tasks indexed`, async () => (await open()) === BENCH_OPEN, {
        timeoutMs: BENCH_OPEN * 100 + 60_000,
      });

      await h.redis.flushall(); // the test's own redis-server
      const rebuild = await reconcileNow();

      expect(rebuild.errorSamples).toEqual([]);
      expect(rebuild.fromQuery).toBe(BENCH_OPEN);
      expect(await open()).toBe(BENCH_OPEN);
      console.log(
        `rebuild after FLUSHALL with open tasks: ${rebuild.scanned} executions (${rebuild.fromQuery} queried, ` +
          `${rebuild.fromMemo} from memos), ${rebuild.written} written in ${rebuild.durationMs} ms ` +
          `(${Math.round((rebuild.scanned / rebuild.durationMs) * 1000)} tasks/s)`,
      );
      for (let i = 0; i < handles.length; i += 100)
        await Promise.all(handles.slice(i, i + 100).map((hd) => hd.cancel()));
      await closeAll(handles);
    });
  },
  Math.max(600_000, BENCH_OPEN * 250 + 120_000),
);

// Last in the file: it leaves a closed batch (no document memo) on a queue no worker serves any more, which a later
// test's rebuild after FLUSHALL could only count as an error. (Deleting the runs from Temporal instead waited on
// visibility for over 30 s under a loaded make test.)
test("an open batch whose worker is away: its query is tried again; without an answer Redis's document is kept, and only a task with no document at all is an error", async () => {
  // An open batch (batches carry no document memo) with one child whose upload hangs; then every worker stops.
  const driver = new ScriptedDriver();
  driver.fallback = hangUntilAborted;
  let taskQueue = '';
  const batchId = `b-${randomUUID()}`;
  await run(driver, async (tq) => {
    taskQueue = tq;
    await client.workflow.start<typeof publishBatch>(WORKFLOW_TYPES.publishBatch, {
      taskQueue: tq,
      workflowId: batchId,
      args: [{ items: [request()], policies: { scripted: DEFAULT_POLICY }, concurrency: 1 }],
    });
    await docWhere(batchId, (d) => d.status === 'running');
  });
  const fast = { queryTimeoutMs: 1000, queryRetryDelayMs: 200 };

  // Redis has the batch's document: kept as it is (the batch keeps writing it), and the mirror is whole.
  const kept = await reconcileNow({ ...fast, queryAttempts: 2 });
  expect(kept.errorSamples).toEqual([]);
  expect(kept.keptStored).toBe(1);

  // After FLUSHALL nothing has the batch's document: one error, the mirror is not whole (make reconcile exits 2).
  await h.redis.flushall();
  const lost = await reconcileNow({ ...fast, queryAttempts: 1 });
  expect(lost.errorSamples.map((e) => e.taskId)).toEqual([batchId]);
  expect(await stored(batchId)).toBeNull();

  // A worker coming back while the reconciler tries again: the query answers, the document is rebuilt.
  const rebuilding = reconcileNow({ queryTimeoutMs: 1000, queryAttempts: 6, queryRetryDelayMs: 500 });
  await sleep(1500); // its first query has timed out by now (1 s); the worker starts before the retries run out
  await run(
    driver,
    async () => {
      const rebuilt = await rebuilding;
      expect(rebuilt.errorSamples).toEqual([]);
      expect(rebuilt.queriesRetried).toBeGreaterThan(0);
      expect((await stored(batchId))?.status).toBe('running');
      await client.workflow.getHandle(batchId).cancel();
      await client.workflow
        .getHandle(batchId)
        .result()
        .catch(() => undefined);
    },
    3,
    taskQueue,
  );
}, 120_000);
