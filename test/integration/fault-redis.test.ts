/**
 * Fault injection, Redis (issue 6 §1): redis-server restarted on its AOF mid-traffic, then wiped (FLUSHALL on the
 * test's own server) and rebuilt by `node lib/reconcile.js`. Real processes: dev server, redis-server with AOF,
 * `node lib/worker.js`; the platform is a local webhook endpoint.
 */
import { INDEX_PATTERNS, TASK_PATTERN, taskKey } from '../../src/projection/keys';
import type { TaskDoc } from '../../src/shared/types';
import { converge, sleep } from '../helpers/polling';
import {
  expectProjectionMatchesTruth,
  expectRequestsWithinAttempts,
  expectWholeProjectionMatchesTemporal,
  isSettled,
  printFigures,
  startBatchOf,
  useFaultStack,
  storedDoc,
  storedDocs,
  tally,
  truthOf,
  truths,
  type FaultStack,
  type PubflowProcess,
} from './fault-helpers';

let stack: FaultStack;
let worker: PubflowProcess;
let taskQueue: string;
/** Every task of this file, by batch: the wipe rebuilds them all. */
const batches: { batchId: string; ids: string[] }[] = [];

useFaultStack({ name: 'redis', accounts: 6 }, async (s) => {
  stack = s;
  taskQueue = s.taskQueue;
  worker = await s.startWorker('redis-w1', { PUBFLOW_WORKER_CONCURRENCY: '3' });
});

/** Every document and every index (members only) in the test's Redis. */
async function projectionKeys(): Promise<{ docs: string[]; members: Map<string, string[]> }> {
  const docs = (await stack.redis.keys(TASK_PATTERN)).sort();
  const members = new Map<string, string[]>();
  for (const pattern of INDEX_PATTERNS)
    for (const key of await stack.redis.keys(pattern))
      if ((await stack.redis.type(key)) === 'zset') members.set(key, (await stack.redis.zrange(key, 0, -1)).sort());
  return { docs, members };
}

/** The batch's document in Redis shows what the batch knows now (it writes at most once a second). */
async function batchCaughtUp(batchId: string): Promise<boolean> {
  const [truth, doc] = await Promise.all([truthOf(stack.client, batchId), storedDoc(stack.redis, batchId)]);
  return doc !== null && doc.status === truth.status && JSON.stringify(doc.counts) === JSON.stringify(truth.counts);
}

test('Redis restarted on its AOF mid-traffic: the projection is intact and the writes made while it was down converge', async () => {
  // Arrange: 16 items over 6 accounts, uploads answered after 500 ms; stop Redis once a quarter is published.
  const { endpoint, redis, client, redisServer } = stack;
  endpoint.behaviour = () => ({ status: 200, afterMs: 500 });
  const total = 16;
  const { batch, ids } = await startBatchOf(stack, { taskQueue, total });
  batches.push({ batchId: batch.workflowId, ids });
  await stack.waitUntil(
    'a quarter of the batch published',
    async () => (await storedDocs(redis, ids)).filter((d) => d?.status === 'success').length >= 4,
    { timeoutMs: 60_000, intervalMs: 20 },
  );

  // Act: stop Redis (SIGTERM: it closes its AOF), let publishing go on without it, start it again.
  const before = new Map<string, number>();
  for (const key of await redis.keys(TASK_PATTERN)) {
    const doc = JSON.parse((await redis.get(key))!) as TaskDoc;
    before.set(doc.task_id, doc.version);
  }
  await redisServer.stop();
  const downAt = Date.now();
  let changedWhileDown = 0;
  try {
    await sleep(4000);
    // Temporal's truth moved on meanwhile: these are the writes Redis missed (a child not started yet has none).
    const versions = await Promise.all(
      ids.map((id) =>
        truthOf(client, id).then(
          (d) => d.version,
          () => 0,
        ),
      ),
    );
    changedWhileDown = ids.filter((id, i) => versions[i]! > (before.get(id) ?? 0)).length;
  } finally {
    await redisServer.start();
  }
  const uploadsWhileDown = endpoint.requests.filter(
    (r) => r.answeredAt !== undefined && r.answeredAt >= downAt && r.answeredAt < Date.now(),
  ).length;
  const upAt = Date.now();

  // Assert: nothing written before the stop was lost (the AOF), and nothing moved backwards.
  const intact = await redis.mget([...before.keys()].map(taskKey));
  const lost = [...before.keys()].filter((id, i) => {
    const raw = intact[i];
    return !raw || (JSON.parse(raw) as TaskDoc).version < before.get(id)!;
  });
  expect(lost).toEqual([]);
  // The batch finishes, and the projection converges on Temporal's truth.
  const result = await batch.result();
  expect(result).toMatchObject({ status: 'success', counts: { total, success: total } });
  const truth = await converge(() => expectProjectionMatchesTruth(stack, { ids, batchId: batch.workflowId }), {
    timeoutMs: 60_000,
  });
  const convergedMs = Date.now() - upAt;
  const counted = expectRequestsWithinAttempts(endpoint, truth);
  for (const id of ids) expect(endpoint.requestsFor(id)).toHaveLength(1);
  expect(worker.alive).toBe(true);

  await converge(() => expectWholeProjectionMatchesTemporal(stack));
  printFigures('Redis restarted (AOF)', {
    tasksSubmitted: total,
    docsBeforeStop: before.size,
    docsLostOnRestart: lost.length,
    redisDownMs: upAt - downAt,
    uploadsAnsweredWhileDown: uploadsWhileDown,
    tasksChangedWhileDown: changedWhileDown,
    restartToConvergedMs: convergedMs,
    ended: tally(truth.values()),
    webhookRequests: counted.requests,
    attemptsAllowed: counted.attemptsAllowed,
    duplicateKeys: endpoint.duplicateKeys().length,
  });
}, 150_000);

test('Redis wiped (FLUSHALL): `node lib/reconcile.js` rebuilds the projection as Temporal has it, mid-traffic, and a second run changes nothing', async () => {
  // Arrange: 12 items over 6 accounts: 2 rejected by the platform (open reviews), 2 held mid-upload, the rest
  // published or waiting for a held upload's account.
  const { endpoint, redis, client } = stack;
  endpoint.behaviour = (r) =>
    r.title?.startsWith('rejected') ? { status: 422 } : r.title?.startsWith('held') ? 'hold' : { status: 200 };
  const total = 12;
  const title = (i: number) => (i < 2 ? `rejected ${i}` : i < 4 ? `held ${i}` : `fault item ${i}`);
  const { batch, ids } = await startBatchOf(stack, { taskQueue, total, item: (i) => ({ title: title(i) }) });
  batches.push({ batchId: batch.workflowId, ids });
  // Steady: every task is settled, or waits behind a held upload on its account (one upload at a time per account),
  // and the batch's document has caught up.
  await stack.waitUntil(
    'a steady mix: published, in review, held mid-upload, waiting for a held account',
    async () => {
      const docs = await storedDocs(redis, ids);
      const held = endpoint.inFlight();
      const heldAccounts = new Set(held.map((r) => r.accountId));
      const byId = new Map(docs.filter((d): d is TaskDoc => d !== null).map((d) => [d.task_id, d]));
      return (
        held.length === 2 &&
        byId.size === total &&
        [...byId.values()].every((d) => isSettled(d) || heldAccounts.has(d.account_id ?? '')) &&
        endpoint.requests.every(
          (r) => !byId.has(r.taskId) || r.status === undefined || isSettled(byId.get(r.taskId)!),
        ) &&
        tally(byId.values()).review_open === 2 &&
        (await batchCaughtUp(batch.workflowId))
      );
    },
    { timeoutMs: 60_000 },
  );
  const beforeWipe = await projectionKeys();

  // Act: wipe the test's own Redis, then run the reconciler as an operator would.
  await redis.flushall();
  const { code, report } = await stack.runReconcile('reconcile-1');

  // Assert: every task Temporal knows is back, exactly as Temporal has it, with exactly the index entries it had.
  const allIds = batches.flatMap((b) => [b.batchId, ...b.ids]);
  expect(code).toBe(0);
  expect(report).toMatchObject({ errors: 0, removed: 0 });
  expect(report.scanned).toBe(allIds.length);
  // Traffic flows: a task that changed between the wipe and the reconciler wrote its own newer document first.
  expect(report.written + report.unchanged).toBe(allIds.length);
  expect(report.written).toBeGreaterThanOrEqual(allIds.length - 3);
  for (const b of batches) await expectProjectionMatchesTruth(stack, { ids: b.ids, batchId: b.batchId });
  const rebuilt = await projectionKeys();
  expect(rebuilt.docs).toEqual(beforeWipe.docs);
  expect([...rebuilt.members.keys()].sort()).toEqual([...beforeWipe.members.keys()].sort());
  for (const [key, members] of rebuilt.members)
    expect({ key, members }).toEqual({ key, members: beforeWipe.members.get(key) });

  // Traffic goes on over the rebuilt projection: the held uploads finish, and everything converges.
  endpoint.release();
  await stack.waitUntil(
    'the held uploads to publish',
    async () => (await storedDocs(redis, ids)).every((d) => d !== null && isSettled(d)),
    { timeoutMs: 60_000 },
  );
  const truth = await converge(() => expectProjectionMatchesTruth(stack, { ids, batchId: batch.workflowId }));
  const counted = expectRequestsWithinAttempts(endpoint, truth);
  expect(tally(truth.values())).toMatchObject({ success: 10, review_open: 2 });
  await converge(async () => {
    const b = await truths(client, [batch.workflowId]);
    expect(b.get(batch.workflowId)!.status).toBe('failed'); // settled: 10 published, 2 waiting for a person
  });
  const again = await stack.runReconcile('reconcile-2');
  expect(again.code).toBe(0);
  expect(again.report).toMatchObject({ errors: 0, written: 0, removed: 0, removedIndexEntries: 0 });

  await converge(() => expectWholeProjectionMatchesTemporal(stack));
  printFigures('Redis wiped (FLUSHALL + reconcile)', {
    tasksSubmitted: total,
    tasksInTemporal: allIds.length,
    docsBeforeWipe: beforeWipe.docs.length,
    reconcile: {
      scanned: report.scanned,
      written: report.written,
      writtenMeanwhileByWorkflows: report.unchanged,
      errors: report.errors,
      durationMs: report.durationMs,
    },
    secondRunWritten: again.report.written,
    ended: tally(truth.values()),
    webhookRequests: counted.requests,
    attemptsAllowed: counted.attemptsAllowed,
    duplicateKeys: endpoint.duplicateKeys().length,
  });
}, 150_000);
