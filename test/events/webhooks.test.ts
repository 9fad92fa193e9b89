/**
 * Event webhooks end to end (issue 13 §6): the HTTP API with real keys, a real Temporal dev server, a real
 * redis-server, the real worker with a subscriptions file, the real webhook driver, and real HTTP receivers on
 * 127.0.0.1 for both the platform and the subscriptions.
 */
import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadSubscriptions } from '../../src/events/subscriptions';
import { EVENT_TYPES, deliveryWorkflowId, type PubflowEvent } from '../../src/events/types';
import { EventWebhooks } from '../../src/events/webhooks';
import { createLogger } from '../../src/log';
import { ProjectionStore } from '../../src/projection/store';
import { reconcile } from '../../src/service/reconciler';
import { WORKFLOW_TYPES } from '../../src/shared/workflow-contracts';
import { waitUntil } from '../helpers/polling';
import { freePort, tempDir } from '../helpers/servers';
import { toolPaths } from '../helpers/tools';
import { WebhookReceiver, type ReceivedRequest } from '../helpers/webhook-receiver';
import { docWhere, publish, publishBody, startApiStack, type ApiStack } from '../api/fixtures';

const JSON_SECRET = 'events-json-secret-1';
const SLACK_SECRET = 'events-slack-secret-2';
const SECRET_ENV = 'PUBFLOW_TEST_EVENTS_SECRET';

let stack: ApiStack;
/** The platform (the webhook driver's endpoint). */
let platform: WebhookReceiver;
/** Subscription "all": every event, JSON. */
let all: WebhookReceiver;
/** Subscription "chat": review.opened, Slack format. */
let chat: WebhookReceiver;
/** Subscription "stuck": task.succeeded to a receiver that never answers. */
let stuck: WebhookReceiver;

beforeAll(async () => {
  [platform, all, chat, stuck] = await Promise.all([
    WebhookReceiver.start(),
    WebhookReceiver.start(),
    WebhookReceiver.start(),
    WebhookReceiver.start(),
  ]);
  platform.behaviour = (r) =>
    r.title?.startsWith('broken') ? { status: 500 } : r.title === 'logged out' ? { status: 401 } : { status: 200 };
  stuck.behaviour = () => 'hang';
  process.env[SECRET_ENV] = JSON_SECRET;
  const dir = tempDir('events');
  const file = path.join(dir, 'events.json');
  writeFileSync(path.join(dir, 'chat.secret'), `${SLACK_SECRET}\n`);
  writeFileSync(
    file,
    JSON.stringify([
      {
        id: 'all',
        url: all.url,
        secret: { env: SECRET_ENV },
        events: [...EVENT_TYPES],
      },
      { id: 'chat', url: chat.url, secret: { file: 'chat.secret' }, events: ['review.opened'], format: 'slack' },
      { id: 'down', url: `http://127.0.0.1:${await freePort()}/nobody`, secret: 'x', events: ['task.succeeded'] },
      { id: 'stuck', url: stuck.url, secret: 'x', events: ['task.succeeded'] },
    ]),
  );
  const events = new EventWebhooks({
    subscriptions: loadSubscriptions(file),
    // Short, so that a redelivery comes within seconds; the 24 h bound is tested in deliver-event.test.ts.
    retry: { initialIntervalMs: 500, maximumIntervalMs: 2000, giveUpAfterMs: 10 * 60_000 },
    requestTimeoutMs: 3000,
  });
  stack = await startApiStack({
    webhookUrl: platform.url,
    events,
    // Its own account: an AuthExpired holds the account's queue.
    extraAccounts: [{ id: 'hook-login', platform: 'webhook', settings: { url: platform.url } }],
  });
}, 120_000);

afterAll(async () => {
  await stack?.close();
  await Promise.all([platform, all, chat, stuck].map((r) => r?.close()));
  delete process.env[SECRET_ENV];
});

const hookBody = (title: string) => ({ platform: 'webhook', accountId: 'hook', video: { path: 'clip.mp4' }, title });

const eventOf = (r: ReceivedRequest) => JSON.parse(r.body!) as PubflowEvent;
/** The requests a receiver got for one event id. */
const deliveriesOf = (receiver: WebhookReceiver, eventId: string) =>
  receiver.requests.filter((r) => r.headers['pubflow-delivery'] === eventId);
const waitForDelivery = (receiver: WebhookReceiver, eventId: string, n = 1) =>
  waitUntil(
    `${n} POST(s) of ${eventId}`,
    () => {
      const got = deliveriesOf(receiver, eventId).filter((r) => r.body !== undefined);
      return got.length >= n ? got : undefined;
    },
    { timeoutMs: 60_000 },
  );
const signed = (r: ReceivedRequest, secret: string) =>
  r.headers['pubflow-signature'] === `sha256=${createHmac('sha256', secret).update(r.body!).digest('hex')}`;

test('a failed webhook publish sends a signed review.opened (JSON and Slack); its retry sends review.decided and task.succeeded', async () => {
  const id = await publish(stack, hookBody('broken title'));
  const failed = await docWhere(stack.redis, id, (d) => d.review?.open === true);

  const [opened] = await waitForDelivery(all, `${id}:review.opened:1`);
  expect(opened!.method).toBe('POST');
  expect(opened!.headers).toMatchObject({
    'content-type': 'application/json',
    'pubflow-event': 'review.opened',
    'pubflow-delivery': `${id}:review.opened:1`,
  });
  expect(signed(opened!, JSON_SECRET)).toBe(true);
  expect(signed(opened!, 'another secret')).toBe(false);
  expect(eventOf(opened!)).toEqual({
    id: `${id}:review.opened:1`,
    type: 'review.opened',
    occurred_at: failed.review!.failed_at,
    data: expect.objectContaining({
      taskId: id,
      taskType: 'publish',
      status: 'failed',
      platform: 'webhook',
      accountId: 'hook',
      errorKind: 'Unconfirmed',
      attempt: 1,
      title: 'broken title',
      review: expect.objectContaining({ kind: 'Unconfirmed', attempt: 1, reason: failed.review!.reason }),
    }),
  });
  // The secret is a header's key, never in the body.
  expect(opened!.body).not.toContain(JSON_SECRET);

  const [slack] = await waitForDelivery(chat, `${id}:review.opened:1`);
  expect(signed(slack!, SLACK_SECRET)).toBe(true);
  const text = (JSON.parse(slack!.body!) as { text: string }).text;
  expect(Object.keys(JSON.parse(slack!.body!) as object)).toEqual(['text']);
  expect(text).toContain(`Review opened: task ${id} (webhook/hook) "broken title" failed with Unconfirmed`);

  // The operator retries with a corrected title (the API's own role check: operator is the least role).
  const retry = await stack
    .api('operator')
    .post(`/api/v1/reviews/${id}/retry`)
    .send({ patch: { title: 'corrected' }, note: 'checked the CMS' });
  expect(retry.status).toBe(200);
  const done = await docWhere(stack.redis, id, (d) => d.status === 'success');

  const [succeeded] = await waitForDelivery(all, `${id}:task.succeeded:2`);
  expect(signed(succeeded!, JSON_SECRET)).toBe(true);
  expect(eventOf(succeeded!)).toMatchObject({
    type: 'task.succeeded',
    occurred_at: done.completed_at,
    data: { taskId: id, status: 'success', attempt: 2, title: 'corrected', result: done.result },
  });
  const [decided] = await waitForDelivery(all, `${id}:review.decided:1`);
  expect(eventOf(decided!).data.review).toMatchObject({ decision: 'retry', note: 'checked the CMS', attempt: 1 });

  // Each event went out once to each subscription that wants it (a document is written many times); chat wants
  // only review.opened. The deliveries ended, on their first attempt.
  for (const eventId of [`${id}:review.opened:1`, `${id}:review.decided:1`, `${id}:task.succeeded:2`])
    expect(deliveriesOf(all, eventId)).toHaveLength(1);
  const toChat = chat.requests.filter((r) => String(r.headers['pubflow-delivery']).startsWith(`${id}:`));
  expect(toChat.map((r) => r.headers['pubflow-event'])).toEqual(['review.opened']);
  const delivery = stack.client.workflow.getHandle(deliveryWorkflowId('all', `${id}:task.succeeded:2`));
  expect(await delivery.result()).toEqual({ outcome: 'delivered', status: 200, attempt: 1 });
});

test('a receiver that answers 500 twice gets the same Pubflow-Delivery, body and signature on each redelivery', async () => {
  const failuresLeft = new Map<string, number>();
  all.behaviour = (r) => {
    const eventId = String(r.headers['pubflow-delivery']);
    if (!eventId.endsWith(':task.succeeded:1')) return { status: 200 };
    const left = failuresLeft.get(eventId) ?? 2;
    failuresLeft.set(eventId, left - 1);
    return left > 0 ? { status: 500 } : { status: 204 };
  };
  try {
    const id = await publish(stack, publishBody());
    await docWhere(stack.redis, id, (d) => d.status === 'success');

    const posts = await waitForDelivery(all, `${id}:task.succeeded:1`, 3);
    expect(posts.map((p) => p.status)).toEqual([500, 500, 204]);
    expect(new Set(posts.map((p) => p.body)).size).toBe(1);
    expect(posts.every((p) => signed(p, JSON_SECRET))).toBe(true);
    const delivery = stack.client.workflow.getHandle(deliveryWorkflowId('all', `${id}:task.succeeded:1`));
    expect(await delivery.result()).toEqual({ outcome: 'delivered', status: 204, attempt: 3 });
  } finally {
    all.behaviour = () => ({ status: 200 });
  }
});

test('receivers that are down or never answer neither slow nor fail the publish; deliveries are not tasks', async () => {
  const id = await publish(stack, publishBody());
  const result = await stack.client.workflow.getHandle(id).result();
  expect(result).toMatchObject({ taskId: id, status: 'success', attempts: 1 });

  // The publish has closed while both of its deliveries are still being tried: one refused, one held open.
  const down = stack.client.workflow.getHandle(deliveryWorkflowId('down', `${id}:task.succeeded:1`));
  const held = stack.client.workflow.getHandle(deliveryWorkflowId('stuck', `${id}:task.succeeded:1`));
  await waitUntil(
    'the refused delivery to be on its second attempt',
    async () => ((await down.describe()).raw.pendingActivities?.[0]?.attempt ?? 0) >= 2,
    { timeoutMs: 30_000 },
  );
  expect((await down.describe()).status.name).toBe('RUNNING');
  await waitForDelivery(stuck, `${id}:task.succeeded:1`);
  expect((await held.describe()).status.name).toBe('RUNNING');
  // The publish's own history has no trace of them: no activity, child or signal for an event.
  const history = await stack.client.workflow.getHandle(id).fetchHistory();
  const activities = new Set<string>();
  const others: string[] = [];
  for (const e of history.events ?? []) {
    const activity = e.activityTaskScheduledEventAttributes?.activityType?.name;
    if (activity) activities.add(activity);
    const child = e.startChildWorkflowExecutionInitiatedEventAttributes?.workflowType?.name;
    if (child) others.push(`child ${child}`);
    const signalled = e.signalExternalWorkflowExecutionInitiatedEventAttributes?.workflowExecution?.workflowId;
    if (signalled && !signalled.startsWith('account-gate-')) others.push(`signal to ${signalled}`);
  }
  expect([...activities]).toEqual(['upload']);
  expect(others).toEqual([]);

  // Not a task: the API does not know it, the reconciler does not list it, Redis has no document for it.
  const missing = await stack.api('viewer').get(`/api/v1/tasks/${encodeURIComponent(down.workflowId)}`);
  expect(missing.status).toBe(404);
  const report = await reconcile({
    client: stack.client,
    store: new ProjectionStore(stack.redis),
    log: createLogger('test-reconcile', { silent: true }),
  });
  expect(report.errors).toBe(0);
  expect(await stack.redis.keys('celery:task:event:*')).toEqual([]);
  const open = stack.client.workflow.list({ query: `WorkflowType = '${WORKFLOW_TYPES.deliverEvent}'` });
  let deliveries = 0;
  for await (const w of open) if (w.workflowId.startsWith('event:')) deliveries++;
  expect(deliveries).toBeGreaterThan(0);
  expect(report.scanned).toBeGreaterThan(0);
  expect(report.changed.written.filter((t) => t.startsWith('event:'))).toEqual([]);
});

test('a batch sends batch.completed with its counts; an AuthExpired upload sends account.needs_login', async () => {
  const res = await stack
    .api('publisher')
    .post('/api/v1/publish/batch')
    .send({
      defaults: { platform: 'scripted', video: { path: 'clip.mp4' } },
      items: [
        { accountId: 'scr-1', title: 'b1' },
        { accountId: 'scr-2', title: 'b2' },
      ],
    });
  expect(res.status).toBe(202);
  const batchId = (res.body as { taskId: string }).taskId;
  const done = await docWhere(stack.redis, batchId, (d) => d.status === 'success', 60_000);
  const [completed] = await waitForDelivery(all, `${batchId}:batch.completed:success-2-0-0`);
  expect(signed(completed!, JSON_SECRET)).toBe(true);
  expect(eventOf(completed!)).toMatchObject({
    type: 'batch.completed',
    occurred_at: done.completed_at,
    data: {
      taskId: batchId,
      taskType: 'batch_publish',
      status: 'success',
      counts: { total: 2, success: 2, failed: 0 },
    },
  });
  // Its children are tasks too: each succeeded, and says which batch it belongs to.
  const [child] = await waitForDelivery(all, `${batchId}-0:task.succeeded:1`);
  expect(eventOf(child!).data).toMatchObject({ parentTaskId: batchId, accountId: 'scr-1' });

  const id = await publish(stack, { ...hookBody('logged out'), accountId: 'hook-login' });
  await docWhere(stack.redis, id, (d) => d.review?.open === true);
  const [login] = await waitForDelivery(all, `${id}:account.needs_login:1`);
  expect(eventOf(login!)).toMatchObject({
    type: 'account.needs_login',
    data: { taskId: id, accountId: 'hook-login', platform: 'webhook', errorKind: 'AuthExpired' },
  });
  // The same moment in the account's gate: the account needs a login (its queue is held).
  await waitUntil(
    'hook-login to need a login',
    async () => {
      const res = await stack.api('viewer').get('/api/v1/accounts');
      const list = ((res.body as { items?: unknown[] }).items ?? res.body) as Array<{ id: string; status?: string }>;
      return list.find((a) => a.id === 'hook-login')?.status === 'needs_login';
    },
    { timeoutMs: 30_000 },
  );
});

test('a delivery given up ends Failed, is listed as such, and the documented reset sends it again', async () => {
  const cli = toolPaths().temporalCli;
  if (!cli) throw new Error('no Temporal CLI in .tools (scripts/provision.sh)');
  let receiverWorks = false;
  all.behaviour = (r) =>
    String(r.headers['pubflow-delivery']).startsWith('manual-') && !receiverWorks ? { status: 503 } : { status: 200 };
  try {
    const event: PubflowEvent = {
      id: `manual-${Date.now()}:review.opened:1`,
      type: 'review.opened',
      occurred_at: new Date().toISOString(),
      data: {
        taskId: 'manual',
        taskType: 'publish',
        status: 'failed',
        platform: 'webhook',
        accountId: 'hook',
        errorKind: 'Unconfirmed',
        errorMessage: null,
        attempt: 1,
        parentTaskId: null,
      },
    };
    const workflowId = deliveryWorkflowId('all', event.id);
    // Started as the projection activities start it, but giving up after 2 s.
    const handle = await stack.client.workflow.start(WORKFLOW_TYPES.deliverEvent, {
      workflowId,
      taskQueue: stack.config.temporal.taskQueue,
      args: [
        {
          subscriptionId: 'all',
          event,
          retry: { initialIntervalMs: 200, maximumIntervalMs: 500, giveUpAfterMs: 2000 },
        },
      ],
    });
    const failure = await handle.result().then(
      () => undefined,
      (e: unknown) => (e as { cause?: { type?: string } }).cause?.type,
    );
    expect(failure).toBe('EventDeliveryGaveUp');
    expect(deliveriesOf(all, event.id).every((r) => r.status === 503)).toBe(true);

    const T = [`--address`, stack.config.temporal.address, '--namespace', stack.config.temporal.namespace];
    // Visibility lags a little behind the close.
    await waitUntil(
      'the given-up delivery to be listed as Failed',
      () => {
        const listed = spawnSync(
          cli,
          ['workflow', 'list', ...T, '--query', `WorkflowType = 'deliverEvent' AND ExecutionStatus = 'Failed'`],
          { encoding: 'utf8' },
        );
        return listed.status === 0 && listed.stdout.includes(workflowId);
      },
      { timeoutMs: 30_000 },
    );

    receiverWorks = true;
    const before = deliveriesOf(all, event.id).length;
    const reset = spawnSync(
      cli,
      [
        'workflow',
        'reset',
        ...T,
        '--workflow-id',
        workflowId,
        '--type',
        'FirstWorkflowTask',
        '--reason',
        'receiver fixed',
      ],
      { encoding: 'utf8' },
    );
    expect(reset.status).toBe(0);
    const again = await waitForDelivery(all, event.id, before + 1);
    expect(again.at(-1)).toMatchObject({ status: 200 });
    expect(new Set(again.map((r) => r.body)).size).toBe(1);
    expect(await stack.client.workflow.getHandle(workflowId).result()).toMatchObject({ outcome: 'delivered' });
  } finally {
    all.behaviour = () => ({ status: 200 });
  }
});
