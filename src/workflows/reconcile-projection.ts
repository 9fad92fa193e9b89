import { proxyActivities } from '@temporalio/workflow';
import type { createActivities } from '../activities';

type Activities = ReturnType<typeof createActivities>;
export type ReconcileProjectionOutput = Awaited<ReturnType<Activities['reconcileProjection']>>;

const { reconcileProjection } = proxyActivities<Activities>({
  // A rebuild of 10,000s of tasks takes minutes; a dead worker is noticed by the missing heartbeats.
  startToCloseTimeout: '1h',
  heartbeatTimeout: '2m',
  retry: { initialInterval: '30s', maximumAttempts: 3 },
});

/**
 * Run by the `pubflow-reconcile-projection` Schedule: rebuilds or repairs the Redis projection from Temporal
 * (see src/projection/reconciler.ts). Returns the reconciler's report.
 */
export async function reconcileProjectionWorkflow(
  input: { windowDays?: number } = {},
): Promise<ReconcileProjectionOutput> {
  return reconcileProjection(input);
}
