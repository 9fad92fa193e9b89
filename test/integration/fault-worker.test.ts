/**
 * Fault injection, workers (issue 6 §1): `kill -9` of a worker mid-batch, and SIGTERM with uploads in flight.
 * Real processes: dev server, redis-server (AOF), `node lib/worker.js`; the platform is a local webhook endpoint.
 */
import { temporal } from '@temporalio/proto';
import { parseDuration } from '../../src/config';
import { reviewDecisionUpdate } from '../../src/shared/definitions';
import { converge, sleep } from '../helpers/polling';
import {
  expectProjectionMatchesTruth,
  expectRequestsWithinAttempts,
  expectWholeProjectionMatchesTemporal,
  FAULT_ENV,
  isSettled,
  printFigures,
  publishRequest,
  startBatchOf,
  useFaultStack,
  startSingle,
  storedDoc,
  storedDocs,
  tally,
  truths,
  type FaultStack,
} from './fault-helpers';
import type { ReceivedRequest } from '../helpers/webhook-receiver';

let stack: FaultStack;

/** When the server recorded the upload's timeout (epoch ms). */
async function activityTimedOutAt(id: string): Promise<number> {
  const history = await stack.client.workflow.getHandle(id).fetchHistory();
  const e = history.events?.find(
    (ev) => ev.eventType === temporal.api.enums.v1.EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
  );
  if (!e?.eventTime) throw new Error(`${id}: no ActivityTaskTimedOut event`);
  return Number(e.eventTime.seconds ?? 0) * 1000 + Math.floor((e.eventTime.nanos ?? 0) / 1e6);
}

useFaultStack({ name: 'worker', accounts: 8 }, (s) => (stack = s));

test('kill -9 mid-batch: queued uploads go on, each in-flight upload becomes an Unconfirmed review within the heartbeat timeout, nothing is lost or sent twice', async () => {
  // Arrange: two workers with 2 upload slots each, 16 items over 8 accounts. The endpoint holds every upload: 4 are
  // in flight (2 per worker); the other 12 are queued, waiting for an upload slot or behind their account's upload.
  const { taskQueue } = stack;
  const over = { PUBFLOW_WORKER_CONCURRENCY: '2' };
  const heartbeatMs = parseDuration(FAULT_ENV.PUBFLOW_HEARTBEAT_TIMEOUT!);
  const [w1, w2] = await Promise.all([stack.startWorker('kill-w1', over), stack.startWorker('kill-w2', over)]);
  const { endpoint, redis, client } = stack;
  endpoint.behaviour = () => 'hold';
  const total = 16;
  const { batch, ids } = await startBatchOf(stack, { taskQueue, total });
  await stack.waitUntil('4 uploads held at the endpoint', () => endpoint.inFlight().length === 4, {
    timeoutMs: 60_000,
  });
  await stack.waitUntil(
    'every child started, at least 8 of them running (4 uploading, the others queued for a slot)',
    async () => {
      const docs = await storedDocs(redis, ids);
      return docs.every((d) => d !== null) && docs.filter((d) => d?.status === 'running').length >= 8;
    },
  );
  // Steady before the kill: no fifth upload starts (every slot is taken), and the 'running' writes and reports to the
  // batch are done, so the kill lands in the middle of long uploads, not of a workflow task.
  await sleep(1000);
  const inFlightAtKill = endpoint.inFlight();
  expect(inFlightAtKill).toHaveLength(4);
  const sentBeforeKill = new Set(endpoint.requests.map((r) => r.taskId));
  const queuedAtKill = ids.filter((id) => !sentBeforeKill.has(id));
  const runningAtKill = (await storedDocs(redis, ids)).filter((d) => d?.status === 'running').length;

  // Act: kill -9 one worker; start a replacement; let the surviving uploads answer.
  const killedAt = Date.now();
  w1.signal('SIGKILL');
  const w1Exit = await w1.exited;
  expect(w1Exit.signal).toBe('SIGKILL');
  // The dead worker's two uploads: the endpoint sees their connections close.
  const victims: ReceivedRequest[] = await stack.waitUntil(
    'the killed worker’s uploads to be cut off',
    () => {
      const cut = inFlightAtKill.filter((r) => r.abortedAt !== undefined);
      return cut.length === 2 ? cut : undefined;
    },
    { timeoutMs: 5000 },
  );
  const replacement = stack.startWorker('kill-w3', over);
  endpoint.behaviour = () => ({ status: 200, afterMs: 200 });
  expect(endpoint.release()).toBe(2); // the survivor's two uploads

  // Assert: each in-flight upload of the dead worker becomes an Unconfirmed review, fast.
  const killToReviewMs = await Promise.all(
    victims.map((v) =>
      stack.waitUntil(
        `an Unconfirmed review for ${v.taskId}`,
        async () => {
          const d = await storedDoc(redis, v.taskId);
          return d?.review?.open === true && d.review.kind === 'Unconfirmed' ? Date.now() - killedAt : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 25 },
      ),
    ),
  );
  const w3 = await replacement;
  const victimIds = victims.map((v) => v.taskId);
  await converge(
    async () => {
      const t = await truths(client, ids);
      expect([...t.values()].filter((d) => !isSettled(d)).map((d) => d.task_id)).toEqual([]);
    },
    { timeoutMs: 90_000 },
  );

  // A person checks the platform: the first post is not there, so they retry it (attempt 2); the other stays open.
  const [retried, leftOpen] = victimIds as [string, string];
  await client.workflow
    .getHandle(retried)
    .executeUpdate(reviewDecisionUpdate, { args: [{ action: 'retry', note: 'not on the platform' }] });
  await stack.waitUntil(
    `${retried} to succeed on its retry`,
    async () => (await storedDoc(redis, retried))?.status === 'success',
    { timeoutMs: 30_000 },
  );

  const truth = await converge(() => expectProjectionMatchesTruth(stack, { ids, batchId: batch.workflowId }));
  const counted = expectRequestsWithinAttempts(endpoint, truth);
  for (const id of ids) {
    const d = truth.get(id)!;
    if (id === leftOpen) {
      expect(d).toMatchObject({ status: 'failed', attempt: 1, error_kind: 'Unconfirmed' });
      expect(d.review).toMatchObject({ open: true, kind: 'Unconfirmed', attempt: 1 });
      expect(d.review!.message).toMatch(/HEARTBEAT/);
      expect(endpoint.requestsFor(id)).toHaveLength(1);
    } else if (id === retried) {
      expect(d).toMatchObject({ status: 'success', attempt: 2, retry_count: 1 });
      expect(endpoint.requestsFor(id).map((r) => r.key)).toEqual([`${id}:1`, `${id}:2`]);
    } else {
      // Queued and surviving uploads: published once, never reviewed.
      expect({ id, status: d.status, attempt: d.attempt, review: d.review }).toEqual({
        id,
        status: 'success',
        attempt: 1,
        review: null,
      });
      expect(endpoint.requestsFor(id)).toHaveLength(1);
    }
  }
  for (const id of queuedAtKill) expect(truth.get(id)!.status).toBe('success');
  // "Within the heartbeat timeout, not an hour later": the server notices the silence one heartbeat timeout after
  // the last heartbeat, and the next workflow task files the review. That workflow task waits up to 10 s more when
  // the dead worker had the workflow cached (sticky queue schedule-to-start timeout) or was running one of its
  // workflow tasks (workflow task timeout); the rest is slack for a loaded 2-core machine.
  for (const ms of killToReviewMs) expect(ms).toBeLessThan(heartbeatMs + 10_000 + 5000);
  // When the server noticed each dead upload (its ActivityTaskTimedOut event), for the figures.
  const timeoutNoticedMs = await Promise.all(victimIds.map((id) => activityTimedOutAt(id).then((t) => t - killedAt)));

  await converge(() => expectWholeProjectionMatchesTemporal(stack));
  printFigures('worker killed (kill -9)', {
    tasksSubmitted: total,
    uploadsInFlightAtKill: inFlightAtKill.length,
    inFlightOnKilledWorker: victims.length,
    queuedAtKill: queuedAtKill.length,
    runningAtKill,
    ended: tally(truth.values()),
    humanRetries: 1,
    webhookRequests: counted.requests,
    attemptsAllowed: counted.attemptsAllowed,
    duplicateKeys: endpoint.duplicateKeys().length,
    heartbeatTimeoutMs: heartbeatMs,
    killToReviewMs,
    killToHeartbeatTimeoutMs: timeoutNoticedMs,
    replacementUploads: w3.logLines('upload started').length,
  });
  endpoint.behaviour = () => ({ status: 200 });
  const exits = await Promise.all([w2.stop(), w3.stop()]);
  expect(exits.map((e) => e.code)).toEqual([0, 0]);
}, 180_000);

test('SIGTERM: the worker stops polling, lets an in-flight upload finish within the grace period, exits 0; an upload still running at the deadline becomes Unconfirmed', async () => {
  // Arrange: one worker, grace 4 s; upload A is held and answered 1 s after SIGTERM, upload B never answers.
  const { taskQueue } = stack;
  const graceMs = 4000;
  const over = { PUBFLOW_SHUTDOWN_GRACE: `${graceMs}ms` };
  const g1 = await stack.startWorker('term-g1', over);
  const { endpoint, redis } = stack;
  endpoint.behaviour = (r) =>
    r.title === 'outlives the grace period' ? 'hang' : r.title === 'finishes in grace' ? 'hold' : { status: 200 };
  const tag = Date.now().toString(36);
  const a = await startSingle(stack, {
    taskQueue,
    workflowId: `fault-term-a-${tag}`,
    request: publishRequest(stack, 0, { title: 'finishes in grace' }),
  });
  const b = await startSingle(stack, {
    taskQueue,
    workflowId: `fault-term-b-${tag}`,
    request: publishRequest(stack, 1, { title: 'outlives the grace period' }),
  });
  await stack.waitUntil(
    'both uploads to reach the endpoint',
    () => [a, b].every((h) => endpoint.requestsFor(h.workflowId).some((r) => r.bodyAt !== undefined)),
    { timeoutMs: 60_000 },
  );

  // Act: SIGTERM; a new task arrives while the worker drains; A's answer comes 1 s into the grace period.
  const termAt = Date.now();
  g1.signal('SIGTERM');
  const c = await startSingle(stack, {
    taskQueue,
    workflowId: `fault-term-c-${tag}`,
    request: publishRequest(stack, 2, { title: 'submitted after SIGTERM' }),
  });
  await sleep(1000);
  expect(endpoint.release((r) => r.taskId === a.workflowId)).toBe(1);
  let guard: NodeJS.Timeout | undefined;
  const exit = await Promise.race([
    g1.exited,
    new Promise<never>((_, reject) => {
      guard = setTimeout(
        () => reject(new Error(`the worker did not exit after SIGTERM:\n${g1.logTail()}`)),
        graceMs + 20_000,
      );
    }),
  ]).finally(() => clearTimeout(guard));
  const exitMs = exit.at - termAt;

  // Assert: a clean exit, after waiting for B up to the grace period, and nothing new was taken meanwhile.
  expect(exit).toMatchObject({ code: 0, signal: null });
  expect(exitMs).toBeGreaterThanOrEqual(graceMs - 250);
  expect(exitMs).toBeLessThan(graceMs + 10_000);
  const takenWhileDraining = endpoint.requestsFor(c.workflowId).length;
  expect(takenWhileDraining).toBe(0);
  const [ra] = endpoint.requestsFor(a.workflowId);
  const [rb] = endpoint.requestsFor(b.workflowId);
  expect(ra).toMatchObject({ status: 200 });
  expect(ra!.abortedAt).toBeUndefined();
  expect(rb!.abortedAt).toBeDefined(); // cut at the deadline
  expect(rb!.abortedAt! - termAt).toBeGreaterThanOrEqual(graceMs - 250);

  // A new worker finishes the story: A published, B in review as Unconfirmed (like a crash), C published.
  const g2 = await stack.startWorker('term-g2', over);
  const ids = [a.workflowId, b.workflowId, c.workflowId];
  await stack.waitUntil(
    'A, B and C to settle',
    async () => (await storedDocs(redis, ids)).every((d) => d && isSettled(d)),
    { timeoutMs: 60_000 },
  );
  const truth = await converge(() => expectProjectionMatchesTruth(stack, { ids }));
  expect(truth.get(a.workflowId)).toMatchObject({ status: 'success', attempt: 1, review: null });
  expect(truth.get(b.workflowId)).toMatchObject({ status: 'failed', attempt: 1, error_kind: 'Unconfirmed' });
  expect(truth.get(b.workflowId)!.review).toMatchObject({ open: true, kind: 'Unconfirmed' });
  expect(truth.get(b.workflowId)!.review!.message).toMatch(/worker shut down/);
  expect(truth.get(c.workflowId)).toMatchObject({ status: 'success', attempt: 1 });
  const counted = expectRequestsWithinAttempts(endpoint, truth);

  await converge(() => expectWholeProjectionMatchesTemporal(stack));
  printFigures('graceful shutdown (SIGTERM)', {
    tasksSubmitted: ids.length,
    graceMs,
    exitCode: exit.code,
    sigtermToExitMs: exitMs,
    inFlightAtSigterm: 2,
    finishedInGrace: 1,
    unconfirmedAtDeadline: 1,
    takenWhileDraining,
    ended: tally(truth.values()),
    webhookRequests: counted.requests,
    attemptsAllowed: counted.attemptsAllowed,
  });
  expect((await g2.stop()).code).toBe(0);
}, 120_000);
