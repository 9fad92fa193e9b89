import Redis from 'ioredis';
import {
  parentIndex,
  reviewAccountIndex,
  reviewBatchIndex,
  reviewKindIndex,
  reviewOpenIndex,
  reviewPlatformIndex,
  statusIndex,
  taskKey,
  typeIndex,
} from '../../src/projection/keys';
import { DEFAULT_TTL_SECONDS, ProjectionStore } from '../../src/projection/store';
import type { TaskDoc } from '../../src/shared/types';
import type { RedisServer } from '../helpers/servers';
import { at, indexesOf, makeDoc, makeReview, scoreOf, uniqueId, startProjectionRedis } from './fixtures';
import { perFile } from '../helpers/harness';

let server: RedisServer;
let redis: Redis;
let store: ProjectionStore;
perFile(startProjectionRedis, (p) => ({ server, redis, store } = p));

const stored = async (id: string): Promise<TaskDoc | null> => {
  const raw = await redis.get(taskKey(id));
  return raw === null ? null : (JSON.parse(raw) as TaskDoc);
};

function shuffle<T>(items: T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

describe('ProjectionStore.write', () => {
  test('a task moving pending → running → success is in exactly one status index at each step', async () => {
    const id = uniqueId();
    const steps: Partial<TaskDoc>[] = [
      { status: 'pending', version: 1, updated_at: at(0) },
      { status: 'running', version: 2, updated_at: at(5), started_at: at(5) },
      { status: 'success', version: 3, updated_at: at(9), completed_at: at(9), result: { postId: 'p1' } },
    ];
    for (const step of steps) {
      const doc = makeDoc({ task_id: id, ...step });

      expect(await store.write(doc)).toBe('applied');

      expect(await indexesOf(redis, id)).toEqual([statusIndex(doc.status), typeIndex('publish')].sort());
      expect(Number(await redis.zscore(statusIndex(doc.status), id))).toBe(scoreOf(doc.updated_at));
      expect(Number(await redis.zscore(typeIndex('publish'), id))).toBe(scoreOf(doc.created_at));
    }
    expect((await stored(id))?.status).toBe('success');
  });

  test('the stored value is exactly the JSON written, so empty arrays stay arrays', async () => {
    const doc = makeDoc({ data: { tags: [], nested: { list: [] } }, result: null });

    await store.write(doc);

    expect(await redis.get(taskKey(doc.task_id))).toBe(JSON.stringify(doc));
  });

  test('an equal version with the same bytes is stale and changes nothing', async () => {
    const first = makeDoc({ version: 4, status: 'running', updated_at: at(4) });
    await store.write(first);

    const outcome = await store.write({ ...first });

    expect(outcome).toBe('stale');
    expect(await redis.get(taskKey(first.task_id))).toBe(JSON.stringify(first));
    expect(await indexesOf(redis, first.task_id)).toEqual([statusIndex('running'), typeIndex('publish')].sort());
  });

  test('an equal version with other bytes (a lost workflow task computed again) replaces it, indexes included', async () => {
    // Version 4 as a workflow task that Temporal never recorded wrote it, then as its re-run computed it.
    const lost = makeDoc({ version: 4, status: 'success', updated_at: at(4), completed_at: at(4) });
    await store.write(lost);
    const kept = { ...lost, updated_at: at(8), completed_at: at(8) };

    expect(await store.write(kept)).toBe('applied');
    expect(await redis.get(taskKey(lost.task_id))).toBe(JSON.stringify(kept));
    expect(await indexesOf(redis, lost.task_id)).toEqual([statusIndex('success'), typeIndex('publish')].sort());
    // An older version still never moves it back.
    expect(await store.write({ ...lost, version: 3, status: 'running' })).toBe('stale');
    expect(await redis.get(taskKey(lost.task_id))).toBe(JSON.stringify(kept));
  });

  test('an older version is stale and does not move the task backwards', async () => {
    const id = uniqueId();
    await store.write(makeDoc({ task_id: id, version: 5, status: 'success', updated_at: at(9) }));

    const outcome = await store.write(makeDoc({ task_id: id, version: 2, status: 'running', updated_at: at(3) }));

    expect(outcome).toBe('stale');
    expect((await stored(id))?.version).toBe(5);
    expect(await redis.zscore(statusIndex('running'), id)).toBeNull();
  });

  test('versions 1..10 written concurrently in random order end at version 10, with indexes that agree', async () => {
    const statusOf = (v: number): TaskDoc['status'] => (v === 1 ? 'pending' : v === 10 ? 'failed' : 'running');
    for (let round = 0; round < 5; round++) {
      const id = uniqueId();
      const batchId = uniqueId('batch');
      const docs = Array.from({ length: 10 }, (_, i) => {
        const v = i + 1;
        return makeDoc({
          task_id: id,
          parent_task_id: batchId,
          version: v,
          status: statusOf(v),
          updated_at: at(v),
          // Reviews open and close along the way, on different accounts, and the last one is open.
          review: v % 3 === 0 || v === 10 ? makeReview({ failed_at: at(v) }) : null,
          account_id: `acc-${v % 4}`,
        });
      });

      const outcomes = await Promise.all(shuffle(docs).map((d) => store.write(d)));

      expect(outcomes).toContain('applied');
      const final = docs[9] as TaskDoc;
      expect(await redis.get(taskKey(id))).toBe(JSON.stringify(final));
      expect(await indexesOf(redis, id)).toEqual(
        [
          statusIndex('failed'),
          typeIndex('publish'),
          parentIndex(batchId),
          reviewOpenIndex(),
          reviewPlatformIndex('local'),
          reviewAccountIndex('acc-2'),
          reviewKindIndex('AuthExpired'),
          reviewBatchIndex(batchId),
        ].sort(),
      );
      expect(Number(await redis.zscore(reviewOpenIndex(), id))).toBe(scoreOf(at(10)));
    }
  });

  test('review indexes follow the review as it opens, moves to another account and platform, and closes', async () => {
    const id = uniqueId();
    const batchId = uniqueId('batch');
    const base = { task_id: id, parent_task_id: batchId };
    await store.write(makeDoc({ ...base, version: 1, status: 'running' }));
    expect(await redis.zscore(reviewOpenIndex(), id)).toBeNull();

    // Opens: in every review index that applies, scored by failed_at.
    await store.write(
      makeDoc({
        ...base,
        version: 2,
        status: 'failed',
        review: makeReview({ kind: 'AuthExpired', failed_at: at(20) }),
      }),
    );
    const opened = [
      reviewOpenIndex(),
      reviewPlatformIndex('local'),
      reviewAccountIndex('acc-1'),
      reviewKindIndex('AuthExpired'),
      reviewBatchIndex(batchId),
    ];
    expect(await indexesOf(redis, id)).toEqual(
      [statusIndex('failed'), typeIndex('publish'), parentIndex(batchId), ...opened].sort(),
    );
    for (const key of opened) expect(Number(await redis.zscore(key, id))).toBe(scoreOf(at(20)));

    // Still open, but on another platform and account, with another kind: the old entries go.
    await store.write(
      makeDoc({
        ...base,
        version: 3,
        status: 'failed',
        platform: 'webhook',
        account_id: 'acc-9',
        review: makeReview({ kind: 'RateLimited', failed_at: at(30) }),
      }),
    );
    expect(await indexesOf(redis, id)).toEqual(
      [
        statusIndex('failed'),
        typeIndex('publish'),
        parentIndex(batchId),
        reviewOpenIndex(),
        reviewPlatformIndex('webhook'),
        reviewAccountIndex('acc-9'),
        reviewKindIndex('RateLimited'),
        reviewBatchIndex(batchId),
      ].sort(),
    );

    // Decided: out of every review index.
    await store.write(
      makeDoc({
        ...base,
        version: 4,
        status: 'running',
        platform: 'webhook',
        account_id: 'acc-9',
        review: makeReview({ open: false, kind: 'RateLimited', decision: 'retry', decided_at: at(40) }),
      }),
    );
    expect(await indexesOf(redis, id)).toEqual(
      [statusIndex('running'), typeIndex('publish'), parentIndex(batchId)].sort(),
    );
  });

  test('a task without a parent is in no parent or batch index', async () => {
    const doc = makeDoc({ status: 'failed', review: makeReview() });

    await store.write(doc);

    const keys = await indexesOf(redis, doc.task_id);
    expect(keys.some((k) => k.startsWith('celery:index:parent:') || k.startsWith('pubflow:index:review:batch:'))).toBe(
      false,
    );
    expect(keys).toContain(reviewOpenIndex());
  });

  test('the document expires 7 days after its last change by default', async () => {
    const doc = makeDoc();

    await store.write(doc);

    const ttl = await redis.ttl(taskKey(doc.task_id));
    expect(DEFAULT_TTL_SECONDS).toBe(604800);
    expect(ttl).toBeGreaterThan(604800 - 5);
    expect(ttl).toBeLessThanOrEqual(604800);
  });

  test('each applied write resets the TTL, and a stale write leaves it alone', async () => {
    const short = new ProjectionStore(redis, { ttlSeconds: 100 });
    const id = uniqueId();
    await short.write(makeDoc({ task_id: id, version: 1 }));
    expect(await redis.pttl(taskKey(id))).toBeGreaterThan(95_000);
    await redis.pexpire(taskKey(id), 5_000); // as if 95 s had passed

    await short.write(makeDoc({ task_id: id, version: 1 })); // stale
    expect(await redis.pttl(taskKey(id))).toBeLessThanOrEqual(5_000);

    await short.write(makeDoc({ task_id: id, version: 2, status: 'running' }));
    const pttl = await redis.pttl(taskKey(id));
    expect(pttl).toBeGreaterThan(95_000);
    expect(pttl).toBeLessThanOrEqual(100_000);
  });

  test('a bad version or timestamp is rejected before anything is written', async () => {
    const id = uniqueId();

    await expect(store.write(makeDoc({ task_id: id, version: 1.5 }))).rejects.toThrow(RangeError);
    await expect(store.write(makeDoc({ task_id: id, updated_at: 'yesterday' }))).rejects.toThrow(/updated_at/);

    expect(await redis.exists(taskKey(id))).toBe(0);
    expect(await indexesOf(redis, id)).toEqual([]);
  });

  test('a client with a keyPrefix is refused', () => {
    const prefixed = new Redis(server.url, { keyPrefix: 'x:', lazyConnect: true });
    expect(() => new ProjectionStore(prefixed)).toThrow(/keyPrefix/);
    prefixed.disconnect();
  });
});

describe('ProjectionStore.writeProgress', () => {
  test('updates progress and updated_at of the current running attempt, not the version, and resets the TTL', async () => {
    const short = new ProjectionStore(redis, { ttlSeconds: 100 });
    const doc = makeDoc({ status: 'running', attempt: 2, version: 7, updated_at: at(1) });
    await short.write(doc);
    await redis.pexpire(taskKey(doc.task_id), 5_000);

    const applied = await short.writeProgress(doc.task_id, 2, { percent: 40, stage: 'uploading' });

    expect(applied).toBe(true);
    const after = await stored(doc.task_id);
    expect(after).toEqual({ ...doc, progress: { percent: 40, stage: 'uploading' }, updated_at: after?.updated_at });
    expect(Date.parse(after?.updated_at ?? '')).toBeGreaterThan(Date.now() - 60_000);
    expect(Number(await redis.zscore(statusIndex('running'), doc.task_id))).toBe(scoreOf(after?.updated_at ?? ''));
    expect(await redis.pttl(taskKey(doc.task_id))).toBeGreaterThan(95_000);
  });

  test('applies while pending, for waiting stages', async () => {
    const doc = makeDoc({ status: 'pending' });
    await store.write(doc);

    expect(await store.writeProgress(doc.task_id, 1, { percent: 0, stage: 'waiting_for_account' })).toBe(true);

    expect((await stored(doc.task_id))?.progress).toEqual({ percent: 0, stage: 'waiting_for_account' });
    expect(await indexesOf(redis, doc.task_id)).toEqual([statusIndex('pending'), typeIndex('publish')].sort());
  });

  test('is ignored for another attempt, a finished task or a missing one', async () => {
    const running = makeDoc({ status: 'running', attempt: 3 });
    const finished = makeDoc({ status: 'success', attempt: 1, version: 9 });
    await store.write(running);
    await store.write(finished);

    expect(await store.writeProgress(running.task_id, 2, { percent: 90, stage: 'late' })).toBe(false);
    expect(await store.writeProgress(finished.task_id, 1, { percent: 90, stage: 'late' })).toBe(false);
    expect(await store.writeProgress(uniqueId(), 1, { percent: 90, stage: 'late' })).toBe(false);

    expect(await redis.get(taskKey(running.task_id))).toBe(JSON.stringify(running));
    expect(await redis.get(taskKey(finished.task_id))).toBe(JSON.stringify(finished));
  });

  test('racing a state change, progress never brings back the older document', async () => {
    for (let round = 0; round < 20; round++) {
      const running = makeDoc({ status: 'running', version: 1 });
      const done = { ...running, status: 'success' as const, version: 2, updated_at: at(50), completed_at: at(50) };
      await store.write(running);

      await Promise.all([
        store.writeProgress(running.task_id, 1, { percent: 99, stage: 'finishing' }),
        store.write(done),
      ]);

      // Whichever came first, the state change is what remains: progress was either overwritten or refused.
      expect(await redis.get(taskKey(running.task_id))).toBe(JSON.stringify(done));
      expect(await indexesOf(redis, running.task_id)).toEqual([statusIndex('success'), typeIndex('publish')].sort());
    }
  });

  describe('when the document changes between its read and its swap', () => {
    // A second real client whose next GET lets another write land right after the read.
    let racy: Redis;
    beforeAll(() => {
      racy = new Redis(server.url);
    });
    afterAll(async () => {
      await racy.quit();
    });
    afterEach(() => jest.restoreAllMocks());

    function interleaveAfterRead(write: () => Promise<unknown>) {
      const realGet = racy.get.bind(racy);
      return jest.spyOn(racy, 'get').mockImplementationOnce(async (key) => {
        const raw = await realGet(key);
        await write();
        return raw;
      });
    }

    test('a state change in between: the swap is refused and the new state re-checked', async () => {
      const running = makeDoc({ status: 'running' });
      const done = { ...running, status: 'success' as const, version: 2, updated_at: at(50) };
      await store.write(running);
      const get = interleaveAfterRead(() => store.write(done));

      const applied = await new ProjectionStore(racy).writeProgress(running.task_id, 1, { percent: 50, stage: 'up' });

      expect(applied).toBe(false);
      expect(get).toHaveBeenCalledTimes(2);
      expect(await redis.get(taskKey(running.task_id))).toBe(JSON.stringify(done));
    });

    test('another progress write in between: it retries and applies', async () => {
      const running = makeDoc({ status: 'running' });
      await store.write(running);
      const get = interleaveAfterRead(() => store.writeProgress(running.task_id, 1, { percent: 10, stage: 'other' }));

      const applied = await new ProjectionStore(racy).writeProgress(running.task_id, 1, { percent: 20, stage: 'ours' });

      expect(applied).toBe(true);
      expect(get).toHaveBeenCalledTimes(2);
      expect((await stored(running.task_id))?.progress).toEqual({ percent: 20, stage: 'ours' });
    });
  });
});

describe('ProjectionStore.delete', () => {
  test('removes the document and every index entry it had', async () => {
    const batchId = uniqueId('batch');
    const doc = makeDoc({ status: 'failed', parent_task_id: batchId, review: makeReview({ kind: 'NotSent' }) });
    await store.write(doc);
    expect((await indexesOf(redis, doc.task_id)).length).toBe(8);

    expect(await store.delete(doc.task_id)).toBe(true);

    expect(await redis.exists(taskKey(doc.task_id))).toBe(0);
    expect(await indexesOf(redis, doc.task_id)).toEqual([]);
    expect(await store.delete(doc.task_id)).toBe(false);
  });
});
