/**
 * Every path of the publishSingle workflow on the time-skipping test server, with the real activities and a
 * real redis-server; only the platform is scripted.
 */
import { randomUUID } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure, TimeoutFailure, TimeoutType } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { contentRejected, notSent, rateLimited, unconfirmed } from '../../src/platforms/types';
import { accountGateId, rescheduleUpdate, reviewDecisionUpdate } from '../../src/shared/definitions';
import { temporal } from '@temporalio/proto';
import { DEFAULT_POLICY, type PublishPolicy } from '../../src/shared/policy';
import type { PublishRequest, TaskDoc } from '../../src/shared/types';
import type { publishSingle } from '../../src/workflows';
import { classifyUploadError } from '../../src/workflows/publish-single';
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
import { waitUntil } from '../helpers/polling';
import { hangUntilAborted, ScriptedDriver } from '../helpers/scripted-driver';
import { TASK_PROTOCOL } from '../../src/shared/workflow-contracts';

let env: TestWorkflowEnvironment;
let h: Harness;

perFile(
  () => startWorkflowTestStack(),
  (s) => ({ env, harness: h } = s),
);

const request = (over: Partial<PublishRequest> = {}): PublishRequest => ({
  platform: 'scripted',
  accountId: 'acct-1',
  video: { path: '/media/v.mp4' },
  title: 'hello',
  priority: 5,
  ...over,
});

const policy: PublishPolicy = {
  ...DEFAULT_POLICY,
  autoRetry: { maxAttempts: 2, initialDelayMs: 60_000, maxDelayMs: 600_000 },
};

async function start(taskQueue: string, over: Partial<PublishRequest> = {}, workflowId = `t-${randomUUID()}`) {
  return env.client.workflow.start<typeof publishSingle>('publishSingle', {
    taskQueue,
    workflowId,
    // As the API starts it (TASK_PROTOCOL: src/shared/workflow-contracts.ts); test/replay covers older protocols.
    args: [{ request: request(over), policy, protocol: TASK_PROTOCOL }],
  });
}

const doc = (id: string) => h.tsm.getTaskState(id);
const docWhere = (id: string, pred: (d: TaskDoc) => boolean) => waitForDoc(h, id, pred);

async function membersOf(key: string) {
  return h.redis.zrange(key, 0, -1);
}

function run<T>(driver: ScriptedDriver, fn: (taskQueue: string) => Promise<T>) {
  return withWorker({ connection: env.nativeConnection, harness: h, drivers: [driver] }, fn);
}

test('a publish that succeeds ends success in Redis, with its result and a single attempt', async () => {
  const driver = new ScriptedDriver();
  await run(driver, async (tq) => {
    const handle = await start(tq);
    const out = await handle.result();
    expect(out.status).toBe('success');
    const d = await docWhere(handle.workflowId, (x) => x.status === 'success');
    expect(d.result?.postId).toBe(`post-${handle.workflowId}-1`);
    expect(d.attempt).toBe(1);
    expect(d.started_at).not.toBeNull();
    expect(d.completed_at).not.toBeNull();
    expect(await membersOf('celery:index:status:success')).toContain(handle.workflowId);
    expect(await membersOf('celery:index:status:running')).not.toContain(handle.workflowId);
    expect(driver.callsFor(handle.workflowId)).toHaveLength(1);
  });
});

test('protocol 3: the task and its gate signal each other by local activity, so neither history has an external-signal command', async () => {
  const driver = new ScriptedDriver();
  await run(driver, async (tq) => {
    const handle = await start(tq);
    expect((await handle.result()).status).toBe('success');
    const gate = env.client.workflow.getHandle(accountGateId(request().accountId, tq));
    // The gate ends once it is idle again (it has handled the release).
    await waitUntil('the gate to end', async () => (await gate.describe()).status.name !== 'RUNNING');
    const task = await historyEventTypes(handle);
    const gateEvents = await historyEventTypes(gate);
    expect(task.filter((t) => EXTERNAL_SIGNAL_EVENT_TYPES.includes(t))).toEqual([]);
    expect(gateEvents.filter((t) => EXTERNAL_SIGNAL_EVENT_TYPES.includes(t))).toEqual([]);
    // The grant reached the task as a signal all the same, and the release reached the gate.
    const SIGNALED = Number(temporal.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED);
    expect(task.filter((t) => t === SIGNALED)).toHaveLength(1);
    expect(gateEvents.filter((t) => t === SIGNALED)).toHaveLength(2); // the request and the release
    // Protocol 2 wrote 26 events of the task's own for this publish (docs/benchmarks.md); the release's signal
    // command and the workflow task that waited for its confirmation are gone.
    expect(task.length).toBeLessThanOrEqual(22);
    expect(driver.callsFor(handle.workflowId)).toHaveLength(1);
  });
});

test('a failed upload lands in review, and a retry with a corrected title publishes once more and succeeds', async () => {
  const driver = new ScriptedDriver().then(async () => {
    throw contentRejected('title too long');
  });
  await run(driver, async (tq) => {
    const handle = await start(tq, { title: 'a very long title' });
    const failed = await docWhere(handle.workflowId, (x) => x.review?.open === true);
    expect(failed.status).toBe('failed');
    expect(failed.review).toMatchObject({ kind: 'ContentRejected', attempt: 1, message: 'title too long', open: true });
    expect(await membersOf('pubflow:index:review:open')).toContain(handle.workflowId);

    const outcome = await handle.executeUpdate(reviewDecisionUpdate, {
      args: [{ action: 'retry', patch: { title: 'short' }, note: 'shortened' }],
    });
    expect(outcome).toMatchObject({ action: 'retry', attempt: 1 });
    const out = await handle.result();
    expect(out).toMatchObject({ status: 'success', attempts: 2 });

    const calls = driver.callsFor(handle.workflowId);
    expect(calls.map((c) => [c.attempt, c.request.title])).toEqual([
      [1, 'a very long title'],
      [2, 'short'],
    ]);
    const d = await docWhere(handle.workflowId, (x) => x.status === 'success');
    expect(d.retry_count).toBe(1);
    expect(d.review).toMatchObject({ open: false, decision: 'retry', note: 'shortened' });
    expect((d.data as { title: string }).title).toBe('short');
    expect(await membersOf('pubflow:index:review:open')).not.toContain(handle.workflowId);
  });
});

test('review -> resolve: the person published by hand, the task is success with their url', async () => {
  const driver = new ScriptedDriver().then(async () => {
    throw unconfirmed('timeout after sending');
  });
  await run(driver, async (tq) => {
    const handle = await start(tq);
    const failed = await docWhere(handle.workflowId, (x) => x.review?.open === true);
    expect(failed.review?.reason).toMatch(/check the account before retrying/);
    await handle.executeUpdate(reviewDecisionUpdate, { args: [{ action: 'resolve', url: 'https://x.test/p/1' }] });
    expect((await handle.result()).status).toBe('success');
    const d = await docWhere(handle.workflowId, (x) => x.status === 'success');
    expect(d.result?.url).toBe('https://x.test/p/1');
    expect(d.review?.decision).toBe('resolve');
    expect(driver.callsFor(handle.workflowId)).toHaveLength(1);
  });
});

test('review -> discard: the task stays failed and the review closes', async () => {
  const driver = new ScriptedDriver().then(async () => {
    throw contentRejected('nope');
  });
  await run(driver, async (tq) => {
    const handle = await start(tq);
    await docWhere(handle.workflowId, (x) => x.review?.open === true);
    await handle.executeUpdate(reviewDecisionUpdate, { args: [{ action: 'discard', note: 'spam' }] });
    expect((await handle.result()).status).toBe('failed');
    const d = await docWhere(handle.workflowId, (x) => x.review?.open === false);
    expect(d.status).toBe('failed');
    expect(d.review).toMatchObject({ decision: 'discard', note: 'spam' });
    expect(await membersOf('pubflow:index:review:open')).not.toContain(handle.workflowId);
    expect(await membersOf('celery:index:status:failed')).toContain(handle.workflowId);
  });
});

test('an undecided review expires after 7 days of skipped time and closes as discarded', async () => {
  const driver = new ScriptedDriver().then(async () => {
    throw contentRejected('nope');
  });
  await run(driver, async (tq) => {
    const handle = await start(tq);
    await docWhere(handle.workflowId, (x) => x.review?.open === true);
    const before = Number(await env.currentTimeMs());
    const out = await handle.result(); // the test server skips the 7-day timer
    expect(out.status).toBe('failed');
    expect(Number(await env.currentTimeMs()) - before).toBeGreaterThanOrEqual(DEFAULT_POLICY.reviewTtlMs - 1000);
    const d = await docWhere(handle.workflowId, (x) => x.review?.open === false);
    expect(d.review?.decision).toBe('expired');
  });
});

test('a decision on a task without an open review is rejected by the update validator', async () => {
  const driver = new ScriptedDriver().then(hangUntilAborted);
  await run(driver, async (tq) => {
    const handle = await start(tq);
    await docWhere(handle.workflowId, (x) => x.status === 'running');
    await expect(handle.executeUpdate(reviewDecisionUpdate, { args: [{ action: 'discard' }] })).rejects.toMatchObject({
      cause: { message: expect.stringMatching(/no open review/) },
    });
    await handle.cancel();
    await expectCancelled(handle);
  });
});

test('cancel while running aborts the upload (the driver sees the abort) and the task ends cancelled', async () => {
  const driver = new ScriptedDriver().then(hangUntilAborted);
  await run(driver, async (tq) => {
    const handle = await start(tq);
    await waitUntil('the upload to start', async () => driver.callsFor(handle.workflowId).length === 1);
    await handle.cancel();
    await expectCancelled(handle);
    expect(driver.aborted.map((c) => c.taskId)).toContain(handle.workflowId);
    const d = await docWhere(handle.workflowId, (x) => x.status === 'cancelled');
    expect(d.completed_at).not.toBeNull();
    expect(await membersOf('celery:index:status:running')).not.toContain(handle.workflowId);
  });
});

test('cancel while in review closes the review and ends cancelled', async () => {
  const driver = new ScriptedDriver().then(async () => {
    throw contentRejected('nope');
  });
  await run(driver, async (tq) => {
    const handle = await start(tq);
    await docWhere(handle.workflowId, (x) => x.review?.open === true);
    await handle.cancel();
    await expectCancelled(handle);
    const d = await docWhere(handle.workflowId, (x) => x.status === 'cancelled');
    expect(d.review?.open).toBe(false);
    expect(await membersOf('pubflow:index:review:open')).not.toContain(handle.workflowId);
  });
});

test('an idempotent repeat (same workflow id) is refused by Temporal and never publishes twice', async () => {
  const driver = new ScriptedDriver();
  await run(driver, async (tq) => {
    const id = `idem-${randomUUID()}`;
    const first = await start(tq, {}, id);
    await first.result();
    await expect(
      env.client.workflow.start('publishSingle', {
        taskQueue: tq,
        workflowId: id,
        args: [{ request: request(), policy }],
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
      }),
    ).rejects.toBeInstanceOf(WorkflowExecutionAlreadyStartedError);
    expect(driver.callsFor(id)).toHaveLength(1);
  });
});

test('NotSent and RateLimited are retried automatically on durable timers, showing status "retry"', async () => {
  const driver = new ScriptedDriver().then(
    async () => {
      throw notSent('connection refused');
    },
    async () => {
      throw rateLimited('slow down', 120);
    },
  );
  await run(driver, async (tq) => {
    const handle = await start(tq);
    const retrying = await docWhere(handle.workflowId, (x) => x.status === 'retry');
    expect(retrying.error_kind).toBe('NotSent');
    const out = await handle.result();
    expect(out).toMatchObject({ status: 'success', attempts: 3 });
    expect(driver.callsFor(handle.workflowId).map((c) => c.attempt)).toEqual([1, 2, 3]);
  });
});

test('automatic retries stop at the cap and the task goes to review', async () => {
  const fail = async () => {
    throw notSent('down');
  };
  const driver = new ScriptedDriver().then(fail, fail, fail, fail);
  await run(driver, async (tq) => {
    const handle = await start(tq);
    await docWhere(handle.workflowId, (x) => x.status === 'retry');
    await env.sleep('1 hour'); // longer than both backoffs
    const d = await docWhere(handle.workflowId, (x) => x.review?.open === true);
    expect(d.review).toMatchObject({ kind: 'NotSent', attempt: 3 });
    expect(driver.callsFor(handle.workflowId)).toHaveLength(3);
    await handle.cancel();
    await expectCancelled(handle);
  });
});

test('an Unconfirmed failure is never retried without a person, however long we wait', async () => {
  const driver = new ScriptedDriver().then(async () => {
    throw unconfirmed('timeout after the body was sent');
  });
  await run(driver, async (tq) => {
    const handle = await start(tq);
    await docWhere(handle.workflowId, (x) => x.review?.open === true);
    await env.sleep('6 days');
    expect(driver.callsFor(handle.workflowId)).toHaveLength(1);
    const d = await doc(handle.workflowId);
    expect(d?.review).toMatchObject({ open: true, kind: 'Unconfirmed' });
    await handle.cancel();
    await expectCancelled(handle);
  });
});

test('a driver that returns nothing usable is a failure (InvalidResult), never a silent success', async () => {
  const driver = new ScriptedDriver().then(async () => ({}));
  await run(driver, async (tq) => {
    const handle = await start(tq);
    const d = await docWhere(handle.workflowId, (x) => x.review?.open === true);
    expect(d.status).toBe('failed');
    expect(d.review?.kind).toBe('InvalidResult');
    await handle.cancel();
    await expectCancelled(handle);
  });
});

describe('classifyUploadError', () => {
  const activityFailure = (cause: Error) =>
    new ActivityFailure('upload failed', 'upload', 'id', undefined as never, 'upload', cause);

  test('a heartbeat timeout (a worker that died mid-upload) is Unconfirmed', () => {
    const c = classifyUploadError(activityFailure(new TimeoutFailure('hb', undefined, TimeoutType.HEARTBEAT)));
    expect(c.kind).toBe('Unconfirmed');
  });

  test('a typed ApplicationFailure keeps its kind and retry-after', () => {
    const af = ApplicationFailure.create({ type: 'RateLimited', message: 'x', details: [{ retryAfterSeconds: 5 }] });
    expect(classifyUploadError(activityFailure(af))).toMatchObject({ kind: 'RateLimited', retryAfterMs: 5000 });
  });

  test('an unknown failure type is Unconfirmed, never safe to retry', () => {
    const af = ApplicationFailure.create({ type: 'SomethingNew', message: 'x' });
    expect(classifyUploadError(activityFailure(af)).kind).toBe('Unconfirmed');
  });
});

describe('scheduled publishing', () => {
  const inFuture = async (ms: number) => new Date(Number(await env.currentTimeMs()) + ms).toISOString();

  test('a task with a future publishAt waits (pending, scheduled_for set) and publishes at its time', async () => {
    const driver = new ScriptedDriver();
    await run(driver, async (tq) => {
      const at = await inFuture(3 * 3600_000);
      const handle = await start(tq, { publishAt: at });
      const waitingDoc = await docWhere(handle.workflowId, (x) => x.scheduled_for !== null);
      expect(waitingDoc.status).toBe('pending');
      expect(Date.parse(waitingDoc.scheduled_for!)).toBe(Date.parse(at));
      expect(driver.callsFor(handle.workflowId)).toHaveLength(0);
      await handle.result();
      expect(Number(await env.currentTimeMs())).toBeGreaterThanOrEqual(Date.parse(at));
      expect(driver.callsFor(handle.workflowId)).toHaveLength(1);
    });
  });

  test('reschedule moves the publish time; the task publishes at the new time, not the old one', async () => {
    const driver = new ScriptedDriver();
    await run(driver, async (tq) => {
      const handle = await start(tq, { publishAt: await inFuture(3600_000) });
      await docWhere(handle.workflowId, (x) => x.scheduled_for !== null);
      const later = await inFuture(48 * 3600_000);
      await handle.executeUpdate(rescheduleUpdate, { args: [{ publishAt: later }] });
      await env.sleep('2 hours');
      expect(driver.callsFor(handle.workflowId)).toHaveLength(0);
      const d = await docWhere(handle.workflowId, (x) => x.scheduled_for === later);
      expect(d.status).toBe('pending');
      await handle.result();
      expect(Number(await env.currentTimeMs())).toBeGreaterThanOrEqual(Date.parse(later));
      expect(driver.callsFor(handle.workflowId)).toHaveLength(1);
    });
  });

  test('cancel while waiting for the publish time: never published, status cancelled', async () => {
    const driver = new ScriptedDriver();
    await run(driver, async (tq) => {
      const handle = await start(tq, { publishAt: await inFuture(24 * 3600_000) });
      await docWhere(handle.workflowId, (x) => x.scheduled_for !== null);
      await handle.cancel();
      await expectCancelled(handle);
      await docWhere(handle.workflowId, (x) => x.status === 'cancelled');
      expect(driver.callsFor(handle.workflowId)).toHaveLength(0);
    });
  });

  test('a publishAt in the past runs now', async () => {
    const driver = new ScriptedDriver();
    await run(driver, async (tq) => {
      const handle = await start(tq, { publishAt: '2020-01-01T00:00:00+00:00' });
      await handle.result();
      expect(driver.callsFor(handle.workflowId)).toHaveLength(1);
    });
  });
});
