import Redis from 'ioredis';
import { taskKey } from '../../src/projection/keys';
import { ProjectionStore } from '../../src/projection/store';
import { TaskStateManager } from '../../src/projection/task-state-manager';
import type { TaskDoc } from '../../src/shared/types';
import { startRedis, type RedisServer } from '../helpers/servers';
import { at, makeDoc, makeReview, uniqueId } from './fixtures';

// One Redis for this file, seeded once: the unfiltered lists and the stats count everything in it.
let server: RedisServer;
let redis: Redis;
let tsm: TaskStateManager;

const batch = uniqueId('batch');
const otherBatch = uniqueId('batch');

// A batch and its six children (created t1..t6), two standalone tasks, and one whose document has expired.
const docs = {
  batch: makeDoc({ task_id: batch, task_type: 'batch_publish', status: 'running', platform: null, account_id: null }),
  c1: makeDoc({ parent_task_id: batch, created_at: at(1), status: 'success', updated_at: at(60) }),
  c2: makeDoc({
    parent_task_id: batch,
    created_at: at(2),
    status: 'failed',
    updated_at: at(50),
    platform: 'p1',
    account_id: 'a1',
    review: makeReview({ kind: 'AuthExpired', failed_at: at(50) }),
  }),
  c3: makeDoc({ parent_task_id: batch, created_at: at(3), status: 'running', updated_at: at(30) }),
  c4: makeDoc({ parent_task_id: batch, created_at: at(4), status: 'pending', updated_at: at(4) }),
  c5: makeDoc({
    parent_task_id: batch,
    created_at: at(5),
    status: 'failed',
    updated_at: at(40),
    platform: 'p2',
    account_id: 'a2',
    review: makeReview({ kind: 'RateLimited', failed_at: at(51) }),
  }),
  c6: makeDoc({ parent_task_id: batch, created_at: at(6), status: 'success', updated_at: at(45) }),
  s1: makeDoc({
    created_at: at(7),
    status: 'failed',
    updated_at: at(52),
    platform: 'p1',
    account_id: 'a1',
    review: makeReview({ kind: 'RateLimited', failed_at: at(52) }),
  }),
  s2: makeDoc({ created_at: at(8), status: 'cancelled', updated_at: at(9) }),
  expired: makeDoc({
    parent_task_id: otherBatch,
    created_at: at(9),
    status: 'failed',
    updated_at: at(70),
    platform: 'p1',
    account_id: 'a1',
    review: makeReview({ kind: 'RateLimited', failed_at: at(70) }),
  }),
} satisfies Record<string, TaskDoc>;

const ids = (items: TaskDoc[]): string[] => items.map((d) => d.task_id);
const idOf = (...names: (keyof typeof docs)[]): string[] => names.map((n) => docs[n].task_id);

beforeAll(async () => {
  server = await startRedis();
  redis = new Redis(server.url);
  tsm = new TaskStateManager(redis);
  const store = new ProjectionStore(redis);
  for (const doc of Object.values(docs)) await store.write(doc);
  // Expired: the document is gone but, until the next prune, its index entries remain.
  await redis.del(taskKey(docs.expired.task_id));
});

afterAll(async () => {
  await redis.quit();
  await server.destroy();
});

describe('TaskStateManager: one task', () => {
  test('getRaw returns the very bytes redis-cli GET shows, and getTaskState the parsed document', async () => {
    expect(await tsm.getRaw(docs.c2.task_id)).toBe(await redis.get(taskKey(docs.c2.task_id)));
    expect(await tsm.getRaw(docs.c2.task_id)).toBe(JSON.stringify(docs.c2));
    expect(await tsm.getTaskState(docs.c2.task_id)).toEqual(docs.c2);
  });

  test('a missing or expired task is null', async () => {
    expect(await tsm.getTaskState(uniqueId())).toBeNull();
    expect(await tsm.getRaw(docs.expired.task_id)).toBeNull();
  });
});

describe('TaskStateManager.listTasks', () => {
  test('the children of a batch, newest (created) first', async () => {
    const page = await tsm.listTasks({ parent: batch });

    expect(ids(page.items)).toEqual(idOf('c6', 'c5', 'c4', 'c3', 'c2', 'c1'));
    expect(page.total).toBe(6);
    expect(page.items[0]).toEqual(docs.c6);
  });

  test('by status, the most recently changed first', async () => {
    const page = await tsm.listTasks({ status: 'success' });

    expect(ids(page.items)).toEqual(idOf('c1', 'c6'));
    expect(page.total).toBe(2);
  });

  test('filters combine: status and parent, status and type, all three', async () => {
    expect(ids((await tsm.listTasks({ status: 'failed', parent: batch })).items)).toEqual(idOf('c2', 'c5'));
    expect(ids((await tsm.listTasks({ status: 'running', type: 'batch_publish' })).items)).toEqual(idOf('batch'));
    expect(ids((await tsm.listTasks({ status: 'success', type: 'publish', parent: batch })).items)).toEqual(
      idOf('c1', 'c6'),
    );
    expect(await tsm.listTasks({ status: 'pending', type: 'batch_publish' })).toEqual({ items: [], total: 0 });
    expect(await tsm.listTasks({ parent: uniqueId('nobody') })).toEqual({ items: [], total: 0 });
  });

  test('an expired document is skipped from the items; the total counts index members', async () => {
    const page = await tsm.listTasks({ status: 'failed' });

    expect(ids(page.items)).toEqual(idOf('s1', 'c2', 'c5'));
    expect(page.total).toBe(4);
  });

  test('pages do not overlap and together give the whole list', async () => {
    const pages = await Promise.all([0, 2, 4].map((offset) => tsm.listTasks({ parent: batch, limit: 2, offset })));

    expect(pages.map((p) => ids(p.items))).toEqual([idOf('c6', 'c5'), idOf('c4', 'c3'), idOf('c2', 'c1')]);
    expect(pages.every((p) => p.total === 6)).toBe(true);
    expect((await tsm.listTasks({ parent: batch, offset: 6 })).items).toEqual([]);
    expect(await tsm.listTasks({ parent: batch, limit: 0 })).toEqual({ items: [], total: 6 });
  });

  test('with no filter: every task of every type, newest first, also across pages', async () => {
    const all = await tsm.listTasks();

    // The batch was created at t0, the expired task at t9 (skipped).
    expect(ids(all.items)).toEqual(idOf('s2', 's1', 'c6', 'c5', 'c4', 'c3', 'c2', 'c1', 'batch'));
    expect(all.total).toBe(10);
    const paged: string[] = [];
    for (let offset = 0; offset < 10; offset += 3)
      paged.push(...ids((await tsm.listTasks({ limit: 3, offset })).items));
    expect(paged).toEqual(ids(all.items));
    expect(await tsm.listTasks({ limit: 0 })).toEqual({ items: [], total: 10 });
  });

  test('a negative or fractional limit or offset is refused', async () => {
    await expect(tsm.listTasks({ limit: -1 })).rejects.toThrow(RangeError);
    await expect(tsm.listTasks({ offset: 1.5 })).rejects.toThrow(RangeError);
  });

  test('leaves no scratch keys behind', async () => {
    await tsm.listTasks({ status: 'failed', parent: batch });
    await tsm.listReviews({ platform: 'p1', kind: 'RateLimited' });

    expect(await redis.keys('pubflow:tmp:*')).toEqual([]); // KEYS only here, on the test's own server
  });
});

describe('TaskStateManager.getQueueStats', () => {
  test('the size of each status index, and their sum', async () => {
    expect(await tsm.getQueueStats()).toEqual({
      pending: 1,
      running: 2,
      success: 2,
      failed: 4,
      retry: 0,
      cancelled: 1,
      total: 10,
    });
  });
});

describe('TaskStateManager reviews', () => {
  test('all open reviews, the most recently failed first', async () => {
    const page = await tsm.listReviews();

    expect(ids(page.items)).toEqual(idOf('s1', 'c5', 'c2'));
    expect(page.total).toBe(4);
  });

  test('filters by platform, account, kind and batch, alone and together', async () => {
    const reviewIds = async (f: Parameters<TaskStateManager['listReviews']>[0]) =>
      ids((await tsm.listReviews(f)).items);

    expect(await reviewIds({ platform: 'p1' })).toEqual(idOf('s1', 'c2'));
    expect(await reviewIds({ accountId: 'a2' })).toEqual(idOf('c5'));
    expect(await reviewIds({ kind: 'RateLimited' })).toEqual(idOf('s1', 'c5'));
    expect(await reviewIds({ batchId: batch })).toEqual(idOf('c5', 'c2'));
    expect(await reviewIds({ platform: 'p1', kind: 'RateLimited' })).toEqual(idOf('s1'));
    expect(await reviewIds({ platform: 'p1', batchId: batch, accountId: 'a1', kind: 'AuthExpired' })).toEqual(
      idOf('c2'),
    );
    expect(await reviewIds({ platform: 'p2', accountId: 'a1' })).toEqual([]);
  });

  test('pages through open reviews', async () => {
    const first = await tsm.listReviews({ limit: 2 });
    const second = await tsm.listReviews({ limit: 2, offset: 2 });

    // The expired review is the newest index member: it takes a slot on the first page without appearing.
    expect(ids(first.items)).toEqual(idOf('s1'));
    expect(ids(second.items)).toEqual(idOf('c5', 'c2'));
    expect(second.total).toBe(4);
  });

  test('listReviewTaskIds returns every matching live id, for a bulk retry', async () => {
    expect(await tsm.listReviewTaskIds()).toEqual(idOf('s1', 'c5', 'c2'));
    expect(await tsm.listReviewTaskIds({ platform: 'p1' })).toEqual(idOf('s1', 'c2'));
    expect(await tsm.listReviewTaskIds({ batchId: otherBatch })).toEqual([]);
  });
});
