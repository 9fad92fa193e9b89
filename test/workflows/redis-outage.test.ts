/**
 * Redis is a mirror, not the truth: while it is down, publishing carries on; when it is back, the projection
 * converges to what Temporal knows.
 */
import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DEFAULT_POLICY } from '../../src/shared/policy';
import type { publishSingle } from '../../src/workflows';
import { type Harness, perFile, startWorkflowTestStack, withWorker } from '../helpers/harness';
import { waitUntil } from '../helpers/polling';
import { ScriptedDriver } from '../helpers/scripted-driver';
import type { RedisServer } from '../helpers/servers';

let env: TestWorkflowEnvironment;
let redisServer: RedisServer;
let h: Harness;

perFile(
  () => startWorkflowTestStack({ appendonly: true }),
  (s) => ({ env, redisServer, harness: h } = s),
);

test('with Redis down the upload still happens, and the document converges to success when Redis is back', async () => {
  const driver = new ScriptedDriver();
  await withWorker({ connection: env.nativeConnection, harness: h, drivers: [driver] }, async (taskQueue) => {
    await redisServer.stop();
    const handle = await env.client.workflow.start<typeof publishSingle>('publishSingle', {
      taskQueue,
      workflowId: `outage-${randomUUID()}`,
      args: [
        {
          request: { platform: 'scripted', accountId: 'acct-1', video: { path: '/m/v.mp4' }, title: 't', priority: 5 },
          policy: DEFAULT_POLICY,
        },
      ],
    });
    // Publishing carries on without Redis.
    await waitUntil('the upload to start', async () => driver.callsFor(handle.workflowId).length === 1, {
      timeoutMs: 30_000,
    });
    expect(await h.tsm.getTaskState(handle.workflowId).catch(() => 'unreachable')).toBe('unreachable');

    await redisServer.start();
    const doc = await waitUntil(
      'the document to say success',
      async () => {
        const d = await h.tsm.getTaskState(handle.workflowId);
        return d?.status === 'success' ? d : undefined;
      },
      { timeoutMs: 60_000 },
    );
    expect(doc.result?.postId).toBe(`post-${handle.workflowId}-1`);
    expect(await h.redis.zscore('celery:index:status:success', handle.workflowId)).not.toBeNull();
    expect((await handle.result()).status).toBe('success');
    expect(driver.callsFor(handle.workflowId)).toHaveLength(1);
  });
});
