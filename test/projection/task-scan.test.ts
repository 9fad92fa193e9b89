import { taskKey } from '../../src/projection/keys';
import { SCAN_WINDOW, TaskStateManager, type TaskScanFilter } from '../../src/projection/task-state-manager';
import type { TaskDoc } from '../../src/shared/types';
import { at, makeDoc, startProjectionRedis, uniqueId, type ProjectionRedis } from './fixtures';

// One Redis for this file: a batch of 30 children, 3,000 tasks on one account (more than one scan window), and a few
// on others, so a rare account's tasks lie past the first window.
let r: ProjectionRedis;
let tsm: TaskStateManager;

const batch = uniqueId('batch');
const rare: TaskDoc[] = [];
const children: TaskDoc[] = [];
const BULK = SCAN_WINDOW + 1000;

beforeAll(async () => {
  r = await startProjectionRedis();
  tsm = new TaskStateManager(r.redis);
  // The rare account's tasks are the oldest (created t0..t2): a newest-first scan reaches them last.
  for (let i = 0; i < 3; i++) {
    const doc = makeDoc({
      task_id: uniqueId('rare'),
      created_at: at(i),
      updated_at: at(10_000 + i),
      platform: 'webhook',
      account_id: 'rare-acc',
      status: i === 1 ? 'failed' : 'success',
      data: { title: `Rare launch ${i}` },
    });
    rare.push(doc);
    await r.store.write(doc);
  }
  // Batch children all created in the same millisecond (as a batch's workflow starts them): cursors must not loop
  // or skip on equal scores.
  for (let i = 0; i < 30; i++) {
    const doc = makeDoc({
      task_id: `${batch}-${String(i).padStart(3, '0')}`,
      parent_task_id: batch,
      created_at: at(100),
      updated_at: at(200 + i),
      status: i % 3 === 0 ? 'failed' : 'success',
      data: { title: i === 7 ? 'The <Seventh> child' : `child ${i}` },
    });
    children.push(doc);
    await r.store.write(doc);
  }
  const bulk = Array.from({ length: BULK }, (_, i) =>
    makeDoc({ created_at: at(1000 + i), updated_at: at(1000 + i), status: 'success', data: { title: `bulk ${i}` } }),
  );
  for (let i = 0; i < bulk.length; i += 100) await Promise.all(bulk.slice(i, i + 100).map((d) => r.store.write(d)));
});

afterAll(async () => {
  await r.close();
});

const ids = (items: TaskDoc[]): string[] => items.map((d) => d.task_id);

/** Every page of a scan, following `next`. */
async function allPages(f: TaskScanFilter): Promise<{ items: TaskDoc[]; pages: number; maxScanned: number }> {
  const items: TaskDoc[] = [];
  let cursor: string | undefined;
  let pages = 0;
  let maxScanned = 0;
  do {
    const page = await tsm.scanTasks({ ...f, cursor });
    items.push(...page.items);
    maxScanned = Math.max(maxScanned, page.scanned);
    pages++;
    cursor = page.next ?? undefined;
    if (pages > 50) throw new Error('the scan does not end');
  } while (cursor !== undefined);
  return { items, pages, maxScanned };
}

describe('TaskStateManager.scanTasks', () => {
  test('an account past the first window: each page looks at no more than the window, and following next finds all', async () => {
    const first = await tsm.scanTasks({ accountId: 'rare-acc' });
    expect(first.items).toEqual([]);
    expect(first.scanned).toBe(SCAN_WINDOW);
    expect(first.next).not.toBeNull();
    const all = await allPages({ accountId: 'rare-acc' });
    expect(all.maxScanned).toBeLessThanOrEqual(SCAN_WINDOW);
    expect(ids(all.items)).toEqual(ids([...rare].reverse())); // newest first
  });

  test('platform and status together, on the index records', async () => {
    const all = await allPages({ platform: 'webhook', status: 'failed' });
    expect(ids(all.items)).toEqual([rare[1]?.task_id]);
  });

  test('a time range by created_at, and by updated_at', async () => {
    const created = await tsm.scanTasks({ since: Date.parse(at(0)), until: Date.parse(at(1)) });
    expect(ids(created.items)).toEqual([rare[1]?.task_id, rare[0]?.task_id]);
    expect(created.next).toBeNull();
    const updated = await tsm.scanTasks({ time: 'updated', since: Date.parse(at(10_001)) });
    expect(ids(updated.items)).toEqual([rare[2]?.task_id, rare[1]?.task_id]);
    expect(updated.next).toBeNull();
  });

  test('equal created_at scores: pages of 4 over a batch visit every child once', async () => {
    const all = await allPages({ parent: batch, since: Date.parse(at(0)), limit: 4 });
    expect(all.items).toHaveLength(30);
    expect(new Set(ids(all.items)).size).toBe(30);
    expect(ids(all.items)).toEqual(ids(children).sort().reverse());
    expect(all.pages).toBe(8);
  });

  test("a batch's children by status", async () => {
    const page = await tsm.scanTasks({ parent: batch, status: 'failed', search: 'child', limit: 50 });
    expect(ids(page.items).sort()).toEqual(ids(children.filter((c) => c.status === 'failed')).sort());
  });

  test('search: part of a title, case-insensitive; an exact task id at once', async () => {
    const byTitle = await allPages({ search: 'seventh' });
    expect(ids(byTitle.items)).toEqual([children[7]?.task_id]);
    const exact = await tsm.scanTasks({ search: rare[2]?.task_id });
    expect(exact).toEqual({ items: [rare[2]], next: null, scanned: 1 });
    // The exact id must still match the other filters.
    const filtered = await allPages({ search: rare[2]?.task_id, status: 'failed' });
    expect(filtered.items).toEqual([]);
  });

  test('a search that stops at the limit goes on after the last match it returned', async () => {
    const first = await tsm.scanTasks({ search: 'bulk 1', limit: 5 });
    expect(first.items.map((d) => d.data.title)).toHaveLength(5);
    const second = await tsm.scanTasks({ search: 'bulk 1', limit: 5, cursor: first.next ?? undefined });
    const titles = [...first.items, ...second.items].map((d) => String(d.data.title));
    expect(new Set(titles).size).toBe(10);
    expect(titles.every((t) => t.startsWith('bulk 1'))).toBe(true);
  });

  test('an expired document is skipped; a cursor that is not ours is refused', async () => {
    const gone = makeDoc({ created_at: at(5), account_id: 'gone-acc' });
    await r.store.write(gone);
    await r.redis.del(taskKey(gone.task_id));
    expect((await allPages({ accountId: 'gone-acc' })).items).toEqual([]);
    await expect(tsm.scanTasks({ cursor: 'bm90IGEgY3Vyc29y' })).rejects.toThrow('not a cursor');
  });
});
