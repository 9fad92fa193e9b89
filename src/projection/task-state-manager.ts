/**
 * The read side of the projection, offering the old Python `task_state_manager` API's reads (its cancel and delete,
 * which act on Temporal first, are use cases of the service layer: src/service/task-control.ts).
 * Lists come from the sorted-set indexes (never KEYS, never a read of every document).
 */
import type { Redis } from 'ioredis';
import { TASK_STATUSES, TASK_TYPES } from '../shared/types';
import type { TaskDoc, TaskStatus, TaskType } from '../shared/types';
import {
  KEY_PREFIX,
  parentIndex,
  reviewAccountIndex,
  reviewBatchIndex,
  reviewKindIndex,
  reviewOpenIndex,
  reviewPlatformIndex,
  statusIndex,
  taskKey,
  tempKey,
  typeIndex,
} from './keys';
import { LuaScript, PREFIXES_ARG } from './lua';

export interface Paging {
  /** Default 50. */
  limit?: number;
  /** Default 0. */
  offset?: number;
}

export interface TaskFilter {
  status?: TaskStatus;
  type?: TaskType;
  /** The batch (parent task) id. */
  parent?: string;
}

export interface ReviewFilter {
  platform?: string;
  accountId?: string;
  /** An ErrorKind; a plain string so a validated query string can be passed straight on. */
  kind?: string;
  batchId?: string;
}

/**
 * Filters that no index covers: platform and account (every task's index record holds them), a time range and a
 * search by task id or title. See `scanTasks`.
 */
export interface TaskScanFilter extends TaskFilter {
  platform?: string;
  accountId?: string;
  /** Epoch ms, inclusive. */
  since?: number;
  /** Epoch ms, inclusive. */
  until?: number;
  /** Which timestamp the range and the order use: created_at (default) or updated_at. */
  time?: 'created' | 'updated';
  /** A task id (exact), or part of a task id or title (case-insensitive). */
  search?: string;
  /** Where the previous page stopped (its `next`). */
  cursor?: string;
  /** Matches per page, default 50. */
  limit?: number;
}

export interface ScanPage {
  items: TaskDoc[];
  /** Where to go on, or null when the range has been read to its end. */
  next: string | null;
  /** Index members looked at for this page (at most SCAN_WINDOW). */
  scanned: number;
}

/** A task that waits on its account (for its turn, its publish time, a backoff) or is uploading. */
export const WAITING_STATUSES = ['pending', 'running', 'retry'] as const;

export interface AccountWaiting {
  pending: number;
  running: number;
  retry: number;
  /** A few of their task ids, most recently changed first. */
  sample: string[];
}

/** At most this many index members are looked at per page, whatever the filters (a bounded page, never a full scan). */
export const SCAN_WINDOW = 2000;

export class InvalidCursorError extends Error {
  override readonly name = 'InvalidCursorError';
}

export interface Page<T> {
  items: T[];
  /** Matching index members; may include a few expired documents until the next prune. */
  total: number;
}

export type QueueStats = Record<TaskStatus, number> & { total: number };

// One consistent snapshot of a page. KEYS: 1 scratch key, 2.. indexes (the first one's score orders the result).
// ARGV: 1 task key prefix, 2 offset, 3 limit (-1 = all), 4 'docs' or 'ids'.
// Returns { total, doc or id... }; members whose document has expired are skipped.
const PAGE = new LuaScript(`
local n = #KEYS - 1
local src, total = KEYS[2], 0
if n == 1 then
  total = redis.call('ZCARD', src)
else
  local args = { 'ZINTERSTORE', KEYS[1], n }
  for i = 2, #KEYS do args[#args + 1] = KEYS[i] end
  args[#args + 1] = 'WEIGHTS'
  args[#args + 1] = 1
  for i = 3, #KEYS do args[#args + 1] = 0 end
  total = redis.call(unpack(args))
  src = KEYS[1]
end
local out = { total }
local offset, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
if limit ~= 0 then
  local stop = -1
  if limit > 0 then stop = offset + limit - 1 end
  for _, id in ipairs(redis.call('ZREVRANGE', src, offset, stop)) do
    local k = ARGV[1] .. id
    if ARGV[4] == 'ids' then
      if redis.call('EXISTS', k) == 1 then out[#out + 1] = id end
    else
      local raw = redis.call('GET', k)
      if raw then out[#out + 1] = raw end
    end
  end
end
if n > 1 then redis.call('DEL', KEYS[1]) end
return out
`);

// A bounded walk down the time-ordered indexes, newest first, filtering each member on its index record
// (pubflow:meta:<id>, written with the document; nothing new is written for this). KEYS: 1 scratch (union),
// 2..n+1 scratch (one per source), n+2..2n+1 the source indexes. ARGV: 1 prefixes, 2 max score, 3 min score,
// 4 cursor score ('' = none), 5 cursor id, 6 window, 7 matches wanted (0 = every match in the window), 8 status,
// 9 type, 10 parent, 11 platform, 12 account ('' = any), 13 id substring that also matches ('' = none: every
// member that passes the record's filters is returned).
// Order is the indexes' own: score descending, then member descending; the cursor is the last member looked at.
// Returns { exhausted (1/0), last score, last id, scanned, id, score, id, score... }. The document is never decoded.
const SCAN = new LuaScript(`
local P = cjson.decode(ARGV[1])
local n = (#KEYS - 1) / 2
local cs, cid = ARGV[4], ARGV[5]
local csn = tonumber(cs)
local window, want = tonumber(ARGV[6]), tonumber(ARGV[7])
-- truncated: some source has more in range than was copied, so reaching the end of the copy is not the end.
local truncated = false
for i = 1, n do
  local base = KEYS[1 + n + i]
  local ties = 0
  if csn then ties = redis.call('ZCOUNT', base, cs, cs) end
  local got = redis.call('ZRANGESTORE', KEYS[1 + i], base, ARGV[2], ARGV[3], 'BYSCORE', 'REV', 'LIMIT', 0, window + ties)
  if got == window + ties then truncated = true end
end
local src = KEYS[2]
if n > 1 then
  local args = { 'ZUNIONSTORE', KEYS[1], n }
  for i = 1, n do args[#args + 1] = KEYS[1 + i] end
  args[#args + 1] = 'AGGREGATE'
  args[#args + 1] = 'MAX'
  redis.call(unpack(args))
  src = KEYS[1]
end
local flat = redis.call('ZREVRANGE', src, 0, -1, 'WITHSCORES')
for i = 1, #KEYS - n do redis.call('DEL', KEYS[i]) end
local want_f = { ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12] }
local out, scanned, matched, ls, lid = {}, 0, 0, '', ''
local exhausted = 1
if truncated then exhausted = 0 end
for i = 1, #flat, 2 do
  local id, s = flat[i], flat[i + 1]
  if not (csn and tonumber(s) == csn and id >= cid) then
    if scanned >= window or (want > 0 and matched >= want) then
      exhausted = 0
      break
    end
    scanned = scanned + 1
    ls, lid = s, id
    local m = redis.call('HMGET', P.meta .. id, 's', 't', 'p', 'pl', 'a')
    local ok = m[1] ~= false and redis.call('EXISTS', P.task .. id) == 1
    if ok then
      for f = 1, 5 do
        if want_f[f] ~= '' and m[f] ~= want_f[f] then ok = false end
      end
    end
    if ok then
      matched = matched + 1
      out[#out + 1] = id
      out[#out + 1] = s
    end
  end
end
local head = { exhausted, ls, lid, scanned }
for _, v in ipairs(out) do head[#head + 1] = v end
return head
`);

const encodeCursor = (score: string, id: string): string => Buffer.from(`${score}\n${id}`).toString('base64url');

function decodeCursor(cursor: string): { score: string; id: string } {
  const text = Buffer.from(cursor, 'base64url').toString();
  const nl = text.indexOf('\n');
  const score = text.slice(0, nl);
  if (nl < 1 || !Number.isFinite(Number(score)) || !/^-?[0-9.e+-]+$/.test(score))
    throw new InvalidCursorError('not a cursor this API gave out');
  return { score, id: text.slice(nl + 1) };
}

function checkPaging({ limit = 50, offset = 0 }: Paging): { limit: number; offset: number } {
  if (!Number.isSafeInteger(limit) || limit < 0) throw new RangeError(`limit must be a non-negative integer`);
  if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`offset must be a non-negative integer`);
  return { limit, offset };
}

const parseDoc = (raw: string): TaskDoc => JSON.parse(raw) as TaskDoc;

export class TaskStateManager {
  constructor(private readonly redis: Redis) {}

  /** The exact stored JSON, so HTTP can return the same bytes as `redis-cli GET celery:task:<id>`. */
  async getRaw(taskId: string): Promise<string | null> {
    return this.redis.get(taskKey(taskId));
  }

  async getTaskState(taskId: string): Promise<TaskDoc | null> {
    const raw = await this.getRaw(taskId);
    return raw === null ? null : parseDoc(raw);
  }

  /**
   * Newest first. With a status filter, "newest" is the last change (the status index is scored by updated_at:
   * the most recently failed come first); otherwise it is created_at (the type and parent indexes).
   */
  async listTasks(opts: TaskFilter & Paging = {}): Promise<Page<TaskDoc>> {
    const { limit, offset } = checkPaging(opts);
    const keys: string[] = [];
    if (opts.status !== undefined) keys.push(statusIndex(opts.status));
    if (opts.type !== undefined) keys.push(typeIndex(opts.type));
    if (opts.parent !== undefined) keys.push(parentIndex(opts.parent));
    if (keys.length === 0) return this.listAll(limit, offset);
    return this.page(keys, limit, offset);
  }

  /**
   * Tasks matching filters no single index covers, newest first, one bounded page at a time.
   *
   * Why a scan of the Redis indexes and not Temporal's visibility (PubflowPlatform/PubflowAccount search
   * attributes): the other lists and the desk read the mirror, and this keeps one source for them (the same
   * documents, no visibility lag between a publish and its row, no extra round trip per page); visibility has no
   * title, and its SQL order is running-first rather than by time. What keeps it cheap is the bound: a page looks at
   * most SCAN_WINDOW members of the time-ordered indexes (created_at: the type or parent index; updated_at: the
   * status indexes), checking each against its index record (one HMGET), and answers with a cursor. So a request
   * costs the same at 10,000 tasks as at 100, and a rare match may take several pages (`scanned` says how far each
   * went). A search that equals a task id answers that task at once.
   */
  async scanTasks(f: TaskScanFilter): Promise<ScanPage> {
    const limit = f.limit ?? 50;
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError('limit must be a positive integer');
    const search = f.search?.trim() ?? '';
    const time = f.time ?? 'created';
    if (search !== '' && f.cursor === undefined) {
      const exact = await this.getTaskState(search);
      if (exact && this.matches(exact, f, time)) return { items: [exact], next: null, scanned: 1 };
    }
    const sources =
      time === 'updated'
        ? f.status !== undefined
          ? [statusIndex(f.status)]
          : TASK_STATUSES.map(statusIndex)
        : f.parent !== undefined
          ? [parentIndex(f.parent)]
          : f.type !== undefined
            ? [typeIndex(f.type)]
            : TASK_TYPES.map(typeIndex);
    const cursor = f.cursor === undefined ? undefined : decodeCursor(f.cursor);
    const max = cursor ? cursor.score : f.until !== undefined ? String(f.until / 1000) : '+inf';
    const min = f.since !== undefined ? String(f.since / 1000) : '-inf';
    const needle = search.toLowerCase();
    const reply = (await SCAN.run(
      this.redis,
      [tempKey(), ...sources.map(() => tempKey()), ...sources],
      [
        PREFIXES_ARG,
        max,
        min,
        cursor?.score ?? '',
        cursor?.id ?? '',
        SCAN_WINDOW,
        // A title search decodes documents, here in JS: the script returns every candidate in its window.
        search === '' ? limit : 0,
        f.status ?? '',
        f.type ?? '',
        f.parent ?? '',
        f.platform ?? '',
        f.accountId ?? '',
      ],
    )) as [number, string, string, number, ...string[]];
    const [exhausted, lastScore, lastId, scanned, ...flat] = reply;
    const candidates: { id: string; score: string }[] = [];
    for (let i = 0; i < flat.length; i += 2) candidates.push({ id: flat[i] ?? '', score: flat[i + 1] ?? '' });
    const items: TaskDoc[] = [];
    let stoppedAt: { id: string; score: string } | null = null;
    for (let i = 0; i < candidates.length && stoppedAt === null; i += 200) {
      const chunk = candidates.slice(i, i + 200);
      const raws = await this.redis.mget(chunk.map((c) => taskKey(c.id)));
      for (let j = 0; j < chunk.length; j++) {
        const raw = raws[j];
        if (raw === null || raw === undefined) continue;
        const doc = parseDoc(raw);
        if (needle !== '' && !matchesText(doc, needle)) continue;
        items.push(doc);
        if (items.length === limit) {
          stoppedAt = chunk[j] ?? null;
          break;
        }
      }
    }
    // Stopped before the end of the candidates (a search): go on after the last one used; otherwise after the last
    // member the script looked at, unless it read the range to its end.
    const last = stoppedAt && stoppedAt !== candidates[candidates.length - 1] ? stoppedAt : null;
    const next = last
      ? encodeCursor(last.score, last.id)
      : exhausted === 1 || lastId === ''
        ? null
        : encodeCursor(lastScore, lastId);
    return { items, next, scanned: Number(scanned) };
  }

  /**
   * What waits on each account: its pending (queued or scheduled), running (uploading) and retry (backing off)
   * tasks, counted from those status indexes' members and their index records. Bounded like scanTasks: at most
   * SCAN_WINDOW members of each status are read (newest changes first); `complete` is false when some status had
   * more, and the counts are then lower bounds.
   */
  async waitingByAccount(): Promise<{ accounts: Map<string, AccountWaiting>; complete: boolean }> {
    const statuses = WAITING_STATUSES;
    const tops = await this.exec(statuses.map((s) => ['zrevrange', statusIndex(s), 0, SCAN_WINDOW - 1]));
    const cards = await this.exec(statuses.map((s) => ['zcard', statusIndex(s)]));
    const accounts = new Map<string, AccountWaiting>();
    let complete = true;
    for (let i = 0; i < statuses.length; i++) {
      const status = statuses[i]!;
      const members = tops[i] as string[];
      if (Number(cards[i]) > members.length) complete = false;
      if (members.length === 0) continue;
      const pipe = this.redis.pipeline();
      for (const id of members) pipe.hget(`${KEY_PREFIX.meta}${id}`, 'a');
      const replies = (await pipe.exec()) ?? [];
      replies.forEach(([err, account], j) => {
        if (err || typeof account !== 'string' || account === '') return;
        const w = accounts.get(account) ?? { pending: 0, running: 0, retry: 0, sample: [] };
        w[status]++;
        if (w.sample.length < 5) w.sample.push(members[j]!);
        accounts.set(account, w);
      });
    }
    return { accounts, complete };
  }

  private matches(doc: TaskDoc, f: TaskScanFilter, time: 'created' | 'updated'): boolean {
    const t = Date.parse(time === 'created' ? doc.created_at : doc.updated_at);
    return (
      (f.status === undefined || doc.status === f.status) &&
      (f.type === undefined || doc.task_type === f.type) &&
      (f.parent === undefined || doc.parent_task_id === f.parent) &&
      (f.platform === undefined || doc.platform === f.platform) &&
      (f.accountId === undefined || doc.account_id === f.accountId) &&
      (f.since === undefined || t >= f.since) &&
      (f.until === undefined || t <= f.until)
    );
  }

  /** The ZCARD of each status index (what `redis-cli ZCARD celery:index:status:<s>` shows), and their sum. */
  async getQueueStats(): Promise<QueueStats> {
    const counts = await this.exec(TASK_STATUSES.map((s) => ['zcard', statusIndex(s)]));
    const stats = { total: 0 } as QueueStats;
    TASK_STATUSES.forEach((s, i) => {
      stats[s] = Number(counts[i]);
      stats.total += stats[s];
    });
    return stats;
  }

  /** Open reviews, most recently failed first. */
  async listReviews(opts: ReviewFilter & Paging = {}): Promise<Page<TaskDoc>> {
    const { limit, offset } = checkPaging(opts);
    return this.page(reviewKeys(opts), limit, offset);
  }

  /** Every matching open review's task id (for a bulk retry), most recently failed first. */
  async listReviewTaskIds(filter: ReviewFilter = {}): Promise<string[]> {
    const [, ...ids] = (await PAGE.run(
      this.redis,
      [tempKey(), ...reviewKeys(filter)],
      [KEY_PREFIX.task, 0, -1, 'ids'],
    )) as [number, ...string[]];
    return ids;
  }

  private async page(indexes: string[], limit: number, offset: number): Promise<Page<TaskDoc>> {
    const [total, ...raws] = (await PAGE.run(
      this.redis,
      [tempKey(), ...indexes],
      [KEY_PREFIX.task, offset, limit, 'docs'],
    )) as [number, ...string[]];
    return { items: raws.map(parseDoc), total };
  }

  /**
   * No filter: merge the type indexes (a task is in exactly one), taking the top offset+limit of each,
   * rather than building their union on the server, which would cost a pass over every task.
   */
  private async listAll(limit: number, offset: number): Promise<Page<TaskDoc>> {
    // Counts and tops in one MULTI, so the total and the page are one snapshot.
    const replies = await this.exec(
      TASK_TYPES.flatMap((t) => [
        ['zcard', typeIndex(t)],
        ...(limit > 0 ? [['zrevrange', typeIndex(t), 0, offset + limit - 1, 'WITHSCORES']] : []),
      ]),
    );
    const step = limit > 0 ? 2 : 1;
    let total = 0;
    const tops: string[][] = [];
    for (let i = 0; i < replies.length; i += step) {
      total += Number(replies[i]);
      if (limit > 0) tops.push(replies[i + 1] as string[]);
    }
    if (limit === 0) return { items: [], total };
    const members: { id: string; score: number }[] = [];
    for (const flat of tops) {
      for (let j = 0; j < flat.length; j += 2) members.push({ id: flat[j] ?? '', score: Number(flat[j + 1]) });
    }
    // Same order as ZREVRANGE: score descending, then member descending.
    members.sort((a, b) => b.score - a.score || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
    const ids = members.slice(offset, offset + limit).map((m) => m.id);
    if (ids.length === 0) return { items: [], total };
    const raws = await this.redis.mget(ids.map(taskKey));
    return { items: raws.filter((r): r is string => r !== null).map(parseDoc), total };
  }

  /** One MULTI, so counts taken together are one snapshot. */
  private async exec(commands: (string | number)[][]): Promise<unknown[]> {
    const replies = await this.redis.multi(commands).exec();
    if (!replies) throw new Error('Redis transaction was aborted');
    return replies.map(([err, value]) => {
      if (err) throw err;
      return value;
    });
  }
}

/** Part of the task id or of the title, case-insensitive (`needle` is lower case). */
function matchesText(doc: TaskDoc, needle: string): boolean {
  const title = doc.data?.title;
  return (
    doc.task_id.toLowerCase().includes(needle) || (typeof title === 'string' && title.toLowerCase().includes(needle))
  );
}

function reviewKeys(f: ReviewFilter): string[] {
  const keys: string[] = [];
  if (f.platform !== undefined) keys.push(reviewPlatformIndex(f.platform));
  if (f.accountId !== undefined) keys.push(reviewAccountIndex(f.accountId));
  if (f.kind !== undefined) keys.push(reviewKindIndex(f.kind));
  if (f.batchId !== undefined) keys.push(reviewBatchIndex(f.batchId));
  return keys.length > 0 ? keys : [reviewOpenIndex()];
}
