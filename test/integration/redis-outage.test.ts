/**
 * Bounded cost while Redis is down (issue 14 §3). Real processes: dev server, redis-server (AOF) that the test stops
 * and starts again, `node lib/worker.js`; the platform is a local webhook endpoint.
 *
 * Open tasks of both kinds the issue names: some in review (their document written before the outage), some uploading
 * when Redis stops (their uploads finish during the outage, so each has a document it cannot write). While Redis is
 * down:
 * - a review decision takes effect within 2 s (the update returns, and the task's query shows it);
 * - no workflow task is kept open by a projection write: every workflow task in the outage's part of a history has a
 *   cause (a timer, an activity, a signal, an update). With local retries until Redis answers, the worker instead
 *   extended the held workflow task every few seconds, three events each time, and updates waited for it;
 * - the history grows only by the projection's backoff: per task, the events added per wake, times the wakes an hour
 *   holds once the backoff has reached its cap (PROJECTION_RETRY_MAX_MS), is the bound per hour, printed and checked.
 * The outage is scaled down (30 s); the bound is computed per hour and per day from what it measured.
 * When Redis is back the documents catch up with Temporal's truth.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { reviewDecisionUpdate, taskStateQuery } from '../../src/shared/definitions';
import type { TaskDoc } from '../../src/shared/types';
import { PROJECTION_RETRY_FIRST_MS, PROJECTION_RETRY_MAX_MS } from '../../src/workflows/projector';
import { sleep } from '../helpers/polling';
import {
  expectProjectionMatchesTruth,
  printFigures,
  publishRequest,
  startSingle,
  storedDoc,
  useFaultStack,
  type FaultStack,
} from './fault-helpers';

const EventType = temporal.api.enums.v1.EventType;
/** What may start a workflow task: everything else that starts one is a worker keeping a task open. */
const CAUSES = new Set<number>([
  EventType.EVENT_TYPE_TIMER_FIRED,
  EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
  EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
  EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
  EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
  EventType.EVENT_TYPE_EXTERNAL_WORKFLOW_EXECUTION_SIGNALED,
  EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED,
  EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
  EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
  EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
]);

const OUTAGE_MS = 30_000;
const REVIEWS = 6;
const UPLOADS = 6;

let stack: FaultStack;

useFaultStack({ name: 'outage', accounts: REVIEWS + UPLOADS }, async (s) => {
  stack = s;
  await s.startWorker('outage-w1', { PUBFLOW_WORKER_CONCURRENCY: String(UPLOADS) });
});

/** Wakes of the backoff in an hour once it has reached its cap, plus those of the ramp up to it. */
function wakesPerHour(): number {
  let wakes = 0;
  let t = 0;
  for (let w = PROJECTION_RETRY_FIRST_MS; w < PROJECTION_RETRY_MAX_MS; w *= 2) {
    t += w;
    wakes++;
  }
  return wakes + Math.ceil((3600_000 - t) / PROJECTION_RETRY_MAX_MS);
}

test('Redis down for a while: decisions take effect within 2 s, history grows only by the backoff, documents catch up', async () => {
  // Arrange: 6 tasks in review (the endpoint answers 500: Unconfirmed), then 6 uploads held 8 s by the endpoint.
  const { endpoint, redis, redisServer } = stack;
  const stamp = Date.now().toString(36);
  endpoint.behaviour = (req) =>
    (req.metadata.title ?? '').startsWith('review') ? { status: 500 } : { status: 200, afterMs: 8000 };
  const reviews: WorkflowHandle[] = [];
  for (let i = 0; i < REVIEWS; i++)
    reviews.push(
      await startSingle(stack, {
        taskQueue: stack.taskQueue,
        workflowId: `outage-review-${stamp}-${i}`,
        request: publishRequest(stack, i, { title: `review ${i}` }),
      }),
    );
  await stack.waitUntil(
    'every review open in Redis',
    async () => {
      const docs = await Promise.all(reviews.map((h) => storedDoc(redis, h.workflowId)));
      return docs.every((d) => d?.review?.open === true);
    },
    { timeoutMs: 90_000 },
  );
  const uploads: WorkflowHandle[] = [];
  for (let i = 0; i < UPLOADS; i++)
    uploads.push(
      await startSingle(stack, {
        taskQueue: stack.taskQueue,
        workflowId: `outage-upload-${stamp}-${i}`,
        request: publishRequest(stack, REVIEWS + i, { title: `upload ${i}` }),
      }),
    );
  await stack.waitUntil(
    'every upload in flight',
    () => uploads.every((h) => endpoint.requestsFor(h.workflowId).length === 1),
    { timeoutMs: 90_000 },
  );
  const all = [...reviews, ...uploads];
  const before = new Map<string, number>();
  for (const h of all) before.set(h.workflowId, (await h.describe()).historyLength);

  // Act: Redis stops; two decisions are sent during the outage; Redis comes back after OUTAGE_MS.
  const stoppedAt = Date.now();
  await redisServer.stop();
  const decisionMs: number[] = [];
  for (const [h, at] of [
    [reviews[0]!, 8_000],
    [reviews[1]!, 20_000],
  ] as const) {
    await sleep(Math.max(0, stoppedAt + at - Date.now()));
    const t0 = Date.now();
    await h.executeUpdate(reviewDecisionUpdate, {
      args: [{ action: 'resolve', url: 'https://example.com/by-hand', note: 'published by hand during the outage' }],
    });
    const doc = await h.query(taskStateQuery);
    decisionMs.push(Date.now() - t0);
    expect({ id: h.workflowId, status: doc.status, open: doc.review?.open }).toEqual({
      id: h.workflowId,
      status: 'success',
      open: false,
    });
  }
  await sleep(Math.max(0, stoppedAt + OUTAGE_MS - Date.now()));
  const outageMs = Date.now() - stoppedAt;
  const growth: Array<{ id: string; added: number; wakes: number; unexplained: number }> = [];
  for (const h of all) {
    const events = (await h.fetchHistory()).events ?? [];
    const added = events.filter((e) => Number(e.eventId) > before.get(h.workflowId)!);
    // Counted over the window, not in order: an update's acceptance is written after the workflow task it came in.
    const causes = added.filter((e) => CAUSES.has(Number(e.eventType))).length;
    const tasks = added.filter((e) => Number(e.eventType) === EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED).length;
    const unexplained = Math.max(0, tasks - causes);
    const wakes = added.filter((e) => Number(e.eventType) === EventType.EVENT_TYPE_TIMER_FIRED).length;
    growth.push({ id: h.workflowId, added: added.length, wakes, unexplained });
  }
  await redisServer.start();

  // Assert: decisions in time; every workflow task of the outage had a cause; the hourly bound.
  for (const ms of decisionMs) expect(ms).toBeLessThan(2000);
  expect(growth.filter((g) => g.unexplained > 0)).toEqual([]);
  const perWake = Math.max(...growth.map((g) => g.added / Math.max(1, g.wakes)));
  const perHour = Math.ceil(perWake * wakesPerHour());
  printFigures('redis outage', {
    outageMs,
    decisionMs,
    eventsAddedPerTask: growth.map((g) => g.added),
    backoffWakesPerTask: growth.map((g) => g.wakes),
    boundEventsPerTaskPerHour: perHour,
    boundEventsPerTaskPerDay: perHour * 24,
  });
  // Temporal's history limit is 51,200 events: a day-long outage stays a small part of it.
  expect(perHour * 24).toBeLessThan(51_200 / 10);

  // Caught up: every document equals Temporal's truth, the decided and the uploaded tasks succeeded.
  const ids = all.map((h) => h.workflowId);
  await stack.waitUntil(
    'the documents to catch up with Temporal',
    async () => {
      try {
        await expectProjectionMatchesTruth(stack, { ids });
        return true;
      } catch {
        return false;
      }
    },
    { timeoutMs: PROJECTION_RETRY_MAX_MS + 60_000 },
  );
  const docs = (await Promise.all(ids.map((id) => storedDoc(redis, id)))) as TaskDoc[];
  expect(docs.map((d) => d.status)).toEqual([
    'success',
    'success',
    ...Array<string>(REVIEWS - 2).fill('failed'),
    ...Array<string>(UPLOADS).fill('success'),
  ]);
  for (const h of [reviews[0]!, reviews[1]!, ...uploads]) expect((await h.result()).status).toBe('success');
  expect(uploads.map((h) => endpoint.requestsFor(h.workflowId).length)).toEqual(Array<number>(UPLOADS).fill(1));
}, 600_000);
