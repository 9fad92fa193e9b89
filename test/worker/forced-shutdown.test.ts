/**
 * A stopping worker always stops: when something it runs will not finish (here an upload whose driver ignores the
 * abort, as a wedged native upload library would), it gives up SHUTDOWN_FORCE_AFTER_GRACE_MS after its grace period
 * and `run()` rejects, so the process exits (1) instead of hanging until someone sends SIGKILL.
 */
import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createLogger } from '../../src/log';
import { DriverRegistry } from '../../src/platforms';
import type { DriverResult } from '../../src/platforms/types';
import { DEFAULT_POLICY } from '../../src/shared/policy';
import { createPubflowWorkers, SHUTDOWN_FORCE_AFTER_GRACE_MS } from '../../src/worker';
import type { publishSingle } from '../../src/workflows';
import { type Harness, perFile, startWorkflowTestStack, workflowBundle } from '../helpers/harness';
import { waitUntil } from '../helpers/polling';
import { ScriptedDriver } from '../helpers/scripted-driver';

let env: TestWorkflowEnvironment;
let h: Harness;

perFile(
  () => startWorkflowTestStack(),
  (s) => ({ env, harness: h } = s),
);

test('a worker whose upload ignores the abort gives up after grace + the force margin: run() rejects, it does not hang', async () => {
  // Arrange: an upload that never ends, whatever the worker asks (released only after the test, to clean up).
  let release: (r: DriverResult) => void = () => undefined;
  const stuck = new Promise<DriverResult>((resolve) => (release = resolve));
  const driver = new ScriptedDriver().then(() => stuck);
  const taskQueue = `tq-${randomUUID()}`;
  const graceMs = 500;
  const workers = await createPubflowWorkers({
    connection: env.nativeConnection,
    namespace: 'default',
    taskQueue,
    deps: {
      store: h.store,
      accounts: h.accounts,
      drivers: new DriverRegistry([driver]),
      log: createLogger('test-worker', { silent: true }),
    },
    uploadConcurrency: 1,
    shutdownGraceMs: graceMs,
    workflowBundle: await workflowBundle(),
  });
  const running = workers.run();
  const ended = running.then(
    () => ({ rejected: false as const, at: Date.now() }),
    (error: unknown) => ({ rejected: true as const, error, at: Date.now() }),
  );
  try {
    const handle = await env.client.workflow.start<typeof publishSingle>('publishSingle', {
      taskQueue,
      workflowId: `forced-shutdown-${randomUUID()}`,
      args: [
        {
          request: { platform: 'scripted', accountId: 'acct-1', video: { path: '/m/v.mp4' }, title: 't', priority: 5 },
          policy: DEFAULT_POLICY,
        },
      ],
    });
    await waitUntil('the upload to start', async () => driver.callsFor(handle.workflowId).length === 1, {
      timeoutMs: 30_000,
    });

    // Act: stop the worker.
    const stopAt = Date.now();
    workers.shutdown();
    const end = await ended;

    // Assert: it asked the upload to stop, waited the grace period and the margin, then gave up with the SDK's error.
    expect(driver.aborted.map((c) => c.taskId)).toEqual([handle.workflowId]);
    // The SDK logs GracefulShutdownPeriodExpiredError for the uploads worker; run() itself rejects with what its
    // cleanup then finds (1.24.0: an IllegalStateError, the native worker still referenced by the stuck upload).
    expect(end.rejected).toBe(true);
    expect(end.at - stopAt).toBeGreaterThanOrEqual(SHUTDOWN_FORCE_AFTER_GRACE_MS);
    await handle.terminate('test done').catch(() => undefined);
  } finally {
    release({ postId: 'late', url: 'https://example.invalid/late' });
  }
}, 60_000);
