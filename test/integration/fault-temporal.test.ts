/**
 * Fault injection, Temporal (issue 6 §1): the dev server is stopped and started again mid-batch on the same SQLite
 * file. Real processes: dev server, redis-server (AOF), two `node lib/worker.js`; the platform is a local endpoint.
 */
import { reviewDecisionUpdate } from '../../src/shared/definitions';
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
  storedDocs,
  tally,
  truths,
  type FaultStack,
} from './fault-helpers';

let stack: FaultStack;

useFaultStack({ name: 'temporal', accounts: 6 }, (s) => (stack = s));

test('Temporal restarted mid-batch on the same SQLite file: the workers reconnect by themselves and every workflow resumes and finishes', async () => {
  // Arrange: two workers (2 upload slots each), 16 items over 6 accounts, uploads answered after 800 ms.
  const { taskQueue } = stack;
  const over = { PUBFLOW_WORKER_CONCURRENCY: '2' };
  const workers = await Promise.all([stack.startWorker('restart-w1', over), stack.startWorker('restart-w2', over)]);
  const { endpoint, redis, client, dev } = stack;
  endpoint.behaviour = () => ({ status: 200, afterMs: 800 });
  const total = 16;
  const { batch, ids } = await startBatchOf(stack, { taskQueue, total });
  await stack.waitUntil(
    'a third of the batch published, with uploads in flight',
    async () =>
      (await storedDocs(redis, ids)).filter((d) => d?.status === 'success').length >= 5 &&
      endpoint.inFlight().length > 0,
    { timeoutMs: 60_000, intervalMs: 20 },
  );
  const successBeforeStop = (await storedDocs(redis, ids)).filter((d) => d?.status === 'success').length;
  const uploadsInFlightAtStop = endpoint.inFlight().length;

  // Act: stop the dev server, keep it down a moment, start it again on the same database file and port.
  const stopAt = Date.now();
  await dev.stop();
  const downAt = Date.now();
  await sleep(3000);
  const aliveDuringOutage = workers.filter((w) => w.alive).length;
  await dev.start();
  const outageMs = Date.now() - stopAt;
  const requestsDuringOutage = endpoint.requests.filter(
    (r) => r.arrivedAt >= downAt && r.arrivedAt < Date.now(),
  ).length;

  // Assert: the same worker processes carry on; every child settles.
  await stack.waitUntil(
    'every child to settle after the restart',
    async () => (await storedDocs(redis, ids)).every((d) => d !== null && isSettled(d)),
    { timeoutMs: 120_000, intervalMs: 100 },
  );
  // Uploads whose answer came while Temporal was down may come back as Unconfirmed reviews (documented in
  // docs/operations.md). A person checks the platform: resolve what was published, retry what was not.
  const settled = await truths(client, ids);
  const reviews = [...settled.values()].filter((d) => d.review?.open === true);
  let resolved = 0;
  let retried = 0;
  for (const d of reviews) {
    expect(d.review!.kind).toBe('Unconfirmed');
    const sent = endpoint.requestsFor(d.task_id).find((r) => r.attempt === d.attempt);
    const published = sent?.status === 200;
    const decision = published
      ? ({
          action: 'resolve',
          url: `https://hook.test/${d.task_id}/${d.attempt}`,
          note: 'found on the platform',
        } as const)
      : ({ action: 'retry', note: 'not on the platform' } as const);
    await client.workflow.getHandle(d.task_id).executeUpdate(reviewDecisionUpdate, { args: [decision] });
    if (published) resolved++;
    else retried++;
  }
  const result = await batch.result();
  expect(result).toMatchObject({ status: 'success', counts: { total, success: total } });
  const truth = await converge(() => expectProjectionMatchesTruth(stack, { ids, batchId: batch.workflowId }));
  for (const d of truth.values()) expect((d as TaskDoc).status).toBe('success');
  const counted = expectRequestsWithinAttempts(endpoint, truth);
  // The very processes started before the outage: none died, none was restarted.
  expect(workers.map((w) => w.alive)).toEqual([true, true]);
  expect(aliveDuringOutage).toBe(2);

  await converge(() => expectWholeProjectionMatchesTemporal(stack));
  printFigures('Temporal restarted', {
    tasksSubmitted: total,
    successBeforeStop,
    uploadsInFlightAtStop,
    outageMs,
    devServerStopMs: downAt - stopAt,
    requestsDuringOutage,
    workersAliveDuringOutage: aliveDuringOutage,
    reviewsAfterRestart: reviews.length,
    resolvedByPerson: resolved,
    retriedByPerson: retried,
    ended: tally(truth.values()),
    batch: result.status,
    webhookRequests: counted.requests,
    attemptsAllowed: counted.attemptsAllowed,
    duplicateKeys: endpoint.duplicateKeys().length,
  });
  const exits = await Promise.all(workers.map((w) => w.stop()));
  expect(exits.map((e) => e.code)).toEqual([0, 0]);
}, 200_000);
