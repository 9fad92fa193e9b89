/**
 * The ceiling of any Temporal application on a given server (issue 14): an empty workflow that runs one no-op
 * activity. bench/batch.ts runs it on the same server, with the same number of worker processes and upload slots,
 * as pubflow's singles and batch.
 */
import { proxyActivities } from '@temporalio/workflow';

export interface CeilingActivities {
  noop(): Promise<void>;
}

const { noop } = proxyActivities<CeilingActivities>({
  taskQueue: 'pubflow-bench-ceiling-activities',
  startToCloseTimeout: '1 minute',
});

export async function ceiling(): Promise<void> {
  await noop();
}
