/**
 * Queue semantics on the time-skipping test server, with the real activities and a real redis-server; only the
 * platform is scripted: one upload at a time per account, turns in priority order, cancel and crash safety, the
 * account's rate limits, the platform's concurrency cap, and AuthExpired holding the account's queue.
 */
import { randomUUID } from 'node:crypto';
import { type WorkflowHandle, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { authExpired, rateLimited, type DriverResult, type PublishContext } from '../../src/platforms/types';
import {
  accountGateId,
  GATE_MEMO_KEY,
  platformGateId,
  reactivateAccountUpdate,
  type GateMemo,
} from '../../src/shared/definitions';
import { DEFAULT_POLICY, type PublishPolicy, type QueueLimits } from '../../src/shared/policy';
import type { PublishRequest, TaskDoc } from '../../src/shared/types';
import type { accountGate, publishSingle } from '../../src/workflows';
import {
  expectCancelled,
  type Harness,
  perFile,
  startWorkflowTestStack,
  waitForDoc,
  withWorker,
} from '../helpers/harness';
import { auditOf } from '../../src/service/audit';
import { waitUntil } from '../helpers/polling';
import { hangUntilAborted, ScriptedDriver } from '../helpers/scripted-driver';
import { TASK_PROTOCOL } from '../../src/shared/workflow-contracts';

const ACCOUNTS = [
  ...['acct-1', 'acct-2', 'acct-3', 'acct-4'].map((id) => ({ id, platform: 'scripted', settings: {} })),
  // Its own limit, from the accounts file: 2 uploads per rolling hour.
  {
    id: 'acct-window',
    platform: 'scripted',
    settings: { rateLimits: { maxPerWindow: { count: 2, windowSeconds: 3600 } } },
  },
];

let env: TestWorkflowEnvironment;
let h: Harness;

perFile(
  () => startWorkflowTestStack({ accounts: ACCOUNTS }),
  (s) => ({ env, harness: h } = s),
);

const policyWith = (limits: QueueLimits = {}, over: Partial<PublishPolicy> = {}): PublishPolicy => ({
  ...DEFAULT_POLICY,
  autoRetry: { maxAttempts: 2, initialDelayMs: 60_000, maxDelayMs: 600_000 },
  limits,
  ...over,
});

function start(
  taskQueue: string,
  over: Partial<PublishRequest> = {},
  policy: PublishPolicy = policyWith(),
): Promise<WorkflowHandle<typeof publishSingle>> {
  const workflowId = `t-${randomUUID()}`;
  startedOn.set(taskQueue, [...(startedOn.get(taskQueue) ?? []), workflowId]);
  return env.client.workflow.start<typeof publishSingle>('publishSingle', {
    taskQueue,
    workflowId,
    args: [
      {
        request: {
          platform: 'scripted',
          accountId: 'acct-1',
          video: { path: '/media/v.mp4' },
          title: 'hello',
          priority: 5,
          ...over,
        },
        policy,
        protocol: TASK_PROTOCOL,
      },
    ],
  });
}

const docWhere = (id: string, pred: (d: TaskDoc) => boolean) => waitForDoc(h, id, pred);
const allDone = (handles: WorkflowHandle[], status: TaskDoc['status'] = 'success') =>
  Promise.all(handles.map((x) => docWhere(x.workflowId, (d) => d.status === status)));

/** A task is in its gate's queue once its document says why it waits. */
const waitingAt = (id: string, stage = 'waiting_for_account') =>
  docWhere(id, (d) => d.status === 'pending' && d.progress?.stage === stage);
const rateLimitedUntil = async (id: string) => {
  const d = await docWhere(id, (x) => x.progress?.stage.startsWith('rate_limited_until_') === true);
  expect(d.status).toBe('pending');
  return Date.parse(d.progress!.stage.slice('rate_limited_until_'.length));
};
/** The gate's memo, read with describe: no worker involved (the test server can hold a query that races a task). */
const gateMemo = async (tq: string, accountId = 'acct-1') =>
  (await env.client.workflow.getHandle(accountGateId(accountId, tq)).describe()).memo?.[GATE_MEMO_KEY] as
    GateMemo | undefined;
const ms = (iso: string | null | undefined) => Date.parse(iso!);

const { EventType } = temporal.api.enums.v1;
/**
 * Whether the gate committed each change of its login state to its memo before it told any task: between the event
 * that upserts the memo and the next local-activity marker (the gate's signals to tasks, src/workflows/signals.ts)
 * the gate's workflow task completed, so `describe` (GET /accounts) already showed the new state. Returns, per memo
 * upsert in order, its status and whether that holds.
 */
async function memoCommittedBeforeTelling(tq: string, accountId = 'acct-1') {
  const events = (await env.client.workflow.getHandle(accountGateId(accountId, tq)).fetchHistory()).events ?? [];
  const is = (x: (typeof events)[number], t: number) => Number(x.eventType) === t;
  const out: Array<{ status: string | undefined; committedFirst: boolean }> = [];
  events.forEach((e, i) => {
    const field = e.workflowPropertiesModifiedEventAttributes?.upsertedMemo?.fields?.[GATE_MEMO_KEY];
    if (!field) return;
    const status = defaultPayloadConverter.fromPayload<GateMemo>(field as Payload)?.status;
    const marker = events.findIndex((x, k) => k > i && is(x, EventType.EVENT_TYPE_MARKER_RECORDED));
    const between = events.slice(i + 1, marker < 0 ? events.length : marker);
    const committedFirst = between.some((x) => is(x, EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED));
    out.push({ status, committedFirst });
  });
  return out;
}

/** Records how many uploads run at once, per account and in all. */
class TrackingDriver extends ScriptedDriver {
  private readonly inFlight = new Map<string, number>();
  readonly maxPerAccount = new Map<string, number>();
  private total = 0;
  maxTotal = 0;

  override async publish(ctx: PublishContext): Promise<DriverResult> {
    const a = ctx.request.accountId;
    const n = (this.inFlight.get(a) ?? 0) + 1;
    this.inFlight.set(a, n);
    this.maxPerAccount.set(a, Math.max(n, this.maxPerAccount.get(a) ?? 0));
    this.maxTotal = Math.max(this.maxTotal, ++this.total);
    try {
      return await super.publish(ctx);
    } finally {
      this.inFlight.set(a, this.inFlight.get(a)! - 1);
      this.total--;
    }
  }

  order(): string[] {
    return this.calls.map((c) => c.taskId);
  }
}

/** A driver step that takes `ms` of real time (never long enough for a heartbeat timeout). */
const takes =
  (ms: number) =>
  async (ctx: PublishContext): Promise<DriverResult> => {
    await new Promise((r) => setTimeout(r, ms));
    return { postId: `post-${ctx.taskId}`, url: `https://example.invalid/${ctx.taskId}` };
  };

/** A driver step that finishes when the test says so. */
function heldUntilOpened() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  const step = async (ctx: PublishContext): Promise<DriverResult> => {
    await opened;
    return { postId: `post-${ctx.taskId}`, url: `https://example.invalid/${ctx.taskId}` };
  };
  return { step, open };
}

/** Workflows each test started, by task queue. */
const startedOn = new Map<string, string[]>();

/**
 * Runs `fn` with a worker on a fresh task queue. Before the worker stops, every task must have closed and every gate
 * must have ended: the test server holds its clock while a workflow task is outstanding, and a gate timer firing
 * later on a queue nobody polls any more would stop time skipping for the rest of the file.
 */
function run<T>(driver: ScriptedDriver, fn: (taskQueue: string) => Promise<T>) {
  return withWorker(
    { connection: env.nativeConnection, harness: h, drivers: [driver], uploadConcurrency: 8 },
    async (tq) => {
      const settle = async () => {
        const tasks = startedOn.get(tq) ?? [];
        const gates = [...ACCOUNTS.map((a) => accountGateId(a.id, tq)), platformGateId('scripted', tq)];
        await waitUntil('every task and gate to be done', async () => {
          for (const id of tasks)
            if ((await env.client.workflow.getHandle(id).describe()).status.name === 'RUNNING') return false;
          for (const id of gates) if (!(await quiescent(id))) return false;
          return true;
        });
        // Gates that still remember rate limits end once the memory expires: skip past it while the worker runs.
        if (await anyRunning(gates)) await env.sleep('2 hours');
        await waitUntil('every gate to end', async () => !(await anyRunning(gates)));
      };
      try {
        const out = await fn(tq);
        await settle();
        return out;
      } catch (err) {
        // A failed test must not leave tasks (and gate timers) behind for the next one.
        for (const id of startedOn.get(tq) ?? [])
          await env.client.workflow
            .getHandle(id)
            .cancel()
            .catch(() => undefined);
        await settle().catch(() => undefined);
        throw err;
      }
    },
  );
}

async function anyRunning(ids: string[]): Promise<boolean> {
  for (const id of ids) {
    const open = await env.client.workflow
      .getHandle(id)
      .describe()
      .then(
        (d) => d.status.name === 'RUNNING',
        () => false,
      );
    if (open) return true;
  }
  return false;
}

/** No workflow task scheduled after the last completed one (true for a gate that was never started). */
async function quiescent(workflowId: string): Promise<boolean> {
  let events;
  try {
    events = (await env.client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  } catch {
    return true;
  }
  const types = events.map((e) => Number(e.eventType));
  return types.lastIndexOf(5) < types.lastIndexOf(7); // WorkflowTaskScheduled < WorkflowTaskCompleted
}

test('uploads on one account never overlap, while two accounts upload in parallel', async () => {
  const driver = new TrackingDriver();
  driver.fallback = takes(150);
  await run(driver, async (tq) => {
    const handles = [];
    for (let i = 0; i < 5; i++)
      handles.push(await start(tq, { accountId: 'acct-1' }), await start(tq, { accountId: 'acct-2' }));
    await allDone(handles);
    expect(driver.calls).toHaveLength(10);
    expect(driver.maxPerAccount.get('acct-1')).toBe(1);
    expect(driver.maxPerAccount.get('acct-2')).toBe(1);
    expect(driver.maxTotal).toBe(2);
  });
});

test('waiting tasks show waiting_for_account and get the account in priority order, then submission order', async () => {
  const holder = heldUntilOpened();
  const driver = new TrackingDriver().then(holder.step);
  await run(driver, async (tq) => {
    const first = await start(tq, { priority: 5, title: 'holder' });
    await waitUntil('the first upload to start', async () => driver.calls.length === 1);
    const waiting: Array<{ p: number; handle: WorkflowHandle }> = [];
    for (const p of [5, 1, 9, 1, 3]) {
      const handle = await start(tq, { priority: p });
      await waitingAt(handle.workflowId); // in the queue before the next one is submitted
      waiting.push({ p, handle });
    }
    holder.open();
    await allDone([first, ...waiting.map((w) => w.handle)]);
    // Priority first; the two priority-1 tasks in the order they were submitted.
    const expected = [...waiting].sort((a, b) => a.p - b.p).map((w) => w.handle.workflowId);
    expect(driver.order()).toEqual([first.workflowId, ...expected]);
    expect(driver.maxPerAccount.get('acct-1')).toBe(1);
  });
});

test('a cancelled waiting task leaves the queue; a cancelled holder gives its turn to the next task', async () => {
  const driver = new TrackingDriver().then(hangUntilAborted);
  await run(driver, async (tq) => {
    const holder = await start(tq);
    await waitUntil('the first upload to start', async () => driver.calls.length === 1);
    const w1 = await start(tq, { priority: 1 });
    await waitingAt(w1.workflowId);
    const w2 = await start(tq, { priority: 2 });
    await waitingAt(w2.workflowId);

    await w1.cancel();
    await expectCancelled(w1);
    await docWhere(w1.workflowId, (d) => d.status === 'cancelled');

    await holder.cancel();
    await expectCancelled(holder);
    expect(driver.aborted.map((c) => c.taskId)).toContain(holder.workflowId);
    // w1 was first in line: had it stayed queued, it would have been granted (and never released) before w2.
    await docWhere(w2.workflowId, (d) => d.status === 'success');
    expect(driver.order()).toEqual([holder.workflowId, w2.workflowId]);
  });
});

test('min interval (platform default): the next upload waits with rate_limited_until_<iso>, then runs', async () => {
  const driver = new TrackingDriver();
  const policy = policyWith({ minIntervalMs: 10 * 60_000 });
  await run(driver, async (tq) => {
    const a = await start(tq, {}, policy);
    const aDone = await docWhere(a.workflowId, (d) => d.status === 'success');
    const b = await start(tq, {}, policy);
    const until = await rateLimitedUntil(b.workflowId);
    // Ten minutes after a's upload ended (its turn was given back between its start and its completion).
    expect(until).toBeGreaterThanOrEqual(ms(aDone.started_at) + 10 * 60_000);
    expect(until).toBeLessThanOrEqual(ms(aDone.completed_at) + 10 * 60_000 + 1000);
    expect(driver.calls).toHaveLength(1);

    await b.result(); // the test server skips the ten minutes
    const done = await docWhere(b.workflowId, (d) => d.status === 'success');
    expect(ms(done.started_at)).toBeGreaterThanOrEqual(until);
    expect(driver.calls).toHaveLength(2);
  });
});

test("rolling window (the account's own setting): a third upload within the hour waits until the first leaves it", async () => {
  const driver = new TrackingDriver();
  await run(driver, async (tq) => {
    const handles = [await start(tq, { accountId: 'acct-window' }), await start(tq, { accountId: 'acct-window' })];
    const [first] = await allDone(handles);
    const third = await start(tq, { accountId: 'acct-window' });
    const until = await rateLimitedUntil(third.workflowId);
    // The first turn was granted just before the first task started running.
    expect(until).toBeLessThanOrEqual(ms(first!.started_at) + 3600_000 + 1000);
    expect(until).toBeGreaterThan(ms(first!.created_at) + 3600_000 - 1);

    await third.result();
    const d = await docWhere(third.workflowId, (x) => x.status === 'success');
    expect(ms(d.started_at)).toBeGreaterThanOrEqual(until);
    expect(driver.calls).toHaveLength(3);
  });
});

test('a platform "retry after" pauses the whole account, not just the task that was told', async () => {
  const driver = new TrackingDriver().then(async () => {
    throw rateLimited('slow down', 600);
  });
  await run(driver, async (tq) => {
    const told = await start(tq);
    const retrying = await docWhere(told.workflowId, (d) => d.status === 'retry');
    const other = await start(tq, { priority: 0 });
    const until = await rateLimitedUntil(other.workflowId);
    expect(until).toBeGreaterThanOrEqual(ms(retrying.updated_at) + 600_000 - 1000);
    expect(driver.calls).toHaveLength(1);

    // One result() at a time: each unlocks and relocks the test server's clock.
    await other.result();
    await told.result();
    const d = await docWhere(other.workflowId, (x) => x.status === 'success');
    expect(ms(d.started_at)).toBeGreaterThanOrEqual(until);
    expect(driver.calls).toHaveLength(3);
  });
});

test('the platform cap holds across accounts: at most N uploads at once on the platform', async () => {
  const driver = new TrackingDriver();
  driver.fallback = takes(120);
  const policy = policyWith({ platformMaxConcurrent: 2 });
  await run(driver, async (tq) => {
    const handles = [];
    for (let i = 0; i < 3; i++)
      for (const accountId of ['acct-1', 'acct-2', 'acct-3', 'acct-4'])
        handles.push(await start(tq, { accountId }, policy));
    await allDone(handles);
    expect(driver.calls).toHaveLength(12);
    expect(driver.maxTotal).toBe(2);
    for (const a of ['acct-1', 'acct-2', 'acct-3', 'acct-4']) expect(driver.maxPerAccount.get(a)).toBe(1);
  });
});

test('AuthExpired: the task goes to review and the account holds its queue (account_needs_login) until reactivated', async () => {
  const holder = heldUntilOpened();
  const driver = new TrackingDriver().then(holder.step, async () => {
    throw authExpired('the session has expired');
  });
  await run(driver, async (tq) => {
    const warmup = await start(tq);
    await waitUntil('the first upload to start', async () => driver.calls.length === 1);
    const failing = await start(tq, { priority: 1 });
    await waitingAt(failing.workflowId);
    const waiting = [await start(tq, { priority: 2 }), await start(tq, { priority: 3 })];
    for (const w of waiting) await waitingAt(w.workflowId);
    holder.open();

    const review = await docWhere(failing.workflowId, (d) => d.review?.open === true);
    expect(review.review?.kind).toBe('AuthExpired');
    for (const w of waiting) await waitingAt(w.workflowId, 'account_needs_login');
    expect(await gateMemo(tq)).toMatchObject({ status: 'needs_login', reason: 'the session has expired' });

    await env.sleep('1 day');
    expect(driver.calls).toHaveLength(2);

    const gate = env.client.workflow.getHandle(accountGateId('acct-1', tq));
    expect(
      await gate.executeUpdate(reactivateAccountUpdate, { args: [auditOf({ name: 'ops-test', role: 'operator' })] }),
    ).toEqual({ status: 'active', waiting: 2 });
    await allDone(waiting);
    expect(driver.order().slice(2)).toEqual(waiting.map((w) => w.workflowId));
    expect(await gateMemo(tq)).toMatchObject({ status: 'active' });
    // Reactivating an account that does not need a login is refused: by the validator while the gate runs, or because
    // the idle gate has ended (the API answers 409 for both).
    const again = await gate
      .executeUpdate(reactivateAccountUpdate, { args: [auditOf({ name: 'ops-test', role: 'operator' })] })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(again instanceof WorkflowUpdateFailedError || again instanceof WorkflowNotFoundError).toBe(true);
    // Each change of the login state reached the memo (what GET /accounts reads) before any task heard of it: no task
    // shows account_needs_login, or uploads after the reactivation, while the account list still says otherwise.
    expect(await memoCommittedBeforeTelling(tq)).toEqual([
      { status: 'needs_login', committedFirst: true },
      { status: 'active', committedFirst: true },
    ]);
    await failing.cancel();
    await expectCancelled(failing);
    await warmup.result();
  });
});

test('the gate continues as new carrying its queue, its holder and its rate-limit memory', async () => {
  const holder = heldUntilOpened();
  const driver = new TrackingDriver().then(holder.step);
  // At most 3 turns per hour: the later turns depend on grant times remembered across runs.
  const policy = policyWith({ maxPerWindow: { count: 3, windowMs: 3600_000 } });
  await run(driver, async (tq) => {
    // Started by hand with a small history budget; the tasks' requests then reach it by signal.
    const gateId = accountGateId('acct-1', tq);
    const gate = await env.client.workflow.start<typeof accountGate>('accountGate', {
      taskQueue: tq,
      workflowId: gateId,
      args: [{ kind: 'account', key: 'acct-1', maxHistoryLength: 20 }],
    });
    const first = await start(tq, {}, policy);
    await waitUntil('the first upload to start', async () => driver.calls.length === 1);
    const priorities = [4, 3, 2, 1, 0, 4];
    const waiting = [];
    for (const p of priorities) {
      const handle = await start(tq, { priority: p }, policy);
      await waitingAt(handle.workflowId);
      waiting.push({ p, handle });
    }
    // It has continued as new while holding a turn and a queue.
    const current = await env.client.workflow.getHandle(gateId).describe();
    expect(current.runId).not.toBe(gate.firstExecutionRunId);
    holder.open();

    for (const w of waiting) await w.handle.result(); // skips the hours the window imposes
    const docs = await allDone([first, ...waiting.map((w) => w.handle)]);
    const expected = [...waiting].sort((a, b) => a.p - b.p).map((w) => w.handle.workflowId);
    expect(driver.order()).toEqual([first.workflowId, ...expected]);
    // No more than 3 starts in any hour, across every run of the gate.
    const starts = docs.map((d) => ms(d.started_at)).sort((a, b) => a - b);
    // (A task starts running a moment after its grant: allow a second.)
    for (let i = 3; i < starts.length; i++) expect(starts[i]! - starts[i - 3]!).toBeGreaterThan(3600_000 - 1000);
    expect(driver.maxPerAccount.get('acct-1')).toBe(1);
  });
});
