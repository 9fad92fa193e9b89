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
 * Helpers shared by the scripts. JSON null decodes to `cjson.null`, which is truthy in Lua, so fields of a
 * stored document are read through `str()`.
 */
export const PRELUDE = `
local P = cjson.decode(ARGV[1])
local function str(v)
  if type(v) == 'string' and v ~= '' then return v end
  return nil
end
local function decode(raw)
  if not raw then return nil end
  local ok, d = pcall(cjson.decode, raw)
  if ok and type(d) == 'table' then return d end
  return nil
end
local function reviewKeys(platform, account, kind, batch)
  local ks = { P.reviewOpen }
  if platform then ks[#ks + 1] = P.reviewPlatform .. platform end
  if account then ks[#ks + 1] = P.reviewAccount .. account end
  if kind then ks[#ks + 1] = P.reviewKind .. kind end
  if batch then ks[#ks + 1] = P.reviewBatch .. batch end
  return ks
end
-- Every review index a stored document can be in, open or not (ZREM of a non-member is a no-op).
local function storedReviewKeys(d)
  local kind = nil
  if type(d.review) == 'table' then kind = str(d.review.kind) end
  return reviewKeys(str(d.platform), str(d.account_id), kind, str(d.parent_task_id))
end
-- The set of index keys a stored document belongs in: the same rules the write script applies.
local function docIndexKeys(d)
  local ks = {}
  local s, t, p = str(d.status), str(d.task_type), str(d.parent_task_id)
  if s then ks[P.status .. s] = true end
  if t then ks[P.type .. t] = true end
  if p then ks[P.parent .. p] = true end
  if type(d.review) == 'table' and d.review.open == true then
    for _, k in ipairs(reviewKeys(str(d.platform), str(d.account_id), str(d.review.kind), p)) do ks[k] = true end
  end
  return ks
end
`;
