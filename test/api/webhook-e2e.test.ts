/**
 * The "Done when", end to end: the HTTP API, a real Temporal dev server, a real redis-server, the real
 * worker and the real webhook driver posting to an HTTP endpoint on 127.0.0.1 whose answers the test controls.
 * What an operator would see with curl and redis-cli, the test reads through supertest and a Redis client.
 */
import type { TaskDoc, TaskStatus } from '../../src/shared/types';
import { waitUntil } from '../helpers/polling';
import { docWhere, publish, startApiStack, WEBHOOK_SECRET, type ApiStack } from './fixtures';
import { RedisMonitor } from './redis-monitor';
import { WebhookReceiver } from '../helpers/webhook-receiver';

let stack: ApiStack;
let receiver: WebhookReceiver;
let monitor: RedisMonitor;
/** Every document Redis stored at celery:task:<id>, in order, as MONITOR saw the SETs (script-issued ones too). */
const writes = new Map<string, TaskDoc[]>();
/** Set if any command sent to Redis, by anyone, carried the webhook credential. */
let secretSentToRedis = false;

beforeAll(async () => {
  receiver = await WebhookReceiver.start();
  // The endpoint's behaviour is chosen by the title, so each task is independent of the others.
  receiver.behaviour = (req) => {
    if (req.title?.startsWith('broken')) return { status: 500, body: { error: 'cms exploded' } };
    if (req.title?.startsWith('slow')) return 'hang';
    return {
      status: 200,
      body: {
        postId: `cms-${req.metadata.taskId}-${req.metadata.attempt}`,
        url: `https://cms.test/p/${req.metadata.taskId}`,
      },
    };
  };
  stack = await startApiStack({ webhookUrl: receiver.url });
  monitor = await RedisMonitor.start(Number(new URL(stack.config.redisUrl).port));
  monitor.onCommand((args) => {
    if (args.some((a) => a.includes('s3cret'))) secretSentToRedis = true;
    const [cmd, key, value] = args;
    if (cmd?.toUpperCase() !== 'SET' || !key?.startsWith('celery:task:') || value === undefined) return;
    const id = key.slice('celery:task:'.length);
    writes.set(id, [...(writes.get(id) ?? []), JSON.parse(value) as TaskDoc]);
  });
});

afterAll(async () => {
  monitor?.close();
  await stack?.close();
  await receiver?.close();
});

const api = () => stack.api();
const hookBody = (title: string) => ({
  platform: 'webhook',
  accountId: 'hook',
  video: { path: 'clip.mp4' },
  cover: { path: 'cover.jpg' },
  title,
  tags: ['e2e'],
});
/** The statuses Redis held for a task, in order, without repeats (progress writes keep the status). */
const statusesOf = (id: string): TaskStatus[] =>
  (writes.get(id) ?? []).map((d) => d.status).filter((s, i, all) => i === 0 || all[i - 1] !== s);

test('1-2. a publish goes pending -> running -> success in Redis, and is counted in ZCARD and /tasks/stats', async () => {
  const id = await publish(stack, hookBody('hello world'));

  const done = await docWhere(stack.redis, id, (d) => d.status === 'success');
  expect(done.result).toEqual({ postId: `cms-${id}-1`, url: `https://cms.test/p/${id}` });
  await waitUntil(`MONITOR to see ${id} stored as success`, async () => statusesOf(id).at(-1) === 'success');
  expect(statusesOf(id)).toEqual(['pending', 'running', 'success']);

  // The one request: multipart with the metadata, both files, the account's headers and the idempotency key.
  const [req, ...more] = receiver.requestsFor(id);
  expect(more).toHaveLength(0);
  expect(req).toMatchObject({
    method: 'POST',
    key: `${id}:1`,
    metadata: { taskId: id, attempt: 1, platform: 'webhook', accountId: 'hook', title: 'hello world', tags: ['e2e'] },
    files: { video: { size: 64 * 1024 }, cover: { size: 2048 } },
    status: 200,
  });
  expect(req?.headers.authorization).toBe(WEBHOOK_SECRET);
  expect(req?.headers['x-tenant']).toBe('brand-a');
  // The credential went to the endpoint only: not into any document Redis ever held, nor the API's answers.
  expect(JSON.stringify(writes.get(id))).not.toContain('s3cret');
  expect(secretSentToRedis).toBe(false);
  expect(monitor.errors).toEqual([]);
  const got = await api().get(`/api/v1/tasks/${id}`);
  expect(got.text).not.toContain('s3cret');

  const zcard = await stack.redis.zcard('celery:index:status:success');
  expect(await stack.redis.zscore('celery:index:status:success', id)).not.toBeNull();
  const stats = await api().get('/api/v1/tasks/stats');
  expect(stats.status).toBe(200);
  expect(stats.body).toMatchObject({ success: zcard });
  expect(stats.body.success).toBeGreaterThanOrEqual(1);
});

test('3-4. an endpoint 500 lands in review; a retry with a corrected title succeeds, with one request per attempt', async () => {
  const id = await publish(stack, hookBody('broken title'));

  const failed = await docWhere(stack.redis, id, (d) => d.review?.open === true);
  expect(failed.status).toBe('failed');
  expect(failed.review).toMatchObject({ kind: 'Unconfirmed', attempt: 1, open: true });
  expect(failed.review?.message).toMatch(/HTTP 500/);
  const reviews = await api().get('/api/v1/reviews').query({ platform: 'webhook', kind: 'Unconfirmed' });
  expect(reviews.status).toBe(200);
  expect((reviews.body.items as TaskDoc[]).map((d) => d.task_id)).toContain(id);
  // Unconfirmed is never retried without a person.
  expect(receiver.requestsFor(id)).toHaveLength(1);

  const retry = await api()
    .post(`/api/v1/reviews/${id}/retry`)
    .send({ patch: { title: 'corrected title' }, note: 'checked the CMS: not there' });
  expect(retry.status).toBe(200);

  const done = await docWhere(stack.redis, id, (d) => d.status === 'success');
  expect(done).toMatchObject({ retry_count: 1, attempt: 2, result: { postId: `cms-${id}-2` } });
  // After the retry the task is pending again while it waits for its account's turn.
  await waitUntil(`MONITOR to see ${id} stored as success`, async () => statusesOf(id).at(-1) === 'success');
  expect(statusesOf(id)).toEqual(['pending', 'running', 'failed', 'pending', 'running', 'success']);

  const requests = receiver.requestsFor(id);
  expect(requests.map((r) => [r.key, r.metadata.attempt, r.metadata.title, r.status])).toEqual([
    [`${id}:1`, 1, 'broken title', 500],
    [`${id}:2`, 2, 'corrected title', 200],
  ]);
  expect(new Set(requests.map((r) => r.key)).size).toBe(2);
  expect(monitor.errors).toEqual([]); // the review message quotes the endpoint's JSON: MONITOR decoding copes
  const after = await api().get('/api/v1/reviews').query({ platform: 'webhook' });
  expect((after.body.items as TaskDoc[]).map((d) => d.task_id)).not.toContain(id);
});

test('5. cancelling a publish whose endpoint is slow aborts the request and ends cancelled', async () => {
  const id = await publish(stack, hookBody('slow upload'));
  // The whole upload has arrived; the endpoint is sitting on its answer.
  const [req] = await waitUntil(`the whole upload of ${id} at the receiver`, async () => {
    const r = receiver.requestsFor(id);
    return r.length > 0 && r[0]!.bodyAt !== undefined ? r : undefined;
  });
  expect(req?.abortedAt).toBeUndefined();
  await docWhere(stack.redis, id, (d) => d.status === 'running');

  const res = await api().post(`/api/v1/tasks/${id}/cancel`);
  expect(res.status).toBe(200);
  expect(res.body).toEqual({ taskId: id, status: 'cancelled' });
  // The workflow waited for the upload to finish cancelling: the driver has dropped the connection.
  await waitUntil('the driver to drop the connection', async () => req?.abortedAt !== undefined, { timeoutMs: 2000 });
  expect(receiver.requestsFor(id)).toHaveLength(1);

  const d = await docWhere(stack.redis, id, (x) => x.status === 'cancelled');
  expect(d.completed_at).not.toBeNull();
  expect(await stack.redis.zscore('celery:index:status:cancelled', id)).not.toBeNull();
  expect(await stack.redis.zscore('celery:index:status:running', id)).toBeNull();
  expect(statusesOf(id)).toEqual(['pending', 'running', 'cancelled']);
});
