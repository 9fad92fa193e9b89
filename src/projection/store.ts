/**
 * The write side of the Redis projection: a mirror of Temporal's truth, written only by activities.
 * Every state change is one atomic script (document + index moves + TTL), applied only if its version is newer.
 */
import type { Redis } from 'ioredis';
import type { Progress, TaskDoc, TaskStatus } from '../shared/types';
import { INDEX_PATTERNS, KEY_PREFIX, statusIndex, taskKey } from './keys';
import { LuaScript, PRELUDE, PREFIXES_ARG } from './lua';

/** 7 days, as the Celery system kept task state. */
export const DEFAULT_TTL_SECONDS = 7 * 24 * 3600;

export interface ProjectionStoreOptions {
  /** Expiry of a task document, counted from its last change. Default 604800 (7 days). */
  ttlSeconds?: number;
}

export type WriteOutcome = 'applied' | 'stale';

export interface PruneResult {
  /** Index members looked at. */
  scanned: number;
  /** Index members removed because their document is gone. */
  removed: number;
}

// ARGV: 1 prefixes, 2 doc JSON, 3 version, 4 ttl, 5 id, 6 status, 7 type, 8 parent, 9 platform, 10 account,
// 11 review kind, 12 review open ('1'/'0'), 13 updated_at score, 14 created_at score, 15 review failed_at score.
// The JSON is stored as given: re-encoding it with cjson would turn [] into {}.
const WRITE = new LuaScript(`${PRELUDE}
local key, id = KEYS[1], ARGV[5]
local old = decode(redis.call('GET', key))
if old and (tonumber(old.version) or 0) >= tonumber(ARGV[3]) then return 0 end

local status, ttype, parent = ARGV[6], ARGV[7], str(ARGV[8])
local open = ARGV[12] == '1'
redis.call('SET', key, ARGV[2], 'EX', ARGV[4])

if old then
  local s, t, p = str(old.status), str(old.task_type), str(old.parent_task_id)
  if s and s ~= status then redis.call('ZREM', P.status .. s, id) end
  if t and t ~= ttype then redis.call('ZREM', P.type .. t, id) end
  if p and p ~= parent then redis.call('ZREM', P.parent .. p, id) end
end
redis.call('ZADD', P.status .. status, ARGV[13], id)
redis.call('ZADD', P.type .. ttype, ARGV[14], id)
if parent then redis.call('ZADD', P.parent .. parent, ARGV[14], id) end

local newReview = reviewKeys(str(ARGV[9]), str(ARGV[10]), str(ARGV[11]), parent)
local keep, drop = {}, {}
if open then
  for _, k in ipairs(newReview) do
    keep[k] = true
    redis.call('ZADD', k, ARGV[15], id)
  end
else
  for _, k in ipairs(newReview) do drop[#drop + 1] = k end
end
if old then
  for _, k in ipairs(storedReviewKeys(old)) do drop[#drop + 1] = k end
end
for _, k in ipairs(drop) do
  if not keep[k] then redis.call('ZREM', k, id) end
end
return 1
`);

// ARGV: 1 prefixes, 2 id. Index entries are found from the stored document itself.
const DELETE = new LuaScript(`${PRELUDE}
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local d, id = decode(raw), ARGV[2]
if d then
  local s, t, p = str(d.status), str(d.task_type), str(d.parent_task_id)
  if s then redis.call('ZREM', P.status .. s, id) end
  if t then redis.call('ZREM', P.type .. t, id) end
  if p then redis.call('ZREM', P.parent .. p, id) end
  for _, k in ipairs(storedReviewKeys(d)) do redis.call('ZREM', k, id) end
end
redis.call('DEL', KEYS[1])
return 1
`);

// Compare-and-set on the exact stored bytes. KEYS: task, its status index. ARGV: 1 expected JSON, 2 new JSON,
// 3 ttl, 4 updated_at score, 5 id.
const PROGRESS_CAS = new LuaScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
redis.call('ZADD', KEYS[2], 'XX', ARGV[4], ARGV[5])
return 1
`);

// KEYS: one index. ARGV: 1 task key prefix, 2.. members. Checked and removed in one step, so a task written
// again between the scan and the removal keeps its entry.
const PRUNE_CHUNK = new LuaScript(`
local removed = 0
for i = 2, #ARGV do
  if redis.call('EXISTS', ARGV[1] .. ARGV[i]) == 0 then
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return removed
`);

/** Progress arrives while running, and while pending for waiting stages such as 'waiting_for_account'. */
const PROGRESS_STATUSES: ReadonlySet<TaskStatus> = new Set(['pending', 'running']);
const PROGRESS_ATTEMPTS = 5;

/** ISO 8601 to epoch seconds (with milliseconds as the fraction), as the sorted-set score. */
export function epochSeconds(iso: string, field: string): string {
  const ms = Date.parse(iso);
  if (!Number.isFinite(ms)) throw new TypeError(`${field} is not a valid timestamp: ${JSON.stringify(iso)}`);
  return String(ms / 1000);
}

export class ProjectionStore {
  private readonly ttlSeconds: number;

  constructor(
    private readonly redis: Redis,
    opts: ProjectionStoreOptions = {},
  ) {
    this.ttlSeconds = opts.ttlSeconds ?? DEFAULT_TTL_SECONDS;
    if (!Number.isInteger(this.ttlSeconds) || this.ttlSeconds <= 0) {
      throw new RangeError(`ttlSeconds must be a positive integer, got ${opts.ttlSeconds}`);
    }
    // The scripts build index keys themselves; an ioredis keyPrefix would apply to KEYS only and split the schema.
    if (redis.options.keyPrefix) throw new Error('ProjectionStore needs a Redis client without keyPrefix');
  }

  /** Store the document and move its index entries, unless the stored version is the same or newer. */
  async write(doc: TaskDoc): Promise<WriteOutcome> {
    if (!Number.isSafeInteger(doc.version) || doc.version < 0) {
      throw new RangeError(`task ${doc.task_id}: version must be a non-negative integer, got ${doc.version}`);
    }
    const review = doc.review?.open ? doc.review : null;
    const applied = await WRITE.run(
      this.redis,
      [taskKey(doc.task_id)],
      [
        PREFIXES_ARG,
        JSON.stringify(doc),
        doc.version,
        this.ttlSeconds,
        doc.task_id,
        doc.status,
        doc.task_type,
        doc.parent_task_id ?? '',
        doc.platform ?? '',
        doc.account_id ?? '',
        doc.review?.kind ?? '',
        review ? '1' : '0',
        epochSeconds(doc.updated_at, 'updated_at'),
        epochSeconds(doc.created_at, 'created_at'),
        review ? epochSeconds(review.failed_at, 'review.failed_at') : '0',
      ],
    );
    return applied === 1 ? 'applied' : 'stale';
  }

  /**
   * Update `progress` and `updated_at` of the current attempt; the version is left alone, so progress never
   * outranks a state change. Optimistic: the document is encoded by JS and swapped in only if the stored bytes are
   * still the ones read. (A compare-and-set script rather than WATCH/MULTI: WATCH is per connection and the client
   * is shared, so a concurrent EXEC on it would silently drop our watch.)
   */
  async writeProgress(taskId: string, attempt: number, progress: Progress): Promise<boolean> {
    const key = taskKey(taskId);
    for (let i = 0; i < PROGRESS_ATTEMPTS; i++) {
      const raw = await this.redis.get(key);
      if (raw === null) return false;
      const doc = JSON.parse(raw) as TaskDoc;
      if (!PROGRESS_STATUSES.has(doc.status) || doc.attempt !== attempt) return false;
      // Never move updated_at backwards when this worker's clock is behind the writer's.
      const now = Date.now();
      const prev = Date.parse(doc.updated_at);
      const updatedAt = Number.isFinite(prev) && prev > now ? doc.updated_at : new Date(now).toISOString();
      const next: TaskDoc = {
        ...doc,
        progress: { percent: progress.percent, stage: progress.stage },
        updated_at: updatedAt,
      };
      const swapped = await PROGRESS_CAS.run(
        this.redis,
        [key, statusIndex(doc.status)],
        [raw, JSON.stringify(next), this.ttlSeconds, epochSeconds(updatedAt, 'updated_at'), taskId],
      );
      if (swapped === 1) return true;
    }
    return false;
  }

  /** Remove the document and every index entry it has. Returns whether it existed. */
  async delete(taskId: string): Promise<boolean> {
    const existed = await DELETE.run(this.redis, [taskKey(taskId)], [PREFIXES_ARG, taskId]);
    return existed === 1;
  }

  /** Remove index members whose document has expired: the scheduled cleanup the Celery guide asked for. */
  async prune(opts: { batchSize?: number } = {}): Promise<PruneResult> {
    const batchSize = opts.batchSize ?? 500;
    const total: PruneResult = { scanned: 0, removed: 0 };
    for (const pattern of INDEX_PATTERNS) {
      let cursor = '0';
      do {
        const [next, keys] = await this.redis.scan(cursor, 'MATCH', pattern, 'COUNT', batchSize, 'TYPE', 'zset');
        cursor = next;
        for (const key of keys) {
          const r = await this.pruneIndex(key, batchSize);
          total.scanned += r.scanned;
          total.removed += r.removed;
        }
      } while (cursor !== '0');
    }
    return total;
  }

  private async pruneIndex(key: string, batchSize: number): Promise<PruneResult> {
    const result: PruneResult = { scanned: 0, removed: 0 };
    let cursor = '0';
    do {
      const [next, flat] = await this.redis.zscan(key, cursor, 'COUNT', batchSize);
      cursor = next;
      const members = flat.filter((_, i) => i % 2 === 0);
      if (members.length === 0) continue;
      result.scanned += members.length;
      result.removed += Number(await PRUNE_CHUNK.run(this.redis, [key], [KEY_PREFIX.task, ...members]));
    } while (cursor !== '0');
    return result;
  }
}
