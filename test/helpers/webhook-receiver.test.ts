import { waitUntil } from './polling';
import { WebhookReceiver } from './webhook-receiver';

let receiver: WebhookReceiver;

afterEach(async () => {
  await receiver?.close();
});

/** A multipart upload as the webhook driver sends it. */
function upload(key: string, o: { title?: string; video?: Buffer; signal?: AbortSignal } = {}) {
  const [taskId, attempt] = key.split(':');
  const form = new FormData();
  form.append(
    'metadata',
    JSON.stringify({ taskId, attempt: Number(attempt), platform: 'webhook', accountId: 'hook-1', title: o.title }),
  );
  form.append('video', new Blob([o.video ?? Buffer.alloc(1000, 7)]), 'clip.mp4');
  return fetch(receiver.url, { method: 'POST', body: form, headers: { 'Idempotency-Key': key }, signal: o.signal });
}

test('records each upload (key, metadata, fields, file sizes) and by default answers 200 with a post', async () => {
  receiver = await WebhookReceiver.start();
  const res = await upload('task-1:2', { title: 'hello', video: Buffer.alloc(4321, 1) });

  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({ postId: 'post-task-1:2', url: 'https://hook.test/task-1/2' });
  const [req, ...more] = receiver.requestsFor('task-1');
  expect(more).toEqual([]);
  expect(req).toMatchObject({
    method: 'POST',
    key: 'task-1:2',
    taskId: 'task-1',
    attempt: 2,
    accountId: 'hook-1',
    title: 'hello',
    metadata: { taskId: 'task-1', attempt: 2, accountId: 'hook-1', title: 'hello' },
    files: { video: { filename: 'clip.mp4', size: 4321 } },
    status: 200,
  });
  expect(req!.files.video!.data).toBeUndefined(); // counted, not kept
  expect(req!.bodyBytes).toBeGreaterThan(4321);
});

test('keepFileData keeps the bytes of each file part', async () => {
  receiver = await WebhookReceiver.start({ keepFileData: true });
  const video = Buffer.from('not really a video');
  await upload('t:1', { video });
  expect(receiver.requests[0]!.files.video!.data).toEqual(video);
});

test('a behaviour answers per request: a status with a JSON or raw body and headers', async () => {
  receiver = await WebhookReceiver.start();
  receiver.behaviour = (r) =>
    r.title === 'raw'
      ? { status: 429, body: 'slow down', headers: { 'Retry-After': '120' } }
      : { status: 500, body: { error: 'cms exploded' } };

  const raw = await upload('a:1', { title: 'raw' });
  expect([raw.status, raw.headers.get('retry-after'), await raw.text()]).toEqual([429, '120', 'slow down']);
  const json = await upload('b:1', { title: 'json' });
  expect([json.status, json.headers.get('content-type'), await json.json()]).toEqual([
    500,
    'application/json',
    { error: 'cms exploded' },
  ]);
});

test("'hold' keeps a request in flight until release() answers it", async () => {
  receiver = await WebhookReceiver.start();
  receiver.behaviour = (r) => (r.title === 'held' ? 'hold' : { status: 200 });

  const held = upload('held:1', { title: 'held' });
  await waitUntil('the held upload to be in', () => receiver.inFlight().length === 1);
  // A later request is answered while the first is held: the hold is per request.
  expect((await upload('other:1')).status).toBe(200);
  expect(receiver.inFlight().map((r) => r.key)).toEqual(['held:1']);

  expect(receiver.release((r) => r.taskId === 'nobody')).toBe(0);
  expect(receiver.release()).toBe(1);
  expect((await held).status).toBe(200);
  expect(receiver.inFlight()).toEqual([]);
});

test("'hang' never answers, and a client that gives up is recorded as aborted", async () => {
  receiver = await WebhookReceiver.start();
  receiver.behaviour = () => 'hang';
  const controller = new AbortController();

  const sent = upload('slow:1', { signal: controller.signal }).catch((e: Error) => e);
  const [req] = await waitUntil('the whole upload at the receiver', () =>
    receiver.requests[0]?.bodyAt !== undefined ? receiver.requests : undefined,
  );
  expect(req!.abortedAt).toBeUndefined();
  controller.abort();

  expect(((await sent) as Error).name).toBe('AbortError');
  await waitUntil('the receiver to see the connection close', () => req!.abortedAt !== undefined);
  expect(req!.status).toBeUndefined();
});

test('duplicateKeys() lists an attempt sent twice, and only that one', async () => {
  receiver = await WebhookReceiver.start();
  await upload('t:1');
  await upload('t:2');
  await upload('t:2');
  expect(receiver.duplicateKeys()).toEqual(['t:2']);
  expect(receiver.requestsFor('t')).toHaveLength(3);
});
