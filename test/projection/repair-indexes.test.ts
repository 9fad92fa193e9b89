/** ProjectionStore.repairIndexes: the reconciler's index pass, prune plus "does this member belong here?". */
import type Redis from 'ioredis';
import {
  parentIndex,
  reviewAccountIndex,
  reviewOpenIndex,
  statusIndex,
  taskKey,
  typeIndex,
} from '../../src/projection/keys';
import type { ProjectionStore } from '../../src/projection/store';
import { indexesOf, makeDoc, makeReview, uniqueId, startProjectionRedis } from './fixtures';
import { perFile } from '../helpers/harness';

// Its own Redis, so the counts are exactly this file's.
let redis: Redis;
let store: ProjectionStore;
perFile(startProjectionRedis, (p) => ({ redis, store } = p));

beforeEach(async () => {
  await redis.flushdb(); // our own server (startRedis above), never a shared one
});

describe('ProjectionStore.repairIndexes', () => {
  test('removes members without a document and members their document does not belong to; keeps the rest', async () => {
    const batchId = uniqueId('batch');
    const inReview = makeDoc({ status: 'failed', parent_task_id: batchId, review: makeReview() });
    const done = makeDoc({ status: 'success', account_id: 'acc-9' });
    const gone = makeDoc({ status: 'success' });
    for (const d of [inReview, done, gone]) await store.write(d);
    const before = await indexesOf(redis, inReview.task_id);
    await redis.del(taskKey(gone.task_id));
    // Entries no write would leave: a status the task has left, a review it never had.
    await redis.zadd(statusIndex('running'), 1, done.task_id);
    await redis.zadd(reviewOpenIndex(), 1, done.task_id);
    await redis.zadd(reviewAccountIndex('acc-9'), 1, done.task_id);
    await redis.zadd(parentIndex('some-batch'), 1, done.task_id);

    const result = await store.repairIndexes({ batchSize: 2 });

    expect(result.removed).toBe(2 + 4); // gone: status + type; done: the four planted entries
    expect(await indexesOf(redis, done.task_id)).toEqual([statusIndex('success'), typeIndex('publish')].sort());
    expect(await indexesOf(redis, inReview.task_id)).toEqual(before);
    expect(await indexesOf(redis, gone.task_id)).toEqual([]);
  });

  test('a closed review leaves no review index entries behind', async () => {
    const open = makeDoc({ status: 'failed', review: makeReview() });
    await store.write(open);
    // As if the closing write had been applied to the document only.
    const closed = { ...open, version: 2, review: { ...open.review!, open: false } };
    await redis.set(taskKey(open.task_id), JSON.stringify(closed));

    await store.repairIndexes();

    expect(await indexesOf(redis, open.task_id)).toEqual([statusIndex('failed'), typeIndex('publish')].sort());
  });

  test('an unreadable document loses its index entries; keys that are not sorted sets are ignored', async () => {
    const doc = makeDoc();
    await store.write(doc);
    await redis.set(taskKey(doc.task_id), 'not json');
    await redis.set('celery:index:not-a-zset', 'x');

    await store.repairIndexes();

    expect(await indexesOf(redis, doc.task_id)).toEqual([]);
    expect(await redis.get('celery:index:not-a-zset')).toBe('x');
  });
});
