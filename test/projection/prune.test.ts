import type Redis from 'ioredis';
import { parentIndex, reviewOpenIndex, statusIndex, taskKey, typeIndex } from '../../src/projection/keys';
import { ProjectionStore } from '../../src/projection/store';
import { indexesOf, makeDoc, makeReview, uniqueId, startProjectionRedis } from './fixtures';
import { perFile } from '../helpers/harness';

// Its own Redis, so the counts prune reports are exactly this file's.
let redis: Redis;
let store: ProjectionStore;
perFile(startProjectionRedis, (p) => ({ redis, store } = p));

beforeEach(async () => {
  await redis.flushdb(); // our own server (startRedis above), never a shared one
});

describe('ProjectionStore.prune', () => {
  test('removes index members whose documents expired, and keeps the live ones', async () => {
    const batchId = uniqueId('batch');
    const live = makeDoc({ status: 'failed', parent_task_id: batchId, review: makeReview() });
    const deleted = makeDoc({ status: 'failed', parent_task_id: batchId, review: makeReview() });
    const expiring = makeDoc({ status: 'running' });
    await store.write(live);
    await store.write(deleted);
    await new ProjectionStore(redis, { ttlSeconds: 1 }).write(expiring);
    await redis.del(taskKey(deleted.task_id)); // gone without its index entries, as after an expiry
    await new Promise((r) => setTimeout(r, 1_500));
    const liveIndexes = await indexesOf(redis, live.task_id);

    const result = await store.prune();

    // live: 8 entries; deleted: 8 entries; expiring: 2 (status, type).
    expect(result).toEqual({ scanned: 18, removed: 10 });
    expect(await indexesOf(redis, deleted.task_id)).toEqual([]);
    expect(await indexesOf(redis, expiring.task_id)).toEqual([]);
    expect(await indexesOf(redis, live.task_id)).toEqual(liveIndexes);
  });

  test('walks large indexes in chunks and empties the ones left without members', async () => {
    const docs = Array.from({ length: 300 }, () => makeDoc({ task_type: 'batch_publish', status: 'success' }));
    for (const doc of docs) await store.write(doc);
    const gone = docs.filter((_, i) => i % 3 === 0);
    await redis.del(...gone.map((d) => taskKey(d.task_id)));
    const orphanBatch = uniqueId('batch');
    const child = makeDoc({ parent_task_id: orphanBatch });
    await store.write(child);
    await redis.del(taskKey(child.task_id));

    const result = await store.prune({ batchSize: 7 });

    expect(result.removed).toBe(gone.length * 2 + 3);
    expect(await redis.zcard(typeIndex('batch_publish'))).toBe(200);
    expect(await redis.zcard(statusIndex('success'))).toBe(200);
    expect(await redis.exists(parentIndex(orphanBatch))).toBe(0);
    expect(await redis.exists(statusIndex('pending'))).toBe(0);
  });

  test('ignores keys under the index patterns that are not sorted sets', async () => {
    await redis.set('pubflow:index:not-a-zset', 'x');
    const doc = makeDoc({ status: 'failed', review: makeReview() });
    await store.write(doc);

    const result = await store.prune();

    expect(result).toEqual({ scanned: 6, removed: 0 });
    expect(await redis.zscore(reviewOpenIndex(), doc.task_id)).not.toBeNull();
    expect(await redis.get('pubflow:index:not-a-zset')).toBe('x');
  });
});
