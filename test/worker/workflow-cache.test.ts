/**
 * PUBFLOW_WORKFLOW_CACHE reaches the worker: with a cache of 2, a worker holding five open runs keeps at most two in
 * memory; with the SDK's default it keeps all five (so the test fails if the option is dropped on the way).
 */
import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DEFAULT_POLICY } from '../../src/shared/policy';
import { TASK_PROTOCOL } from '../../src/shared/workflow-contracts';
import type { publishSingle } from '../../src/workflows';
import { type Harness, perFile, startWorkflowTestStack, waitForDoc, withWorker } from '../helpers/harness';
import { ScriptedDriver } from '../helpers/scripted-driver';

let env: TestWorkflowEnvironment;
let h: Harness;

perFile(
  () => startWorkflowTestStack(),
  (s) => ({ env, harness: h } = s),
);

/** Five scheduled tasks (each waits on its publish time, open and idle) on a worker; its count of cached runs. */
function cachedWithFiveOpenRuns(workflowCacheSize: number | undefined): Promise<number> {
  const opts = { connection: env.nativeConnection, harness: h, drivers: [new ScriptedDriver()], uploadConcurrency: 1 };
  return withWorker({ ...opts, workflowTaskSlots: 2, workflowCacheSize }, async (taskQueue, workers) => {
    const ids = Array.from({ length: 5 }, () => `cache-${randomUUID()}`);
    try {
      const publishAt = new Date(Date.now() + 3_600_000).toISOString();
      for (const workflowId of ids)
        await env.client.workflow.start<typeof publishSingle>('publishSingle', {
          taskQueue,
          workflowId,
          args: [
            {
              request: {
                platform: 'scripted',
                accountId: 'acct-1',
                video: { path: '/m/v.mp4' },
                title: 't',
                priority: 5,
                publishAt,
              },
              policy: DEFAULT_POLICY,
              protocol: TASK_PROTOCOL,
            },
          ],
        });
      // Each run has had its first workflow task (a scheduled task writes its own first document, then waits).
      for (const id of ids) await waitForDoc(h, id, (d) => d.scheduled_for !== null);
      return workers.main.getStatus().numCachedWorkflows;
    } finally {
      for (const id of ids) await env.client.workflow.getHandle(id).terminate('test over');
    }
  });
}

test('a cache of 2 keeps at most two of five open runs in memory; the default keeps all five', async () => {
  expect(await cachedWithFiveOpenRuns(2)).toBeLessThanOrEqual(2);
  expect(await cachedWithFiveOpenRuns(undefined)).toBe(5);
}, 120_000);
