/**
 * The delivery workflow on the time-skipping test server, with the real worker and a real local receiver: a receiver
 * that never answers 2xx is retried with backoff, every attempt carrying the same id, body and signature, and the
 * delivery gives up once 24 h of (skipped) time have passed, counted as gave_up and as failed attempts.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { deriveEvents } from '../../src/events/derive';
import { loadSubscriptions } from '../../src/events/subscriptions';
import { DEFAULT_DELIVERY_RETRY, deliveryWorkflowId, type DeliverEventInput } from '../../src/events/types';
import { EventWebhooks } from '../../src/events/webhooks';
import type { WorkerMetrics } from '../../src/metrics/worker-metrics';
import { initialTaskDoc } from '../../src/shared/task-doc';
import { WORKFLOW_TYPES } from '../../src/shared/workflow-contracts';
import { perFile, startWorkflowTestStack, withWorker, type Harness } from '../helpers/harness';
import { tempDir, type RedisServer } from '../helpers/servers';
import { contentRejected } from '../../src/platforms';
import { DEFAULT_POLICY } from '../../src/shared/policy';
import type { publishSingle } from '../../src/workflows';
import { waitUntil } from '../helpers/polling';
import { ScriptedDriver } from '../helpers/scripted-driver';
import { WebhookReceiver } from '../helpers/webhook-receiver';

let env: TestWorkflowEnvironment;
let h: Harness;
let redisServer: RedisServer;
let receiver: WebhookReceiver;

perFile(
  async () => {
    const stack = await startWorkflowTestStack({ appendonly: true });
    receiver = await WebhookReceiver.start();
    return {
      ...stack,
      async close() {
        await receiver.close();
        await stack.close();
      },
    };
  },
  (s) => ({ env, harness: h, redisServer } = s),
);

class Recorder implements WorkerMetrics {
  readonly deliveries: Array<{ type: string; outcome: string }> = [];
  readonly failures: Array<{ type: string; reason: string }> = [];
  upload(): void {}
  projectionWriteError(): void {}
  eventDelivery(o: { type: string; outcome: string }): void {
    this.deliveries.push(o);
  }
  eventAttemptFailed(o: { type: string; reason: string }): void {
    this.failures.push(o);
  }
}

const SECRET = 'ts-secret-1';

function eventsFile(events: string[]): string {
  const file = path.join(tempDir('events'), 'events.json');
  writeFileSync(file, JSON.stringify([{ id: 'ops', url: receiver.url, secret: SECRET, events }]));
  return file;
}

async function withEventsWorker<T>(
  o: { file: string; metrics?: Recorder; drivers?: ScriptedDriver[] },
  fn: (taskQueue: string) => Promise<T>,
): Promise<T> {
  const events = new EventWebhooks({ subscriptions: loadSubscriptions(o.file), requestTimeoutMs: 5000 });
  return withWorker(
    {
      connection: env.nativeConnection,
      harness: h,
      drivers: o.drivers ?? [],
      metrics: o.metrics,
      uploadConcurrency: 1,
      events,
    },
    fn,
  );
}

/** The attempts Temporal's retry policy makes before `giveUpAfterMs`: at 0, then after each (capped) interval. */
function scheduledAttempts(r = DEFAULT_DELIVERY_RETRY): number {
  let t = 0;
  let n = 1;
  for (let interval = r.initialIntervalMs; ; interval = Math.min(interval * 2, r.maximumIntervalMs)) {
    t += interval;
    if (t >= r.giveUpAfterMs) return n;
    n++;
  }
}

test('a receiver answering 500 is retried with backoff for 24 h, with the same id and signature, then given up and counted', async () => {
  receiver.behaviour = () => ({ status: 500 });
  const metrics = new Recorder();
  await withEventsWorker({ file: eventsFile(['review.opened']), metrics }, async (taskQueue) => {
    const doc = initialTaskDoc({
      taskId: `pub-${randomUUID()}`,
      request: { platform: 'webhook', accountId: 'hook', video: { path: 'v.mp4' }, title: 't', priority: 5 },
      parentTaskId: null,
      createdAt: new Date().toISOString(),
      runId: null,
    });
    const [event] = deriveEvents({
      ...doc,
      status: 'failed',
      attempt: 1,
      review: {
        open: true,
        reason: 'r',
        kind: 'Unconfirmed',
        message: 'm',
        attempt: 1,
        failed_at: doc.created_at,
        expires_at: doc.created_at,
      },
    });
    expect(DEFAULT_DELIVERY_RETRY.giveUpAfterMs).toBe(24 * 3_600_000);
    const input: DeliverEventInput = { subscriptionId: 'ops', event: event!, retry: DEFAULT_DELIVERY_RETRY };
    const handle = await env.client.workflow.start(WORKFLOW_TYPES.deliverEvent, {
      workflowId: deliveryWorkflowId('ops', event!.id),
      taskQueue,
      args: [input],
    });

    const err = await handle.result().then(
      () => undefined,
      (e: unknown) => e,
    );
    // Workflow time, as the server recorded it (the test server's clock runs on after the workflow closed).
    const described = await handle.describe();
    const elapsedMs = described.closeTime!.getTime() - described.startTime.getTime();

    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = (err as WorkflowFailedError).cause;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect((cause as ApplicationFailure).type).toBe('EventDeliveryGaveUp');
    expect(cause!.message).toContain('the receiver answered 500');
    // Temporal gives up as soon as the next attempt would start past the 24 h: within one (1 h) interval of it.
    expect(elapsedMs).toBeLessThanOrEqual(DEFAULT_DELIVERY_RETRY.giveUpAfterMs);
    expect(elapsedMs).toBeGreaterThan(DEFAULT_DELIVERY_RETRY.giveUpAfterMs - DEFAULT_DELIVERY_RETRY.maximumIntervalMs);

    // Every attempt the backoff schedule allows within 24 h, and no more; the same id, bytes and signature each time.
    const posts = receiver.requests;
    expect(posts.length).toBe(scheduledAttempts());
    expect(new Set(posts.map((p) => p.headers['pubflow-delivery']))).toEqual(new Set([event!.id]));
    expect(new Set(posts.map((p) => p.body)).size).toBe(1);
    const signature = `sha256=${createHmac('sha256', SECRET).update(posts[0]!.body!).digest('hex')}`;
    expect(new Set(posts.map((p) => p.headers['pubflow-signature']))).toEqual(new Set([signature]));

    expect(metrics.failures).toEqual(posts.map(() => ({ type: 'review.opened', reason: 'http_5xx' })));
    expect(metrics.deliveries).toEqual([{ type: 'review.opened', outcome: 'gave_up' }]);
  });
}, 180_000);

test('a document version whose Redis write fails still sends its events at once (they do not wait for the mirror)', async () => {
  receiver.requests.length = 0;
  receiver.behaviour = () => ({ status: 200 });
  let fail!: () => void;
  const failing = new Promise<void>((resolve) => (fail = resolve));
  const driver = new ScriptedDriver().then(async () => {
    await failing;
    throw contentRejected('title is not allowed');
  });
  await withEventsWorker({ file: eventsFile(['review.opened']), drivers: [driver] }, async (taskQueue) => {
    const taskId = `outage-${randomUUID()}`;
    await env.client.workflow.start<typeof publishSingle>('publishSingle', {
      taskQueue,
      workflowId: taskId,
      args: [
        {
          request: { platform: 'scripted', accountId: 'acct-1', video: { path: '/m/v.mp4' }, title: 't', priority: 5 },
          policy: DEFAULT_POLICY,
        },
      ],
    });
    // The upload is under way and mirrored; then Redis goes down and the upload fails into review.
    await waitUntil(
      'the running document in Redis',
      async () => (await h.tsm.getTaskState(taskId))?.status === 'running',
      {
        timeoutMs: 30_000,
      },
    );
    await redisServer.stop();
    fail();

    const post = await waitUntil(
      'review.opened to arrive',
      () => receiver.requests.find((r) => r.headers['pubflow-delivery'] === `${taskId}:review.opened:1` && r.body),
      { timeoutMs: 60_000 },
    );
    expect(JSON.parse(post.body!)).toMatchObject({
      type: 'review.opened',
      data: { taskId, errorKind: 'ContentRejected' },
    });
    // Redis is still down: the version the event came from is not mirrored yet.
    expect(await h.tsm.getTaskState(taskId).catch(() => 'unreachable')).toBe('unreachable');

    await redisServer.start();
    await waitUntil(
      'the review to be mirrored',
      async () => (await h.tsm.getTaskState(taskId))?.review?.open === true,
      {
        timeoutMs: 60_000,
      },
    );
    // Written again on the retry, the same version starts no second delivery.
    expect(receiver.requests.filter((r) => r.headers['pubflow-delivery'] === `${taskId}:review.opened:1`)).toHaveLength(
      1,
    );
    await env.client.workflow.getHandle(taskId).terminate('test over');
  });
}, 180_000);
