/**
 * Scheduled publishing on a real dev server (configured as `make up` starts it) and a real redis-server: a task
 * with `publishAt` 5 s ahead waits as `pending` with `scheduled_for` in its Redis document, and its upload starts no
 * earlier than `publishAt` and less than a second after it. Prints the measured lateness, which docs/benchmarks.md
 * reports.
 *
 * Each task publishes on its own account, so the account gates never make one task wait for another: the lateness
 * is the durable timer plus the way from the timer to the driver (workflow task, gate turn, upload dispatch).
 */
import { randomUUID } from 'node:crypto';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { NativeConnection } from '@temporalio/worker';
import { taskKey } from '../../src/projection/keys';
import { DEFAULT_POLICY } from '../../src/shared/policy';
import type { TaskDoc } from '../../src/shared/types';
import type { publishSingle } from '../../src/workflows';
import { type Harness, perFile, startDevStack, withWorker } from '../helpers/harness';
import { waitUntil } from '../helpers/polling';
import { ScriptedDriver } from '../helpers/scripted-driver';

const N = 5;
const AHEAD_MS = 5000;
/** Tasks are started this far apart, so their publish times (and uploads) never coincide. */
const STAGGER_MS = 1000;
const ACCOUNTS = Array.from({ length: N }, (_, i) => ({ id: `s${i}`, platform: 'scripted', settings: {} }));

let h: Harness;
let client: Client;
let native: NativeConnection;

perFile(
  () => startDevStack(ACCOUNTS),
  (s) => ({ harness: h, client, native } = s),
);

/** ISO 8601 with a +08:00 offset (not `Z`), as an API client in another time zone would send it. */
function isoWithOffset(ms: number): string {
  const local = new Date(ms + 8 * 3600_000).toISOString().replace('Z', '');
  return `${local}+08:00`;
}

const eventMs = (t: { seconds?: unknown; nanos?: number | null } | null | undefined): number | undefined =>
  t ? Number(t.seconds) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) : undefined;

/** When the publish-time timer fired and the upload was scheduled, from the task's history. */
async function milestones(handle: WorkflowHandle): Promise<{ timerFired?: number; uploadScheduled?: number }> {
  const { EventType } = temporal.api.enums.v1;
  const { events } = await handle.fetchHistory();
  const timer = events?.find((e) => e.eventType === EventType.EVENT_TYPE_TIMER_FIRED);
  const upload = events?.find(
    (e) =>
      e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED &&
      e.activityTaskScheduledEventAttributes?.activityType?.name === 'upload',
  );
  return { timerFired: eventMs(timer?.eventTime), uploadScheduled: eventMs(upload?.eventTime) };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : Math.round((s[m - 1]! + s[m]!) / 2);
};

test('a task scheduled 5 s ahead waits as pending with scheduled_for, and uploads within 1 s after publishAt', async () => {
  const uploadStartedAt = new Map<string, number>();
  const driver = new ScriptedDriver();
  const publish = driver.fallback;
  driver.fallback = async (ctx) => {
    uploadStartedAt.set(ctx.taskId, Date.now());
    return publish(ctx);
  };

  await withWorker({ connection: native, harness: h, drivers: [driver] }, async (taskQueue) => {
    // Arrange + act: N tasks, each due AHEAD_MS after it is submitted, submitted STAGGER_MS apart.
    const tasks: Array<{ handle: WorkflowHandle; publishAtMs: number; publishAt: string }> = [];
    for (let i = 0; i < N; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, STAGGER_MS));
      const publishAtMs = Date.now() + AHEAD_MS;
      const publishAt = isoWithOffset(publishAtMs);
      const handle = await client.workflow.start<typeof publishSingle>('publishSingle', {
        taskQueue,
        workflowId: `sched-${i}-${randomUUID()}`,
        args: [
          {
            request: {
              platform: 'scripted',
              accountId: `s${i}`,
              video: { path: '/v.mp4' },
              title: `scheduled ${i}`,
              priority: 5,
              publishAt,
            },
            policy: { ...DEFAULT_POLICY, autoRetry: { maxAttempts: 0, initialDelayMs: 1000, maxDelayMs: 1000 } },
          },
        ],
        priority: { priorityKey: 6 },
      });
      tasks.push({ handle, publishAtMs, publishAt });

      // While it waits: the Redis document (the operators' contract) says pending, with the publish time.
      const waiting = await waitUntil(`the document of ${handle.workflowId}`, async () => {
        const raw = await h.redis.get(taskKey(handle.workflowId));
        return raw ? (JSON.parse(raw) as TaskDoc) : undefined;
      });
      expect(Date.now()).toBeLessThan(publishAtMs);
      expect(waiting.status).toBe('pending');
      expect(waiting.scheduled_for).not.toBeNull();
      expect(Date.parse(waiting.scheduled_for!)).toBe(publishAtMs);
      expect(uploadStartedAt.has(handle.workflowId)).toBe(false);
    }

    for (const t of tasks) expect((await t.handle.result()).status).toBe('success');

    // Assert: never early, less than a second late.
    const rows = await Promise.all(
      tasks.map(async (t) => {
        const m = await milestones(t.handle);
        const started = uploadStartedAt.get(t.handle.workflowId)!;
        return {
          lateness: started - t.publishAtMs,
          timer: m.timerFired !== undefined ? m.timerFired - t.publishAtMs : NaN,
          scheduled: m.uploadScheduled !== undefined ? m.uploadScheduled - t.publishAtMs : NaN,
        };
      }),
    );
    const late = rows.map((r) => r.lateness);
    console.log(
      `schedule lateness (upload start - publishAt), ${N} tasks, ms: min ${Math.min(...late)} median ${median(late)} ` +
        `max ${Math.max(...late)}; per task [upload start / timer fired / upload scheduled]: ` +
        rows.map((r) => `${r.lateness}/${r.timer}/${r.scheduled}`).join(', '),
    );
    for (const r of rows) {
      expect(r.lateness).toBeGreaterThanOrEqual(0);
      expect(r.lateness).toBeLessThan(1000);
    }
  });
});
