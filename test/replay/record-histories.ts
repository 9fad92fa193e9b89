/**
 * Records the replay fixtures in test/replay/histories/ (see CONTRIBUTING.md, "Changing a workflow"). Not part of
 * `make test`: run it on purpose, when a workflow change needs new fixtures:
 *
 *   npx jest --ci --testMatch '**\/test/replay/record-histories.ts'
 *
 * It runs the real worker (real activities, real Redis projection) against a dev server configured as `make up` runs
 * it; only the platform is scripted. Each scenario overwrites its own files.
 */
import { randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { contentRejected, type DriverResult, type PublishContext } from '../../src/platforms/types';
import { accountGateId, reviewDecisionUpdate } from '../../src/shared/definitions';
import { DEFAULT_POLICY } from '../../src/shared/policy';
import type { PublishRequest, TaskDoc } from '../../src/shared/types';
import type { accountGate, publishBatch, publishSingle } from '../../src/workflows';
import { startDevStack, TEST_ACCOUNTS, withWorker, type DevStack } from '../helpers/harness';
import { waitUntil } from '../helpers/polling';
import { hangUntilAborted, ScriptedDriver } from '../helpers/scripted-driver';
import { historyToJSON } from './history-json';

const HISTORIES = path.join(__dirname, 'histories');

let stack: DevStack;

beforeAll(async () => {
  stack = await startDevStack(TEST_ACCOUNTS);
  mkdirSync(HISTORIES, { recursive: true });
});

afterAll(async () => {
  await stack?.close();
});

const request = (over: Partial<PublishRequest> = {}): PublishRequest => ({
  platform: 'scripted',
  accountId: 'acct-1',
  video: { path: '/media/v.mp4' },
  title: 'hello',
  priority: 5,
  ...over,
});

function startSingle(client: Client, taskQueue: string, over: Partial<PublishRequest> = {}) {
  return client.workflow.start<typeof publishSingle>('publishSingle', {
    taskQueue,
    workflowId: `t-${randomUUID()}`,
    args: [{ request: request(over), policy: DEFAULT_POLICY }],
  });
}

const docWhere = (id: string, pred: (d: TaskDoc) => boolean) =>
  waitUntil(`the document of ${id} to match`, async () => {
    const d = await stack.harness.tsm.getTaskState(id);
    return d && pred(d) ? d : undefined;
  });

/** Saves one run's history as `<name>.json`, formatted as `make check` wants it. */
async function save(name: string, workflowId: string, runId?: string) {
  const history = await stack.client.workflow.getHandle(workflowId, runId).fetchHistory();
  const file = path.join(HISTORIES, `${name}.json`);
  writeFileSync(file, historyToJSON(history));
  // As `make check` wants it (prettier's API needs ESM dynamic import, which jest does not give).
  execFileSync(process.execPath, [
    require.resolve('prettier/bin/prettier.cjs'),
    '--write',
    '--log-level',
    'warn',
    file,
  ]);
  return history;
}

/** The run ids of a workflow's chain of runs, first to last, followed through continue-as-new. */
async function runChain(workflowId: string, firstRunId: string): Promise<string[]> {
  const runs = [firstRunId];
  for (;;) {
    const history = await stack.client.workflow.getHandle(workflowId, runs[runs.length - 1]).fetchHistory();
    const last = history.events?.[history.events.length - 1];
    const next = last?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId;
    if (!next) return runs;
    runs.push(next);
  }
}

function run<T>(driver: ScriptedDriver, fn: (taskQueue: string) => Promise<T>) {
  return withWorker({ connection: stack.native, harness: stack.harness, drivers: [driver] }, fn);
}

test('single: one upload that succeeds', async () => {
  await run(new ScriptedDriver(), async (tq) => {
    const handle = await startSingle(stack.client, tq);
    expect((await handle.result()).status).toBe('success');
    await save('single-success', handle.workflowId);
  });
});

test('single: a rejected upload lands in review, a retry with a patch succeeds', async () => {
  const driver = new ScriptedDriver().then(async () => {
    throw contentRejected('title too long');
  });
  await run(driver, async (tq) => {
    const handle = await startSingle(stack.client, tq, { title: 'a very long title' });
    await docWhere(handle.workflowId, (d) => d.review?.open === true);
    await handle.executeUpdate(reviewDecisionUpdate, { args: [{ action: 'retry', patch: { title: 'short' } }] });
    expect(await handle.result()).toMatchObject({ status: 'success', attempts: 2 });
    await save('single-review-retry-success', handle.workflowId);
  });
});

test('single: cancelled while its upload runs', async () => {
  const driver = new ScriptedDriver().then(hangUntilAborted);
  await run(driver, async (tq) => {
    const handle = await startSingle(stack.client, tq);
    await docWhere(handle.workflowId, (d) => d.status === 'running');
    await waitUntil('the first upload', async () => driver.calls.length === 1);
    await handle.cancel();
    await expect(handle.result()).rejects.toBeInstanceOf(WorkflowFailedError);
    expect(driver.aborted).toHaveLength(1);
    await save('single-cancel-running', handle.workflowId);
  });
});

test('batch: continues as new while its children run', async () => {
  await run(new ScriptedDriver(), async (tq) => {
    const handle = await stack.client.workflow.start<typeof publishBatch>('publishBatch', {
      taskQueue: tq,
      workflowId: `batch-${randomUUID()}`,
      args: [
        {
          items: Array.from({ length: 4 }, (_, i) => request({ title: `item ${i}` })),
          policies: { scripted: DEFAULT_POLICY },
          concurrency: 2,
          continueAsNewAfter: 3,
        },
      ],
    });
    expect((await handle.result()).counts.success).toBe(4);
    const runs = await runChain(handle.workflowId, handle.firstExecutionRunId);
    expect(runs.length).toBeGreaterThan(1);
    for (const [k, runId] of runs.entries()) await save(`batch-run-${k + 1}`, handle.workflowId, runId);
    // A child: a single that reports to its batch.
    await save('batch-child', `${handle.workflowId}-0`);
  });
});

test('gate: one account gate serves several tasks in turn', async () => {
  let release!: () => void;
  const firstMayFinish = new Promise<void>((resolve) => (release = resolve));
  const driver = new ScriptedDriver().then(async (ctx: PublishContext): Promise<DriverResult> => {
    await firstMayFinish;
    return { postId: `post-${ctx.taskId}`, url: `https://example.invalid/p/${ctx.taskId}` };
  });
  await run(driver, async (tq) => {
    const first = await startSingle(stack.client, tq, { accountId: 'acct-2' });
    await docWhere(first.workflowId, (d) => d.status === 'running');
    const others = [
      await startSingle(stack.client, tq, { accountId: 'acct-2', title: 'second' }),
      await startSingle(stack.client, tq, { accountId: 'acct-2', title: 'third' }),
    ];
    for (const o of others) await docWhere(o.workflowId, (d) => d.progress?.stage === 'waiting_for_account');
    release();
    for (const h of [first, ...others]) expect((await h.result()).status).toBe('success');
    // The gate ends once nothing is queued or held.
    const gate = stack.client.workflow.getHandle<typeof accountGate>(accountGateId('acct-2', tq));
    await gate.result();
    const history = await save('gate-account-several-tasks', gate.workflowId);
    const requests = history.events?.filter(
      (e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'gateRequest',
    );
    expect(requests).toHaveLength(3);
    await save('gate-waiting-task', others[1]!.workflowId);
  });
});
