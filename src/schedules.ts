import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';

export const PRUNE_SCHEDULE_ID = 'pubflow-prune-projection';

/** Creates pubflow's Schedules if they are missing; safe to call from every worker at start-up. */
export async function ensureSchedules(client: Client, opts: { taskQueue: string; pruneIntervalMs: number }) {
  try {
    await client.schedule.create({
      scheduleId: PRUNE_SCHEDULE_ID,
      spec: { intervals: [{ every: opts.pruneIntervalMs }] },
      policies: { overlap: ScheduleOverlapPolicy.SKIP },
      action: {
        type: 'startWorkflow',
        workflowType: 'pruneProjectionWorkflow',
        taskQueue: opts.taskQueue,
        args: [],
      },
    });
    return 'created' as const;
  } catch (err) {
    if (err instanceof ScheduleAlreadyRunning) return 'exists' as const;
    throw err;
  }
}
