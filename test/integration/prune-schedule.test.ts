/**
 * The prune Schedule on a real dev server: index members whose documents have expired are removed by the
 * pruneProjectionWorkflow that the Schedule starts.
 */
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { ensureSchedules, PRUNE_SCHEDULE_ID } from '../../src/schedules';
import { makeDoc } from '../projection/fixtures';
import { eventually, projectionHarness, withWorker, type Harness } from '../helpers/harness';
import { startDevServer, startRedis, type DevServer, type RedisServer } from '../helpers/servers';

let dev: DevServer;
let redisServer: RedisServer;
let h: Harness;
let connection: Connection;
let native: NativeConnection;

beforeAll(async () => {
  [dev, redisServer] = await Promise.all([startDevServer(), startRedis()]);
  h = projectionHarness(redisServer.url);
  connection = await Connection.connect({ address: dev.address });
  native = await NativeConnection.connect({ address: dev.address });
});

afterAll(async () => {
  await native?.close();
  await connection?.close();
  await h?.close();
  await Promise.all([dev?.destroy(), redisServer?.destroy()]);
});

test('the prune Schedule removes index entries whose documents expired, and keeps live ones', async () => {
  const live = makeDoc({ task_id: `live-${randomUUID()}`, status: 'success' });
  const gone = makeDoc({ task_id: `gone-${randomUUID()}`, status: 'success' });
  await h.store.write(live);
  await h.store.write(gone);
  await h.redis.del(`celery:task:${gone.task_id}`); // as if its 7-day TTL had run out
  const client = new Client({ connection });

  await withWorker({ connection: native, harness: h, drivers: [] }, async (taskQueue) => {
    expect(await ensureSchedules(client, { taskQueue, pruneIntervalMs: 1000 })).toBe('created');
    expect(await ensureSchedules(client, { taskQueue, pruneIntervalMs: 1000 })).toBe('exists');
    await eventually(async () => (await h.redis.zscore('celery:index:status:success', gone.task_id)) === null, 30_000);
    expect(await h.redis.zscore('celery:index:status:success', live.task_id)).not.toBeNull();
    const desc = await client.schedule.getHandle(PRUNE_SCHEDULE_ID).describe();
    expect(desc.info.recentActions.length).toBeGreaterThan(0);
    await client.schedule.getHandle(PRUNE_SCHEDULE_ID).delete();
  });
});
