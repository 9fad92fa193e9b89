/**
 * Tombstones: a deleted task stays deleted. The delete script leaves `pubflow:deleted:<id>` and the write script
 * refuses any document of the task as it existed before the deletion.
 */
import type Redis from 'ioredis';
import { statusIndex, taskKey, tombstoneKey } from '../../src/projection/keys';
import type { ProjectionStore } from '../../src/projection/store';
import { DEFAULT_TTL_SECONDS } from '../../src/projection/store';
import { indexesOf, makeDoc, makeReview, uniqueId, startProjectionRedis } from './fixtures';
import { perFile } from '../helpers/harness';

let redis: Redis;
let store: ProjectionStore;
perFile(startProjectionRedis, (p) => ({ redis, store } = p));

const isoIn = (ms: number) => new Date(Date.now() + ms).toISOString();

describe('ProjectionStore.delete with a tombstone', () => {
  test('a write still in flight after DELETE does not bring the task back', async () => {
    const batchId = uniqueId('batch');
    const doc = makeDoc({ status: 'running', version: 2, parent_task_id: batchId });
    await store.write(doc);

    expect(await store.delete(doc.task_id)).toBe(true);
    const late = { ...doc, version: 3, status: 'failed' as const, review: makeReview() };

    expect(await store.write(late)).toBe('stale');
    expect(await store.apply(late)).toBe('deleted');
    expect(await redis.exists(taskKey(doc.task_id))).toBe(0);
    expect(await indexesOf(redis, doc.task_id)).toEqual([]);
    expect(await store.isDeleted(doc.task_id)).toBe(true);
  });

  test('the tombstone lives as long as a document would (the status TTL)', async () => {
    const doc = makeDoc();
    await store.write(doc);

    await store.delete(doc.task_id);

    const ttl = await redis.ttl(tombstoneKey(doc.task_id));
    expect(ttl).toBeGreaterThan(DEFAULT_TTL_SECONDS - 5);
    expect(ttl).toBeLessThanOrEqual(DEFAULT_TTL_SECONDS);
  });

  test('deleting a task Redis has no document for (Redis was wiped) still leaves a tombstone', async () => {
    const doc = makeDoc();

    expect(await store.delete(doc.task_id)).toBe(false);

    expect(await store.apply(doc)).toBe('deleted');
    expect(await redis.exists(taskKey(doc.task_id))).toBe(0);
  });

  test("the deleted document's own writes are refused even when its created_at is ahead of Redis's clock", async () => {
    const doc = makeDoc({ created_at: isoIn(10 * 60_000), updated_at: isoIn(10 * 60_000) });
    await store.write(doc);

    await store.delete(doc.task_id);

    expect(await store.apply({ ...doc, version: doc.version + 1 })).toBe('deleted');
  });

  test('a new task that reuses the id after the deletion (created later) is written', async () => {
    const old = makeDoc();
    await store.write(old);
    await store.delete(old.task_id);

    const reborn = makeDoc({ task_id: old.task_id, created_at: isoIn(1000), updated_at: isoIn(1000) });

    expect(await store.apply(reborn)).toBe('applied');
    expect(await redis.zscore(statusIndex('pending'), old.task_id)).not.toBeNull();
  });

  test('without a tombstone (the reconciler removing a task Temporal does not know) later writes apply', async () => {
    const doc = makeDoc();
    await store.write(doc);

    expect(await store.delete(doc.task_id, { tombstone: false })).toBe(true);

    expect(await store.isDeleted(doc.task_id)).toBe(false);
    expect(await store.apply(doc)).toBe('applied');
  });

  test('ifUnchanged: a document that changed since it was read is left alone', async () => {
    const doc = makeDoc({ version: 1 });
    await store.write(doc);
    const read = (await redis.get(taskKey(doc.task_id)))!;
    await store.write({ ...doc, version: 2, status: 'running' });

    expect(await store.delete(doc.task_id, { ifUnchanged: read })).toBe(false);

    expect(await redis.exists(taskKey(doc.task_id))).toBe(1);
    expect(await store.isDeleted(doc.task_id)).toBe(false);
    const current = (await redis.get(taskKey(doc.task_id)))!;
    expect(await store.delete(doc.task_id, { ifUnchanged: current })).toBe(true);
  });

  test('apply with a shorter TTL (a rebuilt closed task keeps what was left of its 7 days)', async () => {
    const doc = makeDoc();

    expect(await store.apply(doc, { ttlSeconds: 3600 })).toBe('applied');

    expect(await redis.ttl(taskKey(doc.task_id))).toBeLessThanOrEqual(3600);
    await expect(store.apply({ ...doc, version: 9 }, { ttlSeconds: 0 })).rejects.toThrow(RangeError);
  });
});
