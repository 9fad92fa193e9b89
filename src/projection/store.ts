/**
 * The write side of the Redis projection: a mirror of Temporal's truth, written only by activities (and by the
 * reconciler, through the same path). Every state change is one atomic script (document + index moves + TTL),
 * applied only if its version is newer and the task has not been deleted.
 */
import type { Redis } from 'ioredis';
import type { Progress, TaskDoc, TaskStatus } from '../shared/types';
import { INDEX_PATTERNS, KEY_PREFIX, metaKey, statusIndex, taskKey, tombstoneKey } from './keys';
import { LuaScript, PRELUDE, PREFIXES_ARG } from './lua';

/** 7 days, as the Celery system kept task state. */
export const DEFAULT_TTL_SECONDS = 7 * 24 * 3600;

export interface ProjectionStoreOptions {
  /** Expiry of a task document, counted from its last change. Default 604800 (7 days). */
  ttlSeconds?: number;
}

export type WriteOutcome = 'applied' | 'stale';
/** `deleted`: refused because the task was deleted (its tombstone is newer than the document's created_at). */
export type ApplyOutcome = WriteOutcome | 'deleted';

export interface DeleteOptions {
  /** Leave a tombstone so that no later write brings the task back. Default true. */
  tombstone?: boolean;
  /** Delete only if the stored JSON is exactly this (what the caller read and judged); otherwise leave it. */
  ifUnchanged?: string;
}

export interface PruneResult {
  /** Index members looked at. */
  scanned: number;
  /** Index members removed because their document is gone (repairIndexes: or does not belong in that index). */
  removed: number;
}

// KEYS: 1 task, 2 its tombstone, 3 its index record.
// ARGV: 1 prefixes, 2 doc JSON, 3 version, 4 ttl, 5 id, 6 status, 7 type, 8 parent, 9 platform, 10 account,
// 11 review kind, 12 review open ('1'/'0'), 13 updated_at score, 14 created_at score, 15 review failed_at score,
// 16 the stored JSON this document may replace at the same version ('' = none: only a higher version is written),
// 17 '1' when 18-26 describe a document stored without a record that matches it (written by the previous code, or
// changed outside the store): 18 that document's exact JSON, 19-26 its record (META order), parsed by TypeScript.
// The document is never decoded here: the previous version and index fields come from the index record, so client
// text cjson cannot read changes nothing. The JSON is stored as given (re-encoding it with cjson would turn [] into
// {}). Returns 1 applied, 0 stale, 2 deleted (the task was deleted after this document's created_at), 3 the stored
// document has no record that matches it and 18-26 do not describe it (the caller reads it and calls again).
const WRITE = new LuaScript(`${PRELUDE}
local key, id = KEYS[1], ARGV[5]
local tomb = redis.call('GET', KEYS[2])
if tomb and (tonumber(tomb) == nil or tonumber(ARGV[14]) * 1000 <= tonumber(tomb)) then return 2 end
local raw = redis.call('GET', key)
local old = readMeta(KEYS[3], raw)
if not old and raw then
  if ARGV[17] ~= '1' or ARGV[18] ~= raw then return 3 end
  old = argMeta(19)
end
-- A record without its document (deleted by hand) still says which entries to move, but no longer outranks.
if old and raw then
  local v, nv = tonumber(old.v) or 0, tonumber(ARGV[3])
  local replace = v == nv and ARGV[16] ~= '' and raw == ARGV[16]
  if v >= nv and not replace then return 0 end
end

local status, ttype, parent = ARGV[6], ARGV[7], str(ARGV[8])
local open = ARGV[12] == '1'
redis.call('SET', key, ARGV[2], 'EX', ARGV[4])
writeMeta(KEYS[3], { v = ARGV[3], s = status, t = ttype, p = ARGV[8], pl = ARGV[9], a = ARGV[10], rk = ARGV[11],
  ro = ARGV[12] }, ARGV[2], ARGV[4])

if old then
  local s, t, p = str(old.s), str(old.t), str(old.p)
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

// KEYS: 1 task, 2 its tombstone, 3 its index record. ARGV: 1 prefixes, 2 id, 3 tombstone TTL (0 = none),
// 4 expected JSON ('' = any), 5-14 as WRITE's 17-26 (a document stored without an index record).
// Index entries are found from the index record, never by decoding the document. The tombstone holds the deletion
// time (Redis clock, epoch ms), raised to the stored document's created_at (its type-index score) so that clock
// skew between hosts can never let the deleted document's own writes through. A tombstone is set even when no
// document is stored (Redis was wiped, then the task deleted). Returns 1 deleted, 0 nothing stored, -1 changed
// since it was read, 3 as WRITE's 3.
const DELETE = new LuaScript(`${PRELUDE}
local raw = redis.call('GET', KEYS[1])
if ARGV[4] ~= '' and raw ~= ARGV[4] then return -1 end
local id = ARGV[2]
local m = readMeta(KEYS[3], raw)
if not m and raw then
  if ARGV[5] ~= '1' or ARGV[6] ~= raw then return 3 end
  m = argMeta(7)
end
local ttl = tonumber(ARGV[3])
local tomb = 0
if ttl > 0 then
  local now = redis.call('TIME')
  tomb = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  local prev = tonumber(redis.call('GET', KEYS[2]) or '')
  if prev and prev > tomb then tomb = prev end
end
if m then
  local s, t, p = str(m.s), str(m.t), str(m.p)
  if t and ttl > 0 then
    local created = tonumber(redis.call('ZSCORE', P.type .. t, id) or '')
    if created and math.ceil(created * 1000) > tomb then tomb = math.ceil(created * 1000) end
  end
  if s then redis.call('ZREM', P.status .. s, id) end
  if t then redis.call('ZREM', P.type .. t, id) end
  if p then redis.call('ZREM', P.parent .. p, id) end
  for _, k in ipairs(storedReviewKeys(m)) do redis.call('ZREM', k, id) end
end
if ttl > 0 then redis.call('SET', KEYS[2], string.format('%d', tomb), 'EX', ttl) end
redis.call('DEL', KEYS[3])
if not raw then return 0 end
redis.call('DEL', KEYS[1])
return 1
`);

// Compare-and-set on the exact stored bytes. KEYS: task, its status index, its index record. ARGV: 1 expected JSON,
// 2 new JSON, 3 ttl, 4 updated_at score, 5 id. The record's fields do not change; its TTL follows the document's.
const PROGRESS_CAS = new LuaScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
if redis.call('HGET', KEYS[3], 'h') == redis.sha1hex(ARGV[1]) then
  redis.call('HSET', KEYS[3], 'h', redis.sha1hex(ARGV[2]))
end
redis.call('EXPIRE', KEYS[3], ARGV[3])
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

// KEYS: one index. ARGV: 1 prefixes, 2.. members. Removes each member whose document is gone or does not belong
// in this index (by the write script's own rules, read from the index record), checked and removed in one step like
// PRUNE_CHUNK. Returns { removed, id... }: the ids whose document has no record that matches it (written by the
// previous code, or changed outside the store), left alone here; the store gives them one and runs them again.
const REPAIR_CHUNK = new LuaScript(`${PRELUDE}
local removed, out = 0, { 0 }
for i = 2, #ARGV do
  local id = ARGV[i]
  local raw = redis.call('GET', P.task .. id)
  if not raw then
    removed = removed + redis.call('ZREM', KEYS[1], id)
  else
    local m = readMeta(P.meta .. id, raw)
    if not m then
      out[#out + 1] = id
    elseif not metaIndexKeys(m)[KEYS[1]] then
      removed = removed + redis.call('ZREM', KEYS[1], id)
    end
  end
end
out[1] = removed
return out
`);

// Gives a document without a matching record (see REPAIR_CHUNK) one, if it is still exactly the JSON that was read.
// KEYS: 1 task, 2 its index record. ARGV: 1 prefixes, 2 expected JSON, 3-10 the record (META order).
// Returns 1 written, 0 changed or already has one.
const BACKFILL_META = new LuaScript(`${PRELUDE}
if redis.call('GET', KEYS[1]) ~= ARGV[2] or readMeta(KEYS[2], ARGV[2]) then return 0 end
redis.call('DEL', KEYS[2])
writeMeta(KEYS[2], argMeta(3), ARGV[2], nil)
local pttl = redis.call('PTTL', KEYS[1])
if pttl > 0 then redis.call('PEXPIRE', KEYS[2], pttl) end
return 1
`);

/**
 * The index record's fields, in the order the scripts read them (META in lua.ts): version, status, type, parent,
 * platform, account, review kind, review open ('1'/'0'). Empty string = none.
 */
export function metaFields(doc: TaskDoc): string[] {
  return [
    String(doc.version),
    doc.status,
    doc.task_type,
    doc.parent_task_id ?? '',
    doc.platform ?? '',
    doc.account_id ?? '',
    doc.review?.kind ?? '',
    doc.review?.open ? '1' : '0',
  ];
}

const text = (v: unknown): string => (typeof v === 'string' ? v : '');

/**
 * The record of a document stored by the previous code, read the way its write script read it (only non-empty
 * strings count; a version that is not a number is 0), but decoded by JSON.parse, which reads any JSON JS wrote.
 * A value that is not a JSON object at all gets version -1 and no index fields: anything may replace it, and the
 * reconciler's index pass removes whatever entries it had.
 */
export function legacyMetaFields(raw: string): string[] {
  let d: unknown;
  try {
    d = JSON.parse(raw);
  } catch {
    d = null;
  }
  if (typeof d !== 'object' || d === null || Array.isArray(d)) return ['-1', '', '', '', '', '', '', '0'];
  const o = d as Record<string, unknown>;
  const n = typeof o.version === 'number' ? o.version : typeof o.version === 'string' ? Number(o.version) : NaN;
  const review = typeof o.review === 'object' && o.review !== null ? (o.review as Record<string, unknown>) : {};
  return [
    String(Number.isFinite(n) ? n : 0),
    text(o.status),
    text(o.task_type),
    text(o.parent_task_id),
    text(o.platform),
    text(o.account_id),
    text(review.kind),
    review.open === true ? '1' : '0',
  ];
}

/** Bounds the read-and-retry when a document without an index record keeps changing under us. */
const LEGACY_ATTEMPTS = 5;
const NO_LEGACY = ['0', '', '', '', '', '', '', '', '', ''];

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
  /** Expiry of a document after its last change. */
  readonly ttlSeconds: number;

  constructor(
    /** The client the store writes through (the reconciler scans with it too). */
    readonly redis: Redis,
    opts: ProjectionStoreOptions = {},
  ) {
    this.ttlSeconds = opts.ttlSeconds ?? DEFAULT_TTL_SECONDS;
    if (!Number.isInteger(this.ttlSeconds) || this.ttlSeconds <= 0) {
      throw new RangeError(`ttlSeconds must be a positive integer, got ${opts.ttlSeconds}`);
    }
    // The scripts build index keys themselves; an ioredis keyPrefix would apply to KEYS only and split the schema.
    if (redis.options.keyPrefix) throw new Error('ProjectionStore needs a Redis client without keyPrefix');
  }

  /**
   * Store the document and move its index entries, unless the stored version is newer, or the same version with
   * the same bytes, or the task was deleted (all 'stale').
   *
   * The same version with other bytes replaces what is stored. A workflow computes each version once per workflow
   * task, but a workflow task that ran its projection write and was then lost (Temporal restarted, the worker died
   * before completing it) runs again later and computes that version again, with other timestamps: only the second
   * one is in the history. Its write comes after the lost one's, so it wins here instead of leaving the mirror on a
   * run Temporal never recorded until the reconciler's next pass (which still corrects the rare opposite order:
   * src/service/reconciler.ts). Writes of one recorded version are byte-identical, so nothing flip-flops. The
   * replacement is a compare-and-set on the bytes read: a write in between wins.
   */
  async write(doc: TaskDoc): Promise<WriteOutcome> {
    const outcome = await this.apply(doc);
    if (outcome !== 'stale') return outcome === 'applied' ? 'applied' : 'stale';
    const stored = await this.redis.get(taskKey(doc.task_id));
    if (stored === null || stored === JSON.stringify(doc)) return 'stale';
    let storedVersion: unknown;
    try {
      storedVersion = (JSON.parse(stored) as { version?: unknown }).version;
    } catch {
      return 'stale';
    }
    if (storedVersion !== doc.version) return 'stale';
    return (await this.apply(doc, { replacing: stored })) === 'applied' ? 'applied' : 'stale';
  }

  /**
   * `write`, telling a deleted task apart from a stale version. `ttlSeconds` overrides the expiry (the reconciler
   * gives a rebuilt document only what was left of its original 7 days). `replacing`: the stored JSON, exactly as
   * read, that this document replaces at the same version (the reconciler correcting a closed task's document);
   * if anything wrote in between, nothing is written.
   */
  async apply(doc: TaskDoc, opts: { ttlSeconds?: number; replacing?: string } = {}): Promise<ApplyOutcome> {
    if (!Number.isSafeInteger(doc.version) || doc.version < 0) {
      throw new RangeError(`task ${doc.task_id}: version must be a non-negative integer, got ${doc.version}`);
    }
    const ttl = opts.ttlSeconds ?? this.ttlSeconds;
    if (!Number.isInteger(ttl) || ttl <= 0) throw new RangeError(`ttlSeconds must be a positive integer, got ${ttl}`);
    const review = doc.review?.open ? doc.review : null;
    const keys = [taskKey(doc.task_id), tombstoneKey(doc.task_id), metaKey(doc.task_id)];
    const args = [
      PREFIXES_ARG,
      JSON.stringify(doc),
      doc.version,
      ttl,
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
      opts.replacing ?? '',
    ];
    const outcome = await this.withLegacy(doc.task_id, (legacy) => WRITE.run(this.redis, keys, [...args, ...legacy]));
    return outcome === 1 ? 'applied' : outcome === 2 ? 'deleted' : 'stale';
  }

  /**
   * Runs a script that answers 3 when the stored document has no index record (it was written by the previous
   * code): the document is then read and parsed here, by JSON.parse, and the script runs again with that exact
   * JSON and its record, which it uses only if the document is still byte-for-byte the same.
   */
  private async withLegacy(taskId: string, run: (legacy: string[]) => Promise<unknown>): Promise<unknown> {
    let legacy = NO_LEGACY;
    for (let i = 0; i < LEGACY_ATTEMPTS; i++) {
      const outcome = await run(legacy);
      if (outcome !== 3) return outcome;
      const raw = await this.redis.get(taskKey(taskId));
      legacy = raw === null ? NO_LEGACY : ['1', raw, ...legacyMetaFields(raw)];
    }
    throw new Error(`task ${taskId}: its document kept changing while it was being given an index record`);
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
        [key, statusIndex(doc.status), metaKey(taskId)],
        [raw, JSON.stringify(next), this.ttlSeconds, epochSeconds(updatedAt, 'updated_at'), taskId],
      );
      if (swapped === 1) return true;
    }
    return false;
  }

  /**
   * Remove the document and every index entry it has, and (by default) leave a tombstone for the status TTL, so
   * that a write still in flight, or the reconciler, never brings the task back. Returns whether a document was
   * removed.
   */
  async delete(taskId: string, opts: DeleteOptions = {}): Promise<boolean> {
    const keys = [taskKey(taskId), tombstoneKey(taskId), metaKey(taskId)];
    const args = [PREFIXES_ARG, taskId, opts.tombstone === false ? 0 : this.ttlSeconds, opts.ifUnchanged ?? ''];
    const result = await this.withLegacy(taskId, (legacy) => DELETE.run(this.redis, keys, [...args, ...legacy]));
    return result === 1;
  }

  /** Whether the task has a live tombstone (it was deleted within the status TTL). */
  async isDeleted(taskId: string): Promise<boolean> {
    return (await this.redis.exists(tombstoneKey(taskId))) === 1;
  }

  /** Remove index members whose document has expired: the scheduled cleanup the Celery guide asked for. */
  async prune(opts: { batchSize?: number } = {}): Promise<PruneResult> {
    return this.walkIndexes(
      async (key, members) => Number(await PRUNE_CHUNK.run(this.redis, [key], [KEY_PREFIX.task, ...members])),
      opts.batchSize ?? 500,
    );
  }

  /**
   * `prune`, plus: remove members whose index record says they do not belong in that index (a status the task has
   * left, a review that is closed). The reconciler's index pass. A document stored by the previous code (no index
   * record) is given one first, from its JSON parsed here, then checked like the rest.
   */
  async repairIndexes(opts: { batchSize?: number } = {}): Promise<PruneResult> {
    return this.walkIndexes((key, members) => this.repairChunk(key, members), opts.batchSize ?? 500);
  }

  private async repairChunk(key: string, members: string[], again = true): Promise<number> {
    const [removed, ...legacy] = (await REPAIR_CHUNK.run(this.redis, [key], [PREFIXES_ARG, ...members])) as [
      number,
      ...string[],
    ];
    if (legacy.length === 0 || !again) return removed;
    for (const id of legacy) {
      const raw = await this.redis.get(taskKey(id));
      if (raw === null) continue;
      await BACKFILL_META.run(this.redis, [taskKey(id), metaKey(id)], [PREFIXES_ARG, raw, ...legacyMetaFields(raw)]);
    }
    // Once more for those: a document that changed meanwhile was written by this code and has its record now.
    return removed + (await this.repairChunk(key, legacy, false));
  }

  private async walkIndexes(
    run: (key: string, members: string[]) => Promise<number>,
    batchSize: number,
  ): Promise<PruneResult> {
    const total: PruneResult = { scanned: 0, removed: 0 };
    for (const pattern of INDEX_PATTERNS) {
      let cursor = '0';
      do {
        const [next, keys] = await this.redis.scan(cursor, 'MATCH', pattern, 'COUNT', batchSize, 'TYPE', 'zset');
        cursor = next;
        for (const key of keys) {
          const r = await this.walkIndex(run, key, batchSize);
          total.scanned += r.scanned;
          total.removed += r.removed;
        }
      } while (cursor !== '0');
    }
    return total;
  }

  private async walkIndex(
    run: (key: string, members: string[]) => Promise<number>,
    key: string,
    batchSize: number,
  ): Promise<PruneResult> {
    const result: PruneResult = { scanned: 0, removed: 0 };
    let cursor = '0';
    do {
      const [next, flat] = await this.redis.zscan(key, cursor, 'COUNT', batchSize);
      cursor = next;
      const members = flat.filter((_, i) => i % 2 === 0);
      if (members.length === 0) continue;
      result.scanned += members.length;
      result.removed += await run(key, members);
    } while (cursor !== '0');
    return result;
  }
}
