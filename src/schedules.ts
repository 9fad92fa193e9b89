import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import { WORKFLOW_TYPES } from './shared/workflow-contracts';

export const PRUNE_SCHEDULE_ID = 'pubflow-prune-projection';
export const RECONCILE_SCHEDULE_ID = 'pubflow-reconcile-projection';
export const DEFAULT_RECONCILE_INTERVAL_MS = 15 * 60_000;

export interface ScheduleOptions {
  taskQueue: string;
  pruneIntervalMs: number;
  /** How often the reconciler repairs the projection from Temporal. Default 15 minutes. */
  reconcileIntervalMs?: number;
}

/**
 * Creates pubflow's Schedules if they are missing; safe to call from every worker at start-up. An existing
 * Schedule is left as it is (change its interval with `temporal schedule update`, or delete it and restart a
 * worker). Returns 'created' if any Schedule was created.
 */
export async function ensureSchedules(client: Client, opts: ScheduleOptions): Promise<'created' | 'exists'> {
  const schedules = [
    { scheduleId: PRUNE_SCHEDULE_ID, workflowType: WORKFLOW_TYPES.pruneProjection, every: opts.pruneIntervalMs },
    {
      scheduleId: RECONCILE_SCHEDULE_ID,
      workflowType: WORKFLOW_TYPES.reconcileProjection,
      every: opts.reconcileIntervalMs ?? DEFAULT_RECONCILE_INTERVAL_MS,
    },
  ];
  let created = false;
  for (const s of schedules) {
    try {
      await client.schedule.create({
        scheduleId: s.scheduleId,
        spec: { intervals: [{ every: s.every }] },
        // A run still going when the next is due: skip the next, never pile them up.
        policies: { overlap: ScheduleOverlapPolicy.SKIP },
        action: { type: 'startWorkflow', workflowType: s.workflowType, taskQueue: opts.taskQueue, args: [] },
      });
      created = true;
    } catch (err) {
      if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    }
  }
  return created ? 'created' : 'exists';
}
