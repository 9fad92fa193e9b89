/**
 * The API's gauges read at scrape time: task counts by status, open reviews by kind and platform, the oldest open
 * review's age (from the Redis projection) and the accounts that need a login (from their gate workflows' memos).
 *
 * Cheap at any size: the projection part is one script over the index sets' cardinalities (ZCARD), plus, for
 * reviews, one ZINTERSTORE per non-empty (kind, platform) pair, bounded by the open reviews; no document is read.
 */
import type { Client } from '@temporalio/client';
import type { Redis } from 'ioredis';
import { reviewKindIndex, reviewOpenIndex, reviewPlatformIndex, statusIndex, tempKey } from '../projection/keys';
import { LuaScript } from '../projection/lua';
import { accountGateId, GATE_MEMO_KEY, type GateMemo } from '../shared/definitions';
import { ERROR_KINDS, TASK_STATUSES, type TaskStatus } from '../shared/types';
import { WORKFLOW_TYPES } from '../shared/workflow-contracts';

/** Reviews of a platform pubflow has no driver for (one removed since) are counted under this platform label. */
export const OTHER_PLATFORM = 'other';

// KEYS: 1 scratch key, 2 the open-review index, then ARGV[1] status indexes, ARGV[2] kind indexes, ARGV[3] platform
// indexes. Returns { open, oldest score or false, status counts..., per kind: its count, then per platform its count }.
const SNAPSHOT = new LuaScript(`
local nS, nK, nP = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local out = { redis.call('ZCARD', KEYS[2]) }
local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
out[2] = oldest[2] or false
local k = 3
for i = 1, nS do out[#out + 1] = redis.call('ZCARD', KEYS[k]); k = k + 1 end
local kinds, plats = k, k + nK
local pc = {}
for j = 1, nP do pc[j] = redis.call('ZCARD', KEYS[plats + j - 1]) end
for i = 1, nK do
  local key = KEYS[kinds + i - 1]
  local kc = redis.call('ZCARD', key)
  out[#out + 1] = kc
  for j = 1, nP do
    local n = 0
    if kc > 0 and pc[j] > 0 then
      n = redis.call('ZINTERSTORE', KEYS[1], 2, key, KEYS[plats + j - 1])
      redis.call('DEL', KEYS[1])
    end
    out[#out + 1] = n
  end
end
return out
`);

export interface ProjectionSnapshot {
  tasks: Record<TaskStatus, number>;
  /** Open reviews by kind, then platform (with OTHER_PLATFORM for the rest); zeros included. */
  reviews: Array<{ kind: string; platform: string; count: number }>;
  reviewsOpen: number;
  /** Seconds since the oldest open review failed; 0 with none open. */
  oldestReviewAgeSeconds: number;
}

export async function readProjectionSnapshot(
  redis: Redis,
  platforms: readonly string[],
  now = Date.now(),
): Promise<ProjectionSnapshot> {
  const keys = [
    tempKey(),
    reviewOpenIndex(),
    ...TASK_STATUSES.map(statusIndex),
    ...ERROR_KINDS.map(reviewKindIndex),
    ...platforms.map(reviewPlatformIndex),
  ];
  const reply = (await SNAPSHOT.run(redis, keys, [TASK_STATUSES.length, ERROR_KINDS.length, platforms.length])) as (
    number | string | null
  )[];
  const [open, oldest] = reply;
  let i = 2;
  const tasks = {} as Record<TaskStatus, number>;
  for (const s of TASK_STATUSES) tasks[s] = Number(reply[i++]);
  const reviews: ProjectionSnapshot['reviews'] = [];
  for (const kind of ERROR_KINDS) {
    const total = Number(reply[i++]);
    let known = 0;
    for (const platform of platforms) {
      const count = Number(reply[i++]);
      known += count;
      reviews.push({ kind, platform, count });
    }
    reviews.push({ kind, platform: OTHER_PLATFORM, count: Math.max(0, total - known) });
  }
  const oldestScore = oldest === null || oldest === undefined ? undefined : Number(oldest);
  return {
    tasks,
    reviews,
    reviewsOpen: Number(open),
    // Scores are epoch seconds of review.failed_at.
    oldestReviewAgeSeconds: oldestScore === undefined ? 0 : Math.max(0, now / 1000 - oldestScore),
  };
}

/**
 * Accounts whose gate holds their queue until a new login: one visibility query for the running account gates (the
 * gate mirrors its login state in its memo), instead of a describe per account. Only this deployment's gates count:
 * the gate id names the task queue and the account.
 */
export async function countAccountsNeedingLogin(
  client: Client,
  accountIds: readonly string[],
  taskQueue: string,
): Promise<number> {
  const ours = new Set(accountIds.map((id) => accountGateId(id, taskQueue)));
  let n = 0;
  const query = `WorkflowType = '${WORKFLOW_TYPES.accountGate}' AND ExecutionStatus = 'Running'`;
  for await (const wf of client.workflow.list({ query })) {
    const memo = wf.memo?.[GATE_MEMO_KEY] as GateMemo | undefined;
    if (ours.has(wf.workflowId) && memo?.status === 'needs_login') n++;
  }
  return n;
}
