/**
 * What the activities record through ActivityDeps.metrics (src/metrics/worker-metrics.ts), with the real workers on
 * the time-skipping test server and the platform scripted: one outcome per upload attempt (success, the error kind,
 * cancelled), and a failed projection write counted before the activity's retry. The metrics dependency is a plain
 * recorder here; the real one (the SDK's meter) is scraped in metrics-scrape.test.ts.
 */
import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import Redis from 'ioredis';
import type { WorkerMetrics } from '../../src/metrics/worker-metrics';
import { contentRejected } from '../../src/platforms';
import { ProjectionStore } from '../../src/projection/store';
import type { ProjectionWrite } from '../../src/metrics/names';
import { DEFAULT_POLICY } from '../../src/shared/policy';
import type { PublishRequest } from '../../src/shared/types';
import type { publishSingle } from '../../src/workflows';
import {
  expectCancelled,
  perFile,
  startWorkflowTestStack,
  waitForDoc,
  withWorker,
  type Harness,
} from '../helpers/harness';
import { waitUntil } from '../helpers/polling';
import { hangUntilAborted, ScriptedDriver } from '../helpers/scripted-driver';
import { freePort } from '../helpers/servers';

let env: TestWorkflowEnvironment;
let h: Harness;

perFile(
  () => startWorkflowTestStack(),
  (s) => ({ env, harness: h } = s),
);

class Recorder implements WorkerMetrics {
  readonly uploads: Array<{ platform: string; outcome: string; seconds: number }> = [];
  readonly writeErrors: ProjectionWrite[] = [];
  upload(o: { platform: string; outcome: string; seconds: number }): void {
    this.uploads.push(o);
  }
  projectionWriteError(write: ProjectionWrite): void {
    this.writeErrors.push(write);
  }
}

const request = (): PublishRequest => ({
  platform: 'scripted',
  accountId: 'acct-1',
  video: { path: '/media/v.mp4' },
  title: 'metrics',
  priority: 5,
});

/** The harness's worker pair, recording into `metrics` (and writing through `store` when given). */
const withRecordingWorker = <T>(
  o: { driver: ScriptedDriver; metrics: Recorder; store?: ProjectionStore },
  fn: (taskQueue: string) => Promise<T>,
): Promise<T> =>
  withWorker(
    {
      connection: env.nativeConnection,
      harness: h,
      drivers: [o.driver],
      metrics: o.metrics,
      store: o.store,
      uploadConcurrency: 2,
    },
    fn,
  );

const start = (taskQueue: string) =>
  env.client.workflow.start<typeof publishSingle>('publishSingle', {
    taskQueue,
    workflowId: `metrics-${randomUUID()}`,
    args: [{ request: request(), policy: DEFAULT_POLICY }],
  });

test('each upload attempt is recorded once with its outcome: success, the error kind, or cancelled', async () => {
  const metrics = new Recorder();
  const driver = new ScriptedDriver().then(
    async (ctx) => ({ postId: `p-${ctx.taskId}` }),
    async () => {
      throw contentRejected('too long');
    },
    hangUntilAborted,
  );
  await withRecordingWorker({ driver, metrics }, async (tq) => {
    // Act: one success, one rejection (the task waits in review), one cancelled mid-upload.
    const ok = await start(tq);
    expect((await ok.result()).status).toBe('success');
    const rejected = await start(tq);
    await waitForDoc(h, rejected.workflowId, (d) => d.review?.open === true);
    // Cancelled before anything awaits a result: the test server would skip time past the review's expiry.
    await rejected.cancel();
    await expectCancelled(rejected);
    const cancelled = await start(tq);
    await waitUntil('the third upload to start', async () => driver.callsFor(cancelled.workflowId).length === 1);
    await cancelled.cancel();
    await expectCancelled(cancelled);
  });

  // Assert
  expect(metrics.uploads.map(({ platform, outcome }) => ({ platform, outcome }))).toEqual([
    { platform: 'scripted', outcome: 'success' },
    { platform: 'scripted', outcome: 'ContentRejected' },
    { platform: 'scripted', outcome: 'cancelled' },
  ]);
  for (const u of metrics.uploads) expect(u.seconds).toBeGreaterThanOrEqual(0);
  expect(metrics.writeErrors).toEqual([]);
});

test('a projection write that fails is counted, and the upload still runs', async () => {
  // Arrange: the worker's projection store talks to a port where no Redis listens.
  const metrics = new Recorder();
  const deadRedis = new Redis(`redis://127.0.0.1:${await freePort()}`, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    lazyConnect: true,
  });
  deadRedis.on('error', () => undefined);
  const driver = new ScriptedDriver();
  try {
    await withRecordingWorker({ driver, metrics, store: new ProjectionStore(deadRedis) }, async (tq) => {
      // Act
      const handle = await start(tq);
      // Assert: Redis being down does not stop the upload (Temporal is the truth), and the failed writes show. The
      // run itself ends only once its last write is in, so the test ends it.
      // The projector's writes back off while they fail (about 16 s here before the upload ran): wait a minute.
      await waitUntil(
        'the upload and a failed write',
        () => metrics.uploads.length === 1 && metrics.writeErrors.length > 0,
        { timeoutMs: 60_000 },
      );
      await handle.terminate('the test is done');
    });
  } finally {
    deadRedis.disconnect();
  }
  expect(metrics.uploads.map((u) => u.outcome)).toEqual(['success']);
  expect(metrics.writeErrors.length).toBeGreaterThan(0);
  expect(new Set(metrics.writeErrors)).toEqual(new Set(['task']));
});
