import { proxyActivities } from '@temporalio/workflow';
import type { createActivities } from '../activities';

const { pruneProjection } = proxyActivities<ReturnType<typeof createActivities>>({
  startToCloseTimeout: '10m',
  retry: { maximumAttempts: 3 },
});

/** Run by the `pubflow-prune-projection` Schedule: drops index members whose 7-day documents have expired. */
export async function pruneProjectionWorkflow(): Promise<{ scanned: number; removed: number }> {
  return pruneProjection();
}
