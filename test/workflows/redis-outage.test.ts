/**
 * Redis is a mirror, not the truth: while it is down, publishing carries on; when it is back, the projection
 * converges to what Temporal knows.
 */
import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DEFAULT_POLICY } from '../../src/shared/policy';
import type { publishSingle } from '../../src/workflows';
import { eventually, projectionHarness, withWorker, type Harness } from '../helpers/harness';
import { ScriptedDriver } from '../helpers/scripted-driver';
import { createTimeSkippingEnv, startRedis, type RedisServer } from '../helpers/servers';

let env: TestWorkflowEnvironment;
let redisServer: RedisServer;
let h: Harness;

beforeAll(async () => {
  [env, redisServer] = await Promise.all([createTimeSkippingEnv(), startRedis({ appendonly: true })]);
  h = projectionHarness(redisServer.url);
});

afterAll(async () => {
  await h?.close();
  await env?.teardown();
  await redisServer?.destroy();
});

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
    await eventually(async () => driver.callsFor(handle.workflowId).length === 1, 30_000);
    expect(await h.tsm.getTaskState(handle.workflowId).catch(() => 'unreachable')).toBe('unreachable');

    await redisServer.start();
    const doc = await eventually(async () => {
      const d = await h.tsm.getTaskState(handle.workflowId);
      return d?.status === 'success' ? d : undefined;
    }, 60_000);
    expect(doc.result?.postId).toBe(`post-${handle.workflowId}-1`);
    expect(await h.redis.zscore('celery:index:status:success', handle.workflowId)).not.toBeNull();
    expect((await handle.result()).status).toBe('success');
    expect(driver.callsFor(handle.workflowId)).toHaveLength(1);
  });
});
