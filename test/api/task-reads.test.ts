/**
 * GET /api/v1/tasks with the scan filters (platform, account, time range, search) and GET /api/v1/tasks/:id/timeline,
 * on the real stack: a dev server, redis-server, the worker and a webhook receiver that fails the first upload.
 */
import type { Timeline, TimelineEntry } from '../../src/service/timeline';
import type { TaskDoc } from '../../src/shared/types';
import type { WebhookReceiver } from '../helpers/webhook-receiver';
import { docWhere, publish, publishBody, type ApiStack, useApiStack } from './fixtures';

let stack: ApiStack;
let receiver: WebhookReceiver;
useApiStack((s, r) => {
  stack = s;
  receiver = r;
});

interface ListBody {
  items: TaskDoc[];
  total: number | null;
  next: string | null;
  scanned?: number;
}

async function list(query: Record<string, string | number>): Promise<ListBody> {
  const res = await stack.api('viewer').get('/api/v1/tasks').query(query);
  expect(res.status).toBe(200);
  return res.body as ListBody;
}

const ids = (b: ListBody): string[] => b.items.map((d) => d.task_id);

describe('GET /tasks filters', () => {
  let hookId: string;
  let scriptedIds: string[];
  let before: string;
  let between: string;

  beforeAll(async () => {
    before = new Date(Date.now() - 1000).toISOString();
    scriptedIds = [];
    for (let i = 0; i < 3; i++) scriptedIds.push(await publish(stack, publishBody({ title: `Scripted Launch ${i}` })));
    await new Promise((r) => setTimeout(r, 30)); // distinct created_at from the one below
    between = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 30));
    hookId = await publish(stack, publishBody({ platform: 'webhook', accountId: 'hook', title: 'Hooked launch' }));
    for (const id of [...scriptedIds, hookId]) await docWhere(stack.redis, id, (d) => d.status === 'success');
  });

  test('platform and account: only their tasks, newest first; total null and a scanned count', async () => {
    const byPlatform = await list({ platform: 'webhook' });
    expect(ids(byPlatform)).toEqual([hookId]);
    expect(byPlatform.total).toBeNull();
    expect(byPlatform.next).toBeNull();
    expect(byPlatform.scanned).toBeGreaterThanOrEqual(4);
    const byAccount = await list({ accountId: 'scr-1', status: 'success' });
    expect(ids(byAccount)).toEqual([...scriptedIds].reverse());
  });

  test('a time range; a search by part of a title (any case) and by exact id', async () => {
    expect(ids(await list({ since: between }))).toEqual([hookId]);
    expect(ids(await list({ since: before, until: between }))).toEqual([...scriptedIds].reverse());
    expect(ids(await list({ search: 'scripted launch 1' }))).toEqual([scriptedIds[1]]);
    expect(ids(await list({ search: hookId }))).toEqual([hookId]);
  });

  test('paged by cursor: two pages of two hold the four tasks once each', async () => {
    const first = await list({ since: before, limit: 2 });
    expect(first.items).toHaveLength(2);
    expect(first.next).toEqual(expect.any(String));
    const second = await list({ since: before, limit: 2, cursor: first.next ?? '' });
    expect([...ids(first), ...ids(second)]).toEqual([hookId, ...[...scriptedIds].reverse()]);
  });

  test('index filters alone keep their exact total', async () => {
    const page = await list({ status: 'success', limit: 1 });
    expect(page.total).toBeGreaterThanOrEqual(4);
    expect(page.next).toBeNull();
  });

  test('bad values are a 400 naming the parameter', async () => {
    const cases: Array<[Record<string, string>, string]> = [
      [{ since: 'yesterday' }, 'query.since'],
      [{ since: between, until: before }, 'query.until'],
      [{ platform: 'webhook', offset: '5' }, 'query.offset'],
      [{ cursor: 'bm90IGEgY3Vyc29y' }, 'query.cursor'],
      [{ time: 'deleted' }, 'query.time'],
      [{ search: '' }, 'query.search'],
    ];
    for (const [query, field] of cases) {
      const res = await stack.api('viewer').get('/api/v1/tasks').query(query);
      expect({ query, status: res.status, field: (res.body as { error: { message: string } }).error.message }).toEqual({
        query,
        status: 400,
        field: expect.stringMatching(new RegExp(`^${field.replace('.', '\\.')}:`)),
      });
    }
  });
});

describe('GET /tasks/:id/timeline', () => {
  test('a failed webhook upload, a retry with a corrected title, success: every attempt and who decided', async () => {
    // The receiver answers the first upload with a 500 (the post may exist: Unconfirmed), the second with 200.
    receiver.behaviour = (r) =>
      r.attempt === 1 ? { status: 500, body: 'cms exploded: upstream 503' } : { status: 200 };
    try {
      const id = await publish(stack, publishBody({ platform: 'webhook', accountId: 'hook', title: 'first title' }));
      await docWhere(stack.redis, id, (d) => d.review?.open === true);
      const retry = await stack
        .api('operator')
        .post(`/api/v1/reviews/${id}/retry`)
        .send({ patch: { title: 'corrected title' }, note: 'checked the CMS: no post' });
      expect(retry.status).toBe(200);
      await docWhere(stack.redis, id, (d) => d.status === 'success');
      await stack.client.workflow.getHandle(id).result();

      const res = await stack.api('viewer').get(`/api/v1/tasks/${id}/timeline`);
      expect(res.status).toBe(200);
      const t = res.body as Timeline;
      expect(t).toMatchObject({ taskId: id, fromHistory: true, runId: expect.any(String) });
      const shape = t.entries.map((e: TimelineEntry) => e.type);
      expect(shape).toEqual(['attempt', 'review_opened', 'review_closed', 'attempt', 'finished']);
      const [first, opened, closed, second, finished] = t.entries as [
        TimelineEntry,
        TimelineEntry,
        TimelineEntry,
        TimelineEntry,
        TimelineEntry,
      ];
      expect(first).toMatchObject({
        attempt: 1,
        title: 'first title',
        outcome: 'failed',
        error_kind: 'Unconfirmed',
        message: expect.stringContaining('500'),
        evidence: null, // the webhook driver keeps none for a 500; see the next test
      });
      expect(opened).toMatchObject({ attempt: 1, error_kind: 'Unconfirmed' });
      expect(closed).toMatchObject({
        attempt: 1,
        action: 'retry',
        by: 'test-operator',
        role: 'operator',
        note: 'checked the CMS: no post',
        patched: ['title'],
      });
      expect(second).toMatchObject({ attempt: 2, title: 'corrected title', outcome: 'success', error_kind: null });
      expect(second.url).toEqual(expect.any(String));
      expect(finished).toMatchObject({ status: 'success' });
      for (const e of [first, second]) expect(Date.parse(e.ended_at ?? '')).toBeGreaterThan(Date.parse(e.at) - 1);
    } finally {
      receiver.behaviour = () => ({ status: 200 });
    }
  });

  test("an attempt's evidence is the failure's details, as the driver gave it", async () => {
    const id = await publish(stack, publishBody({ options: { behave: 'verify-first' } }));
    await docWhere(stack.redis, id, (d) => d.review?.open === true);
    const t = (await stack.api('viewer').get(`/api/v1/tasks/${id}/timeline`)).body as Timeline;
    expect(t.entries.map((e) => e.type)).toEqual(['attempt', 'review_opened']);
    expect(t.entries[0]).toMatchObject({
      outcome: 'failed',
      error_kind: 'VerificationRequired',
      message: 'the platform asks for a code',
      evidence: 'captcha page: <form id="verify">',
    });
    expect((await stack.api('operator').post(`/api/v1/reviews/${id}/discard`).send({ note: 'spam' })).status).toBe(200);
    await docWhere(stack.redis, id, (d) => d.review?.open === false);
    await stack.client.workflow.getHandle(id).result();
    const after = (await stack.api('viewer').get(`/api/v1/tasks/${id}/timeline`)).body as Timeline;
    expect(after.entries.map((e) => e.type)).toEqual(['attempt', 'review_opened', 'review_closed', 'finished']);
    expect(after.entries[2]).toMatchObject({ action: 'discard', by: 'test-operator', note: 'spam' });
  });

  test('a history whose first page is over 4 MiB still reads', async () => {
    // A batch's run holds its items twice (its input and its continue-as-new, up to 1.8 MB each) beside a thousand
    // child starts: 5.1 MB in one page in a batch-10k run. Three 1.5 MB signals the workflow has no handler for (the
    // SDK buffers and drops them) give one single task a page that size without a 10,000-item batch.
    const id = await publish(stack, publishBody({ options: { behave: 'verify-first' } }));
    await docWhere(stack.redis, id, (d) => d.review?.open === true);
    const handle = stack.client.workflow.getHandle(id);
    for (let i = 0; i < 3; i++) await handle.signal('test.ballast', 'x'.repeat(1_500_000));
    const res = await stack.api('viewer').get(`/api/v1/tasks/${id}/timeline`);
    expect(res.status).toBe(200);
    expect((res.body as Timeline).entries.map((e) => e.type)).toEqual(['attempt', 'review_opened']);
    // The worker reads that history too: the review still takes a decision and the task finishes.
    expect((await stack.api('operator').post(`/api/v1/reviews/${id}/discard`).send({})).status).toBe(200);
    await handle.result();
  });

  test('an unknown task is a 404; an internal workflow is not a task', async () => {
    expect((await stack.api('viewer').get('/api/v1/tasks/no-such-task/timeline')).status).toBe(404);
  });
});
