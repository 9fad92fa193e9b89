import { randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import { INDEX_PATTERNS } from '../../src/projection/keys';
import { ProjectionStore } from '../../src/projection/store';
import type { ReviewRecord, TaskDoc } from '../../src/shared/types';
import { startRedis, type RedisServer } from '../helpers/servers';

export interface ProjectionRedis {
  server: RedisServer;
  redis: Redis;
  store: ProjectionStore;
  close(): Promise<void>;
}

/** A file's own redis-server, a client and a store on it (use with perFile: beforeAll starts, afterAll stops). */
export async function startProjectionRedis(): Promise<ProjectionRedis> {
  const server = await startRedis();
  const redis = new Redis(server.url);
  return {
    server,
    redis,
    store: new ProjectionStore(redis),
    async close() {
      await redis.quit();
      await server.destroy();
    },
  };
}

export const uniqueId = (prefix = 'task'): string => `${prefix}-${randomUUID()}`;

const BASE_MS = Date.parse('2024-05-01T00:00:00.000Z');
/** An ISO timestamp `seconds` after a fixed base. */
export const at = (seconds: number): string => new Date(BASE_MS + seconds * 1000).toISOString();
/** The sorted-set score the projection uses for a timestamp. */
export const scoreOf = (iso: string): number => Date.parse(iso) / 1000;

export function makeReview(overrides: Partial<ReviewRecord> = {}): ReviewRecord {
  return {
    open: true,
    reason: 'upload failed',
    kind: 'AuthExpired',
    message: 'cookie expired',
    attempt: 1,
    failed_at: at(10),
    expires_at: at(7 * 24 * 3600),
    ...overrides,
  };
}

export function makeDoc(overrides: Partial<TaskDoc> = {}): TaskDoc {
  const id = overrides.task_id ?? uniqueId();
  return {
    task_id: id,
    task_type: 'publish',
    // Empty arrays on purpose: they must survive the round trip as arrays.
    data: { platform: 'local', accountId: 'acc-1', title: 'A title', tags: [] },
    priority: 5,
    parent_task_id: null,
    status: 'pending',
    created_at: at(0),
    started_at: null,
    completed_at: null,
    updated_at: at(0),
    error_message: null,
    result: null,
    retry_count: 0,
    version: 1,
    attempt: 1,
    progress: null,
    review: null,
    platform: 'local',
    account_id: 'acc-1',
    workflow_id: id,
    run_id: null,
    scheduled_for: null,
    error_kind: null,
    ...overrides,
  };
}

/** Every index key (found with SCAN) that has `taskId` as a member, sorted. */
export async function indexesOf(redis: Redis, taskId: string): Promise<string[]> {
  const found: string[] = [];
  for (const pattern of INDEX_PATTERNS) {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000, 'TYPE', 'zset');
      cursor = next;
      for (const key of keys) if ((await redis.zscore(key, taskId)) !== null) found.push(key);
    } while (cursor !== '0');
  }
  return [...new Set(found)].sort();
}
