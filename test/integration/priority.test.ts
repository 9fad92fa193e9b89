/**
 * Priority 0..9 on a real dev server configured for 10 priority levels (as `make up` starts it): a backlog of 30
 * scheduled uploads of mixed priority, then ONE upload slot. The uploads must start in priority order; within a
 * priority, in the order they were scheduled.
 *
 * Each task publishes on its own account, so that the account gates grant every turn at once and only Temporal's
 * task-queue priority decides the order.
 */
import { randomUUID } from 'node:crypto';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { NativeConnection } from '@temporalio/worker';
import { createLogger } from '../../src/log';
import { DriverRegistry } from '../../src/platforms';
import { DEFAULT_POLICY } from '../../src/shared/policy';
import type { publishSingle } from '../../src/workflows';
import { createWorkerPair, type Harness, perFile, startDevStack } from '../helpers/harness';
import { waitUntil } from '../helpers/polling';
import { ScriptedDriver } from '../helpers/scripted-driver';

const N = 30;
const ACCOUNTS = Array.from({ length: N }, (_, i) => ({ id: `p${i}`, platform: 'scripted', settings: {} }));
/** Each priority 0..9 three times, shuffled (fixed, so a failure can be replayed). */
const PRIORITIES = [7, 2, 9, 0, 5, 5, 3, 8, 1, 6, 4, 9, 2, 0, 7, 3, 6, 1, 8, 4, 5, 0, 9, 3, 1, 6, 8, 2, 7, 4];

let h: Harness;
let client: Client;
let native: NativeConnection;

perFile(
  () => startDevStack(ACCOUNTS),
  (s) => ({ harness: h, client, native } = s),
);

/** When the workflow scheduled its upload activity (the ActivityTaskScheduled event), or undefined if not yet. */
async function uploadScheduledAt(handle: WorkflowHandle): Promise<number | undefined> {
  const { events } = await handle.fetchHistory();
  const ev = events?.find(
    (e) =>
      e.eventType === temporal.api.enums.v1.EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED &&
      e.activityTaskScheduledEventAttributes?.activityType?.name === 'upload',
  );
  if (!ev?.eventTime) return undefined;
  return Number(ev.eventTime.seconds) * 1000 + Math.floor((ev.eventTime.nanos ?? 0) / 1e6);
}

test('with one upload slot, a backlog of 30 uploads starts in priority order, FIFO within a priority', async () => {
  const driver = new ScriptedDriver();
  const deps = {
    store: h.store,
    accounts: h.accounts,
    drivers: new DriverRegistry([driver]),
    log: createLogger('test-worker', { silent: true }),
  };
  const taskQueue = `tq-${randomUUID()}`;
  // Workflows and bookkeeping run from the start; the upload worker only once the backlog is built.
  const { main, uploads } = await createWorkerPair({ connection: native, taskQueue, deps, uploadConcurrency: 1 });
  const mainRunning = main.run();
  let uploadsRunning: Promise<void> | undefined;
  try {
    // Arrange: one task at a time, each upload scheduled before the next task starts, so the scheduling order is
    // unambiguous.
    const tasks: Array<{ priority: number; handle: WorkflowHandle; scheduledAt: number }> = [];
    for (const [i, priority] of PRIORITIES.entries()) {
      const handle = await client.workflow.start<typeof publishSingle>('publishSingle', {
        taskQueue,
        workflowId: `prio-${priority}-${i}-${randomUUID()}`,
        args: [
          {
            request: { platform: 'scripted', accountId: `p${i}`, video: { path: '/v.mp4' }, title: `t${i}`, priority },
            policy: { ...DEFAULT_POLICY, autoRetry: { maxAttempts: 0, initialDelayMs: 1000, maxDelayMs: 1000 } },
          },
        ],
        priority: { priorityKey: priority + 1 },
      });
      const scheduledAt = await waitUntil(`the upload of ${handle.workflowId} to be scheduled`, () =>
        uploadScheduledAt(handle),
      );
      tasks.push({ priority, handle, scheduledAt });
    }
    expect(driver.calls).toHaveLength(0);

    // Act: one slot.
    uploadsRunning = uploads.run();
    for (const t of tasks) expect((await t.handle.result()).status).toBe('success');

    // Assert
    const byId = new Map(tasks.map((t) => [t.handle.workflowId, t]));
    const order = driver.calls.map((c) => byId.get(c.taskId)!);
    expect(order).toHaveLength(N);
    expect(order.map((t) => t.priority)).toEqual([...PRIORITIES].sort((a, b) => a - b));
    for (let i = 1; i < order.length; i++)
      if (order[i]!.priority === order[i - 1]!.priority)
        expect(order[i]!.scheduledAt).toBeGreaterThan(order[i - 1]!.scheduledAt);
  } finally {
    uploadsRunning ??= uploads.run(); // a worker that never ran still holds the connection
    main.shutdown();
    uploads.shutdown();
    await Promise.all([mainRunning, uploadsRunning]);
  }
});
