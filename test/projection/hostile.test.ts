/**
 * Client text that Redis's Lua JSON decoder cannot read (a lone UTF-16 surrogate, very deep nesting) must never make
 * the indexes disagree with the documents: the index moves never decode the document inside Lua.
 */
import { createHash } from 'node:crypto';
import type Redis from 'ioredis';
import {
  metaKey,
  reviewAccountIndex,
  reviewKindIndex,
  reviewOpenIndex,
  reviewPlatformIndex,
  statusIndex,
  taskKey,
  typeIndex,
} from '../../src/projection/keys';
import type { ProjectionStore } from '../../src/projection/store';
import type { TaskDoc } from '../../src/shared/types';
import { at, indexesOf, makeDoc, makeReview, uniqueId, startProjectionRedis } from './fixtures';
import { perFile } from '../helpers/harness';

let redis: Redis;
let store: ProjectionStore;
perFile(startProjectionRedis, (p) => ({ redis, store } = p));

function nested(depth: number): unknown {
  let v: unknown = 'bottom';
  for (let i = 0; i < depth; i++) v = { a: v };
  return v;
}

const deep = (depth: number): Partial<TaskDoc> => ({
  data: { platform: 'local', accountId: 'acc-1', title: 't', options: nested(depth) },
});

/**
 * Things a client can send that cjson may not decode; JSON.stringify writes them, JSON.parse reads them back.
 * (Redis 7.0's cjson refuses more than 1000 levels; 300 is the depth the issue reported, 1000 fails here.)
 */
const HOSTILE: [string, Partial<TaskDoc>][] = [
  ['a lone surrogate in the title', { data: { platform: 'local', accountId: 'acc-1', title: 'x\ud800y', tags: [] } }],
  ['300-deep nested options', deep(300)],
  ['1000-deep nested options', deep(1000)],
];

const open = [
  reviewOpenIndex(),
  reviewPlatformIndex('local'),
  reviewAccountIndex('acc-1'),
  reviewKindIndex('Unconfirmed'),
];

describe.each(HOSTILE)('a document with %s', (_name, hostile) => {
  test('is in exactly the right indexes through several versions, and older versions are refused', async () => {
    const id = uniqueId();
    const steps: Partial<TaskDoc>[] = [
      { status: 'pending', version: 1, updated_at: at(0) },
      { status: 'running', version: 2, updated_at: at(5) },
      { status: 'failed', version: 3, updated_at: at(9), review: makeReview({ kind: 'Unconfirmed' }) },
      { status: 'running', version: 4, updated_at: at(20), attempt: 2, review: makeReview({ open: false }) },
      { status: 'success', version: 5, updated_at: at(30) },
    ];
    const expected = [
      [statusIndex('pending')],
      [statusIndex('running')],
      [statusIndex('failed'), ...open],
      [statusIndex('running')],
      [statusIndex('success')],
    ];
    for (const [i, step] of steps.entries()) {
      const doc = makeDoc({ task_id: id, ...hostile, ...step });

      expect(await store.write(doc)).toBe('applied');

      expect(await indexesOf(redis, id)).toEqual([typeIndex('publish'), ...expected[i]!].sort());
      // The contract: one JSON string, readable with GET, exactly as written.
      expect(await redis.get(taskKey(id))).toBe(JSON.stringify(doc));
    }

    for (const old of [
      { status: 'running' as const, version: 4 },
      { status: 'pending' as const, version: 1 },
    ]) {
      expect(await store.write(makeDoc({ task_id: id, ...hostile, ...old }))).toBe('stale');
    }
    expect((JSON.parse((await redis.get(taskKey(id)))!) as TaskDoc).version).toBe(5);
    expect(await indexesOf(redis, id)).toEqual([statusIndex('success'), typeIndex('publish')].sort());
  });

  test('delete removes every index entry, and its tombstone refuses the old document', async () => {
    const id = uniqueId();
    const doc = makeDoc({ task_id: id, ...hostile, status: 'failed', version: 3, review: makeReview() });
    await store.write(doc);

    expect(await store.delete(id)).toBe(true);

    expect(await indexesOf(redis, id)).toEqual([]);
    expect(await store.apply({ ...doc, version: 4 })).toBe('deleted');
    expect(await indexesOf(redis, id)).toEqual([]);
  });

  test('repairIndexes removes a stray entry and keeps the right ones', async () => {
    const id = uniqueId();
    await store.write(makeDoc({ task_id: id, ...hostile, status: 'success', version: 2 }));
    await redis.zadd(statusIndex('running'), 1, id); // left behind by some old bug

    await store.repairIndexes();

    expect(await indexesOf(redis, id)).toEqual([statusIndex('success'), typeIndex('publish')].sort());
  });

  test('a document stored by the previous code (no index record) still moves out of its old indexes', async () => {
    const id = uniqueId();
    const before = makeDoc({ task_id: id, ...hostile, status: 'failed', version: 3, review: makeReview() });
    // What the previous write script left: the JSON and its index entries, nothing else.
    await redis.set(taskKey(id), JSON.stringify(before), 'EX', 3600);
    await redis.zadd(statusIndex('failed'), 1, id);
    await redis.zadd(typeIndex('publish'), 1, id);
    for (const k of [reviewOpenIndex(), reviewPlatformIndex('local'), reviewAccountIndex('acc-1')])
      await redis.zadd(k, 1, id);
    await redis.zadd(reviewKindIndex('AuthExpired'), 1, id);

    expect(await store.write({ ...before, version: 2, status: 'running' })).toBe('stale');
    expect(await store.write({ ...before, version: 4, status: 'success', review: null })).toBe('applied');

    expect(await indexesOf(redis, id)).toEqual([statusIndex('success'), typeIndex('publish')].sort());
  });
});

test('a deep document stored by the previous code is repaired by repairIndexes', async () => {
  const id = uniqueId();
  const doc = makeDoc({ task_id: id, ...deep(1000), status: 'success', version: 2 });
  await redis.set(taskKey(id), JSON.stringify(doc), 'EX', 3600);
  await redis.zadd(statusIndex('success'), 1, id);
  await redis.zadd(statusIndex('running'), 1, id);
  await redis.zadd(typeIndex('publish'), 1, id);

  await store.repairIndexes();

  expect(await indexesOf(redis, id)).toEqual([statusIndex('success'), typeIndex('publish')].sort());
});

describe('the index record', () => {
  const sha1 = (s: string) => createHash('sha1').update(s).digest('hex');

  test('is written with the document, expires with it, follows progress, and is deleted with it', async () => {
    const id = uniqueId();
    const doc = makeDoc({ task_id: id, ...HOSTILE[0]![1], status: 'running', version: 2 });
    await store.apply(doc, { ttlSeconds: 500 });

    expect(await redis.hgetall(metaKey(id))).toEqual({
      h: sha1(JSON.stringify(doc)),
      v: '2',
      s: 'running',
      t: 'publish',
      p: '',
      pl: 'local',
      a: 'acc-1',
      rk: '',
      ro: '0',
    });
    expect(await redis.ttl(metaKey(id))).toBe(await redis.ttl(taskKey(id)));

    expect(await store.writeProgress(id, 1, { percent: 40, stage: 'uploading' })).toBe(true);
    const raw = (await redis.get(taskKey(id)))!;
    expect(await redis.hget(metaKey(id), 'h')).toBe(sha1(raw));
    expect(await redis.ttl(metaKey(id))).toBe(await redis.ttl(taskKey(id)));

    expect(await store.delete(id)).toBe(true);
    expect(await redis.exists(metaKey(id))).toBe(0);
  });

  test('a document stored by the previous code is deleted with every index entry', async () => {
    const id = uniqueId();
    const doc = makeDoc({ task_id: id, ...HOSTILE[0]![1], status: 'failed', review: makeReview() });
    await redis.set(taskKey(id), JSON.stringify(doc), 'EX', 3600);
    for (const k of [statusIndex('failed'), typeIndex('publish'), ...open.slice(0, 3), reviewKindIndex('AuthExpired')])
      await redis.zadd(k, 1, id);

    expect(await store.delete(id)).toBe(true);

    expect(await indexesOf(redis, id)).toEqual([]);
  });

  test('a document changed outside the store is judged by its JSON, not by the record of what was there', async () => {
    const id = uniqueId();
    await store.write(makeDoc({ task_id: id, ...HOSTILE[0]![1], status: 'pending', version: 1 }));
    // Someone SETs a newer document by hand (and its entry, as the previous code would have).
    await redis.set(taskKey(id), JSON.stringify(makeDoc({ task_id: id, status: 'running', version: 5 })));
    await redis.zadd(statusIndex('running'), 1, id);

    expect(await store.write(makeDoc({ task_id: id, status: 'running', version: 4 }))).toBe('stale');
    expect(await store.write(makeDoc({ task_id: id, status: 'success', version: 6 }))).toBe('applied');

    // 'pending' is left from the first write: only repairIndexes knows the hand-made document replaced it.
    await store.repairIndexes();
    expect(await indexesOf(redis, id)).toEqual([statusIndex('success'), typeIndex('publish')].sort());
  });
});
