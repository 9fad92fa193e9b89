/**
 * The prune Schedule on a real dev server: index members whose documents have expired are removed by the
 * pruneProjectionWorkflow that the Schedule starts.
 */
import { randomUUID } from 'node:crypto';
import type { Connection } from '@temporalio/client';
import { Client } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { ensureSchedules, PRUNE_SCHEDULE_ID } from '../../src/schedules';
import { makeDoc } from '../projection/fixtures';
import { type Harness, perFile, startDevStack, withWorker } from '../helpers/harness';
import { waitUntil } from '../helpers/polling';

let h: Harness;
let connection: Connection;
let native: NativeConnection;

// A dev server with its default dynamic config.
perFile(
  () => startDevStack(undefined, { devServer: {} }),
  (s) => ({ harness: h, connection, native } = s),
);

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
    await waitUntil(
      `the prune Schedule to drop ${gone.task_id} from the success index`,
      async () => (await h.redis.zscore('celery:index:status:success', gone.task_id)) === null,
      { timeoutMs: 30_000 },
    );
    expect(await h.redis.zscore('celery:index:status:success', live.task_id)).not.toBeNull();
    const desc = await client.schedule.getHandle(PRUNE_SCHEDULE_ID).describe();
    expect(desc.info.recentActions.length).toBeGreaterThan(0);
    await client.schedule.getHandle(PRUNE_SCHEDULE_ID).delete();
  });
});
