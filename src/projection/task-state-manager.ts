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
import { LuaScript } from './lua';

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

function reviewKeys(f: ReviewFilter): string[] {
  const keys: string[] = [];
  if (f.platform !== undefined) keys.push(reviewPlatformIndex(f.platform));
  if (f.accountId !== undefined) keys.push(reviewAccountIndex(f.accountId));
  if (f.kind !== undefined) keys.push(reviewKindIndex(f.kind));
  if (f.batchId !== undefined) keys.push(reviewBatchIndex(f.batchId));
  return keys.length > 0 ? keys : [reviewOpenIndex()];
}
