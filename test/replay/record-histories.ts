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
import { authExpired, contentRejected, type DriverResult, type PublishContext } from '../../src/platforms/types';
import { accountGateId, reactivateAccountUpdate, reviewDecisionUpdate } from '../../src/shared/definitions';
import { DEFAULT_POLICY } from '../../src/shared/policy';
import { SEARCH_ATTRIBUTE_KEYS } from '../../src/shared/search-attributes';
import { DOC_MEMO_KEY, initialTaskDoc } from '../../src/shared/task-doc';
import { GATE_PROTOCOL, TASK_PROTOCOL } from '../../src/shared/workflow-contracts';
import type { PublishRequest, TaskDoc } from '../../src/shared/types';
import type { accountGate, publishBatch, publishSingle } from '../../src/workflows';
import { startDevStack, TEST_ACCOUNTS, withWorker, type DevStack } from '../helpers/harness';
import { waitUntil } from '../helpers/polling';
import { hangUntilAborted, ScriptedDriver } from '../helpers/scripted-driver';
import { auditOf } from '../../src/service/audit';
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

/**
 * The fixture sets. The workflows branch on the `protocol` their input carries (src/shared/workflow-contracts.ts), so
 * each protocol a run may have been started with has its own fixtures: the unversioned ones at the top (runs started
 * before protocol 2, recorded by the code of that time) and `protocol-N/` for each later one, up to TASK_PROTOCOL.
 * When it moves on, record only the new set (`-t '^protocol N '`): re-recording an older set would replace what the
 * code of its time wrote with what today's code writes.
 */
const SETS: Array<{ label: string; dir: string; protocol: number | undefined }> = [
  { label: 'unversioned', dir: '', protocol: undefined },
  ...Array.from({ length: TASK_PROTOCOL - 1 }, (_, k) => ({
    label: `protocol ${k + 2}`,
    dir: `protocol-${k + 2}`,
    protocol: k + 2,
  })),
];

/** A single started as the API of that protocol starts it (from protocol 2: createdAt, first document in the memo). */
function startSingle(
  client: Client,
  taskQueue: string,
  protocol: number | undefined,
  over: Partial<PublishRequest> = {},
) {
  const workflowId = `t-${randomUUID()}`;
  const req = request(over);
  if (protocol === undefined)
    return client.workflow.start<typeof publishSingle>('publishSingle', {
      taskQueue,
      workflowId,
      args: [{ request: req, policy: DEFAULT_POLICY }],
    });
  const createdAt = new Date().toISOString();
  return client.workflow.start<typeof publishSingle>('publishSingle', {
    taskQueue,
    workflowId,
    args: [{ request: req, policy: DEFAULT_POLICY, createdAt, protocol }],
    memo: {
      [DOC_MEMO_KEY]: initialTaskDoc({ taskId: workflowId, request: req, parentTaskId: null, createdAt, runId: null }),
    },
    typedSearchAttributes: [
      { key: SEARCH_ATTRIBUTE_KEYS.status, value: 'pending' },
      { key: SEARCH_ATTRIBUTE_KEYS.type, value: 'publish' },
      { key: SEARCH_ATTRIBUTE_KEYS.platform, value: req.platform },
      { key: SEARCH_ATTRIBUTE_KEYS.account, value: req.accountId },
    ],
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
  mkdirSync(path.dirname(file), { recursive: true });
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

describe.each(SETS)('$label', ({ dir, protocol }) => {
  const at = (name: string) => path.join(dir, name);

  test('single: one upload that succeeds', async () => {
    await run(new ScriptedDriver(), async (tq) => {
      const handle = await startSingle(stack.client, tq, protocol);
      expect((await handle.result()).status).toBe('success');
      await save(at('single-success'), handle.workflowId);
    });
  });

  test('single: a rejected upload lands in review, a retry with a patch succeeds', async () => {
    const driver = new ScriptedDriver().then(async () => {
      throw contentRejected('title too long');
    });
    await run(driver, async (tq) => {
      const handle = await startSingle(stack.client, tq, protocol, { title: 'a very long title' });
      await docWhere(handle.workflowId, (d) => d.review?.open === true);
      await handle.executeUpdate(reviewDecisionUpdate, { args: [{ action: 'retry', patch: { title: 'short' } }] });
      expect(await handle.result()).toMatchObject({ status: 'success', attempts: 2 });
      await save(at('single-review-retry-success'), handle.workflowId);
    });
  });

  test('single: cancelled while its upload runs', async () => {
    const driver = new ScriptedDriver().then(hangUntilAborted);
    await run(driver, async (tq) => {
      const handle = await startSingle(stack.client, tq, protocol);
      await docWhere(handle.workflowId, (d) => d.status === 'running');
      await waitUntil('the first upload', async () => driver.calls.length === 1);
      await handle.cancel();
      await expect(handle.result()).rejects.toBeInstanceOf(WorkflowFailedError);
      expect(driver.aborted).toHaveLength(1);
      await save(at('single-cancel-running'), handle.workflowId);
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
            ...(protocol === undefined ? {} : { createdAt: new Date().toISOString(), protocol }),
          },
        ],
      });
      expect((await handle.result()).counts.success).toBe(4);
      const runs = await runChain(handle.workflowId, handle.firstExecutionRunId);
      expect(runs.length).toBeGreaterThan(1);
      for (const [k, runId] of runs.entries()) await save(at(`batch-run-${k + 1}`), handle.workflowId, runId);
      // A child: a single that reports to its batch.
      await save(at('batch-child'), `${handle.workflowId}-0`);
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
      const first = await startSingle(stack.client, tq, protocol, { accountId: 'acct-2' });
      await docWhere(first.workflowId, (d) => d.status === 'running');
      const others = [
        await startSingle(stack.client, tq, protocol, { accountId: 'acct-2', title: 'second' }),
        await startSingle(stack.client, tq, protocol, { accountId: 'acct-2', title: 'third' }),
      ];
      for (const o of others) await docWhere(o.workflowId, (d) => d.progress?.stage === 'waiting_for_account');
      release();
      for (const h of [first, ...others]) expect((await h.result()).status).toBe('success');
      // The gate ends once nothing is queued or held.
      const gate = stack.client.workflow.getHandle<typeof accountGate>(accountGateId('acct-2', tq));
      await gate.result();
      const history = await save(at('gate-account-several-tasks'), gate.workflowId);
      const requests = history.events?.filter(
        (e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'gateRequest',
      );
      expect(requests).toHaveLength(3);
      await save(at('gate-waiting-task'), others[1]!.workflowId);
    });
  });
});

/**
 * Gates carry their own protocol (GATE_PROTOCOL, set by enqueueAtGate whatever the task's), so a gate change that the
 * task sets do not reach gets its own folder, `gate-protocol-N/`, recorded with today's gate code.
 */
describe(`gate protocol ${GATE_PROTOCOL}`, () => {
  test('gate: an account that needs a login holds its queue until reactivated', async () => {
    let release!: () => void;
    const firstMayFinish = new Promise<void>((resolve) => (release = resolve));
    const driver = new ScriptedDriver().then(
      async (ctx: PublishContext): Promise<DriverResult> => {
        await firstMayFinish;
        return { postId: `post-${ctx.taskId}`, url: `https://example.invalid/p/${ctx.taskId}` };
      },
      async () => {
        throw authExpired('the session has expired');
      },
    );
    await run(driver, async (tq) => {
      const protocol = TASK_PROTOCOL;
      const first = await startSingle(stack.client, tq, protocol, { accountId: 'acct-1' });
      await docWhere(first.workflowId, (d) => d.status === 'running');
      const failing = await startSingle(stack.client, tq, protocol, { accountId: 'acct-1', priority: 1 });
      await docWhere(failing.workflowId, (d) => d.progress?.stage === 'waiting_for_account');
      const queued = await startSingle(stack.client, tq, protocol, { accountId: 'acct-1', priority: 2 });
      await docWhere(queued.workflowId, (d) => d.progress?.stage === 'waiting_for_account');
      release();
      await docWhere(failing.workflowId, (d) => d.review?.open === true);
      await docWhere(queued.workflowId, (d) => d.progress?.stage === 'account_needs_login');
      const gate = stack.client.workflow.getHandle<typeof accountGate>(accountGateId('acct-1', tq));
      await gate.executeUpdate(reactivateAccountUpdate, { args: [auditOf({ name: 'recorder', role: 'operator' })] });
      for (const h of [first, queued]) expect((await h.result()).status).toBe('success');
      await failing.cancel();
      await expect(failing.result()).rejects.toBeInstanceOf(WorkflowFailedError);
      await gate.result();
      const history = await save(`gate-protocol-${GATE_PROTOCOL}/gate-account-needs-login`, gate.workflowId);
      const memos = history.events?.filter((e) => e.workflowPropertiesModifiedEventAttributes?.upsertedMemo);
      expect(memos).toHaveLength(2); // needs_login, then active again
    });
  });
});
