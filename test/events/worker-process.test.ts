/**
 * Event webhooks in the built worker process (`node lib/worker.js`, configured by env only, as `make up` runs it):
 * a delivery under way survives a `kill -9` of the worker and arrives, once delivered, when a worker is back.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { deliveryWorkflowId } from '../../src/events/types';
import { WebhookReceiver } from '../helpers/webhook-receiver';
import {
  publishRequest,
  requireBuiltLib,
  startSingle,
  useFaultStack,
  type FaultStack,
} from '../integration/fault-helpers';

let stack: FaultStack;
let events: WebhookReceiver;
let eventsFile: string;
const SECRET = 'process-events-secret';

beforeAll(async () => {
  requireBuiltLib();
  events = await WebhookReceiver.start();
});
afterAll(async () => {
  await events?.close();
});

useFaultStack({ name: 'events', accounts: 1 }, (s) => {
  stack = s;
  eventsFile = path.join(s.dir, 'events.json');
  writeFileSync(
    eventsFile,
    JSON.stringify([{ id: 'ops', url: events.url, secret: { env: 'OPS_EVENTS_SECRET' }, events: ['task.succeeded'] }]),
  );
});

test('a worker killed while an event is being retried loses nothing: the next worker delivers it, signed', async () => {
  const env = {
    PUBFLOW_EVENTS_FILE: eventsFile,
    OPS_EVENTS_SECRET: SECRET,
    PUBFLOW_EVENTS_RETRY_INITIAL: '1s',
    PUBFLOW_EVENTS_RETRY_MAX_INTERVAL: '2s',
  };
  let receiverWorks = false;
  events.behaviour = () => (receiverWorks ? { status: 200 } : { status: 503 });
  const first = await stack.startWorker('worker-1', env);

  const taskId = `events-${randomUUID()}`;
  const handle = await startSingle(stack, {
    taskQueue: stack.taskQueue,
    request: publishRequest(stack, 0),
    workflowId: taskId,
  });
  expect((await handle.result()).status).toBe('success');
  const eventId = `${taskId}:task.succeeded:1`;
  const mine = () => events.requests.filter((r) => r.headers['pubflow-delivery'] === eventId && r.body !== undefined);
  await stack.waitUntil('two failed POSTs of the event', () => mine().length >= 2);

  first.signal('SIGKILL');
  await first.exited;
  receiverWorks = true;
  await stack.startWorker('worker-2', env);

  const delivery = stack.client.workflow.getHandle(deliveryWorkflowId('ops', eventId));
  expect(await delivery.result()).toMatchObject({ outcome: 'delivered', status: 200 });
  const posts = mine();
  expect(posts.at(-1)!.status).toBe(200);
  expect(posts.filter((p) => p.status === 200)).toHaveLength(1);
  expect(new Set(posts.map((p) => p.body)).size).toBe(1);
  const expected = `sha256=${createHmac('sha256', SECRET).update(posts[0]!.body!).digest('hex')}`;
  expect(posts.every((p) => p.headers['pubflow-signature'] === expected)).toBe(true);
}, 180_000);
