/**
 * Lua scripts run with EVALSHA, falling back to EVAL when the server does not have them cached yet
 * (the same thing ioredis `defineCommand` does). We keep our own small runner rather than `defineCommand`
 * because the Redis client is injected and shared: defining commands would mutate it and need `any` casts.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { KEY_PREFIX } from './keys';

export class LuaScript {
  readonly sha: string;

  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(redis: Redis, keys: string[], args: (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (err instanceof Error && err.message.startsWith('NOSCRIPT')) {
        return redis.eval(this.source, keys.length, ...keys, ...args);
      }
      throw err;
    }
  }
}

/** Scripts that start with PRELUDE take the key prefixes as ARGV[1], so keys.ts stays the only place that spells them. */
export const PREFIXES_ARG = JSON.stringify(KEY_PREFIX);

/**
 * Helpers shared by the scripts. No script decodes a task document: it holds client text that cjson may refuse
 * (a lone UTF-16 surrogate, nesting past cjson's depth limit), and an index move that depends on decoding it can
 * leave a task in several indexes or none. The fields the index moves need come from the index record
 * (`KEY_PREFIX.meta`, a hash) or as ARGV computed in TypeScript. ARGV[1] (our own key prefixes) is the only JSON
 * decoded here.
 */
export const PRELUDE = `
local P = cjson.decode(ARGV[1])
local function str(v)
  if type(v) == 'string' and v ~= '' then return v end
  return nil
end
-- The index record's fields, in this order (see metaFields in store.ts), plus 'h': the SHA-1 of the document JSON
-- it describes, so a document changed behind the store's back (a SET by hand) is noticed rather than trusted.
local META = { 'v', 's', 't', 'p', 'pl', 'a', 'rk', 'ro' }
-- The record of the document raw (nil: no document), or nil when there is none or it describes other bytes.
local function readMeta(key, raw)
  local h = redis.call('HMGET', key, 'h', unpack(META))
  if not h[1] then return nil end
  if raw and h[1] ~= redis.sha1hex(raw) then return nil end
  local m = {}
  for i, f in ipairs(META) do m[f] = h[i + 1] or '' end
  return m
end
-- A record from ARGV[first .. first + 7], in META order.
local function argMeta(first)
  local m = {}
  for i, f in ipairs(META) do m[f] = ARGV[first + i - 1] end
  return m
end
-- Replaces the record with m, describing the document raw. ttl: seconds, as the document's EX; nil leaves
-- the expiry to the caller.
local function writeMeta(key, m, raw, ttl)
  local args = { 'h', redis.sha1hex(raw) }
  for _, f in ipairs(META) do
    args[#args + 1] = f
    args[#args + 1] = m[f]
  end
  redis.call('HSET', key, unpack(args))
  if ttl then redis.call('EXPIRE', key, ttl) end
end
local function reviewKeys(platform, account, kind, batch)
  local ks = { P.reviewOpen }
  if platform then ks[#ks + 1] = P.reviewPlatform .. platform end
  if account then ks[#ks + 1] = P.reviewAccount .. account end
  if kind then ks[#ks + 1] = P.reviewKind .. kind end
  if batch then ks[#ks + 1] = P.reviewBatch .. batch end
  return ks
end
-- Every review index a stored task can be in, open or not (ZREM of a non-member is a no-op).
local function storedReviewKeys(m)
  return reviewKeys(str(m.pl), str(m.a), str(m.rk), str(m.p))
end
-- The set of index keys a stored task belongs in: the same rules the write script applies.
local function metaIndexKeys(m)
  local ks = {}
  local s, t, p = str(m.s), str(m.t), str(m.p)
  if s then ks[P.status .. s] = true end
  if t then ks[P.type .. t] = true end
  if p then ks[P.parent .. p] = true end
  if m.ro == '1' then
    for _, k in ipairs(reviewKeys(str(m.pl), str(m.a), str(m.rk), p)) do ks[k] = true end
  end
  return ks
end
`;
