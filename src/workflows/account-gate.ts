/**
 * Queue gates: at most one upload at a time per account, limits on how often an account publishes, and a cap on
 * concurrent uploads per platform, across every worker, process and batch of the deployment.
 *
 * A gate is an entity workflow, `accountGate` (`account-gate-<accountId>`) or `platformGate`
 * (`platform-gate-<platform>`, N slots). A task asks for a turn just before its upload, waits for the
 * `accountTurnGranted` signal, uploads, and gives the turn back in a non-cancellable `finally`. The gate grants turns
 * in priority order, then submission order, and only when the account's rate limits allow.
 *
 * Why a workflow and not a Redis lock with a TTL:
 * - A TTL is a guess about how long an upload takes. The old system's 300 s semaphore expired in the middle of long
 *   uploads (two sessions on one account); a long TTL instead blocks the account for that long after a crash. The gate
 *   has no TTL: it knows its holder (one workflow run) and, once the holder's lease has passed, asks Temporal whether
 *   that run is still open. A live holder keeps its turn however long its upload takes; a closed one (terminated,
 *   reset) loses it at the next check. Nothing to unlock by hand, no deadlock.
 * - The queue, its order and the rate-limit memory (when each turn started) are workflow state: durable, replayed
 *   after any crash, carried through continue-as-new. Redis is only the projection and may be down.
 * - Waiting costs nothing: a waiting task holds no worker slot, only a `condition` in its own history.
 *
 * How a task reaches its gate: the `enqueueAtGate` activity signals-with-start the gate (a workflow cannot, and a
 * child gate would be tied to whichever task came first). Everything else is a signal between the two workflows:
 * grants, waiting stages, releases, and the liveness check, for which the gate re-sends the grant to the holder's run
 * (Temporal refuses a signal to a closed run).
 */
import type { SignalDefinition } from '@temporalio/common';
import {
  allHandlersFinished,
  CancellationScope,
  condition,
  continueAsNew,
  log,
  metricMeter,
  proxyLocalActivities,
  setHandler,
  sleep,
  upsertMemo,
  workflowInfo,
} from '@temporalio/workflow';
import {
  accountGateId,
  accountTurnGranted,
  GATE_MEMO_KEY,
  gateReleaseSignal,
  gateRequestSignal,
  gateRunClosedSignal,
  gateStateQuery,
  gateWaitStageSignal,
  platformGateId,
  reactivateAccountUpdate,
  type AccountStatus,
  type GateActivities,
  type GateKind,
  type GateMemo,
  type GateRelease,
  type GateRequest,
  type GateSnapshot,
} from '../shared/definitions';
import type { PublishPolicy } from '../shared/policy';
import { decisionRecord, type Audit, type DecisionRecord } from '../shared/types';
import { LOCAL_SIGNALS_PROTOCOL, signalRun } from './signals';

// Reaching the gate must not fail the task: retried until it works (the request is deduplicated by its ticket).
const enqueueOptions = {
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
} as const;
// A local activity costs Temporal one marker instead of a task-queue round trip and a further workflow task (see
// writeDoc in projector.ts).
const { enqueueAtGate } = proxyLocalActivities<GateActivities>(enqueueOptions);

export const WAITING_STAGE: Record<GateKind, string> = {
  account: 'waiting_for_account',
  platform: 'waiting_for_platform',
};
export const NEEDS_LOGIN_STAGE = 'account_needs_login';
export const rateLimitedStage = (until: number) => `rate_limited_until_${new Date(until).toISOString()}`;

/** A holder is re-checked at least this often, so a terminated holder blocks its account for minutes, not hours. */
const MAX_LEASE_MS = 5 * 60_000;
/** Tickets remembered after they finish, so that a late duplicate request is not queued again. */
const RECENT_TICKETS = 500;
/** Grant times kept for the rolling window (far above any sensible count per window). */
const MAX_GRANTS_REMEMBERED = 10_000;

interface Waiter extends GateRequest {
  seq: number;
  /** The stage this task was last told (its document's `progress.stage`). */
  stage: string;
}

interface Holder extends GateRequest {
  grantedAt: number;
  /** When to check that the holder's run is still open. */
  checkAt: number;
}

/** Everything a gate knows; carried through continue-as-new. Times are epoch ms of workflow time. */
export interface GateState {
  status: AccountStatus;
  needsLogin: { since: string; reason: string; taskId: string } | null;
  pausedUntil: number;
  queue: Waiter[];
  holders: Holder[];
  /** Start times of recent turns (rolling-window limit), oldest first. */
  grants: number[];
  lastReleaseAt: number | null;
  /** How long grant and release times matter: the longest window or interval any request asked for. */
  memoryMs: number;
  recent: string[];
  seq: number;
  grantsTotal: number;
  runs: number;
  /** Who reactivated the account last (the audit trail; absent in runs started before it). */
  lastReactivation?: DecisionRecord | null;
}

export interface GateInput {
  kind: GateKind;
  /** The account id, or the platform. */
  key: string;
  /** Set by the gate itself when it continues as new. */
  state?: GateState;
  /** Continue as new beyond this many history events (Temporal's own suggestion applies regardless). */
  maxHistoryLength?: number;
  /**
   * 2 (set by enqueueAtGate since 2026-12-03, carried through continue-as-new): the gate's wake-up timer is kept
   * across turns instead of being cancelled and started again on every signal (see the loop). Absent in gates
   * started before: they keep the old timers, so their histories replay unchanged.
   * 3 (since 2026-12-03, evening): grants, stages and liveness checks go out by local activity (src/workflows/signals.ts).
   * 4 (since 2026-12-08): a change of the login state is committed to the memo before any task is told (memoFirst).
   */
  protocol?: number;
}

/** One per account: one upload at a time, the account's rate limits, and its login state. */
export async function accountGate(input: GateInput): Promise<void> {
  return runGate(input);
}

/** One per platform with `maxConcurrent`: at most N uploads at once on the platform. */
export async function platformGate(input: GateInput): Promise<void> {
  return runGate(input);
}

function freshState(): GateState {
  return {
    status: 'active',
    needsLogin: null,
    pausedUntil: 0,
    queue: [],
    holders: [],
    grants: [],
    lastReleaseAt: null,
    memoryMs: 0,
    recent: [],
    seq: 0,
    grantsTotal: 0,
    runs: 0,
  };
}

/** Priority first (0 most urgent), then submission time, then arrival at the gate. */
function best(queue: Waiter[]): Waiter | undefined {
  let out: Waiter | undefined;
  for (const w of queue) {
    if (
      !out ||
      w.priority < out.priority ||
      (w.priority === out.priority &&
        (w.submittedAt < out.submittedAt || (w.submittedAt === out.submittedAt && w.seq < out.seq)))
    )
      out = w;
  }
  return out;
}

const iso = (ms: number) => new Date(ms).toISOString();

async function runGate(input: GateInput): Promise<void> {
  const { kind, key } = input;
  const gateId = workflowInfo().workflowId;
  const s: GateState = input.state ?? freshState();
  s.runs++;
  const done = new Set(s.recent);
  let dirty = true;
  let blockedUntil: number | undefined;
  const keepTimer = (input.protocol ?? 1) >= 2;
  /** Protocol 2: when the pending wake-up timer fires (undefined: none pending), and whether one has fired. */
  let alarmAt: number | undefined;
  let rang = false;
  /**
   * Protocol 4: a login-state memo upserted in this workflow task, not yet on the server. From protocol 3 the gate
   * tells tasks by local activity, which runs before the workflow task that issued the upsert completes: a task would
   * show account_needs_login (or start its upload after a reactivation) while `GET /accounts`, which reads the memo,
   * still showed the old state. So the gate first ends its workflow task with a 1 ms timer, which commits the memo,
   * and only then tells anyone (two events and one workflow task per change of login state, which is rare).
   */
  const memoFirst = (input.protocol ?? 1) >= 4;
  let memoUnsent = false;

  const memo = (): GateMemo => ({
    status: s.status,
    since: s.needsLogin?.since ?? null,
    reason: s.needsLogin?.reason ?? null,
    lastReactivation: s.lastReactivation ?? null,
  });
  // A new run shows the login state it inherited (continue-as-new starts with a fresh memo).
  if (input.state && (s.status !== 'active' || s.lastReactivation)) upsertMemo({ [GATE_MEMO_KEY]: memo() });

  const remember = (ticket: string) => {
    done.add(ticket);
    s.recent.push(ticket);
    if (s.recent.length > RECENT_TICKETS) done.delete(s.recent.shift()!);
  };

  const enqueue = (r: GateRequest) => {
    if (
      done.has(r.ticket) ||
      s.queue.some((w) => w.ticket === r.ticket) ||
      s.holders.some((h) => h.ticket === r.ticket)
    )
      return;
    s.queue.push({ ...r, seq: s.seq++, stage: WAITING_STAGE[kind] });
    s.memoryMs = Math.max(s.memoryMs, r.minIntervalMs ?? 0, r.maxPerWindow?.windowMs ?? 0);
    dirty = true;
  };

  const release = (rel: GateRelease) => {
    const now = Date.now();
    const h = s.holders.findIndex((x) => x.ticket === rel.ticket);
    const w = s.queue.findIndex((x) => x.ticket === rel.ticket);
    const taskId = (h >= 0 ? s.holders[h] : w >= 0 ? s.queue[w] : undefined)?.workflowId ?? rel.ticket.split('/')[0]!;
    if (h >= 0) {
      s.holders.splice(h, 1);
      s.lastReleaseAt = now;
      remember(rel.ticket);
    } else if (w >= 0) {
      s.queue.splice(w, 1);
      remember(rel.ticket);
      // Used, though this history never granted it: the workflow task that did was lost after its grant went out
      // (protocol 3). Counted as a turn that ends now, so the rate limits see it (conservatively late).
      if (rel.held) {
        s.lastReleaseAt = now;
        s.grants.push(now);
      }
    }
    if (rel.needsLogin && kind === 'account' && s.status !== 'needs_login') {
      s.status = 'needs_login';
      s.needsLogin = { since: iso(now), reason: rel.needsLogin.message, taskId };
      upsertMemo({ [GATE_MEMO_KEY]: memo() });
      memoUnsent = true;
      log.warn('account needs a new login; its queue is held until it is reactivated', { account: key, taskId });
    }
    if (rel.pauseUntil !== undefined && rel.pauseUntil > s.pausedUntil) s.pausedUntil = rel.pauseUntil;
    dirty = true;
  };

  setHandler(gateRequestSignal, enqueue);
  setHandler(gateReleaseSignal, release);
  setHandler(gateRunClosedSignal, ({ workflowId, runId }) => {
    const ofRun = (r: GateRequest) => r.workflowId === workflowId && r.runId === runId;
    for (const h of s.holders.filter(ofRun)) release({ ticket: h.ticket });
    for (const w of s.queue.filter(ofRun)) release({ ticket: w.ticket });
  });
  setHandler(
    reactivateAccountUpdate,
    // Runs started before the audit trail sent no arguments.
    (audit: Audit | undefined) => {
      s.lastReactivation = decisionRecord('reactivate', audit, new Date().toISOString());
      s.status = 'active';
      s.needsLogin = null;
      upsertMemo({ [GATE_MEMO_KEY]: memo() });
      memoUnsent = true;
      dirty = true;
      return { status: s.status, waiting: s.queue.length };
    },
    {
      validator: (_audit: Audit | undefined) => {
        if (kind !== 'account') throw new Error(`${gateId} is not an account gate`);
        if (s.status !== 'needs_login') throw new Error(`account ${key} does not need a login (status ${s.status})`);
      },
    },
  );
  setHandler(gateStateQuery, (): GateSnapshot => {
    return {
      kind,
      key,
      status: s.status,
      needsLogin: s.needsLogin,
      holders: s.holders.map((h) => ({ taskId: h.workflowId, ticket: h.ticket, grantedAt: iso(h.grantedAt) })),
      queue: [...s.queue]
        .sort((a, b) => a.priority - b.priority || a.submittedAt - b.submittedAt || a.seq - b.seq)
        .map((w) => ({ taskId: w.workflowId, ticket: w.ticket, priority: w.priority, stage: w.stage })),
      grants: s.grants.map(iso),
      lastReleaseAt: s.lastReleaseAt === null ? null : iso(s.lastReleaseAt),
      pausedUntil: s.pausedUntil > 0 ? iso(s.pausedUntil) : null,
      blockedUntil: blockedUntil === undefined ? null : iso(blockedUntil),
      grantsTotal: s.grantsTotal,
      runs: s.runs,
    };
  });

  /** The earliest time `next` may start, given the pause and the rate limits it carries. */
  const allowedAt = (next: Waiter, now: number): number => {
    let at = s.pausedUntil;
    if (next.minIntervalMs && s.lastReleaseAt !== null) at = Math.max(at, s.lastReleaseAt + next.minIntervalMs);
    if (next.maxPerWindow) {
      const { count, windowMs } = next.maxPerWindow;
      const recent = s.grants.filter((t) => t > now - windowMs);
      if (recent.length >= count) at = Math.max(at, recent[recent.length - count]! + windowMs);
    }
    return at;
  };

  /** Signals a task's run; false when the run has closed (Temporal refuses signals to closed runs). */
  const tell = <T>(to: { workflowId: string; runId: string }, signal: SignalDefinition<[T]>, arg: T) =>
    signalRun(input.protocol, to, signal, arg);

  /** Holders past their lease: a closed run gives its turn back; a live one keeps it, however long it takes. */
  const checkHolders = async () => {
    for (const h of [...s.holders]) {
      if (h.checkAt > Date.now()) continue;
      const alive = await tell(h, accountTurnGranted, { gateId, ticket: h.ticket });
      if (!s.holders.includes(h)) continue; // released while we asked
      if (alive) {
        h.checkAt = Date.now() + h.leaseMs;
      } else {
        log.warn('gate holder has closed without releasing; its turn is released', {
          gate: gateId,
          task: h.workflowId,
        });
        s.holders.splice(s.holders.indexOf(h), 1);
        s.lastReleaseAt = Date.now();
        remember(h.ticket);
      }
    }
  };

  /** Grants every turn the slots and limits allow; returns when the head of the queue may start, if it must wait. */
  const grantTurns = async (): Promise<number | undefined> => {
    for (;;) {
      if (s.status === 'needs_login') return undefined;
      const next = best(s.queue);
      if (!next || s.holders.length >= Math.max(1, next.slots)) return undefined;
      const now = Date.now();
      const at = allowedAt(next, now);
      if (at > now) return at;
      // Counted as held before the signal goes out, so a release racing the grant finds it.
      s.queue.splice(s.queue.indexOf(next), 1);
      const { seq: _seq, stage: _stage, ...request } = next;
      const holder: Holder = { ...request, grantedAt: now, checkAt: now + next.leaseMs };
      s.holders.push(holder);
      s.grants.push(now);
      s.grantsTotal++;
      if (!(await tell(next, accountTurnGranted, { gateId, ticket: next.ticket }))) {
        // The task closed while it waited (terminated): the turn was never used and passes on.
        const i = s.holders.indexOf(holder);
        if (i >= 0) s.holders.splice(i, 1);
        const g = s.grants.lastIndexOf(now);
        if (g >= 0) s.grants.splice(g, 1);
        s.grantsTotal--;
        remember(next.ticket);
      }
    }
  };

  /** Tells each waiting task why it waits, when that changes. */
  const tellWaiters = async () => {
    const head = best(s.queue);
    for (const w of [...s.queue]) {
      const stage =
        s.status === 'needs_login'
          ? NEEDS_LOGIN_STAGE
          : w === head && blockedUntil !== undefined
            ? rateLimitedStage(blockedUntil)
            : WAITING_STAGE[kind];
      if (w.stage === stage || !s.queue.includes(w)) continue;
      if (await tell(w, gateWaitStageSignal, { ticket: w.ticket, stage })) {
        w.stage = stage;
      } else {
        const i = s.queue.indexOf(w);
        if (i >= 0) s.queue.splice(i, 1);
        remember(w.ticket);
      }
    }
  };

  for (;;) {
    dirty = false;
    if (memoFirst && memoUnsent) {
      memoUnsent = false;
      // After the reactivation's update has completed: its completion and the timer are both commands, and their
      // order must not depend on how many microtasks the handler takes (the OpenTelemetry interceptors add some).
      await condition(allHandlersFinished);
      await sleep(1);
    }
    await checkHolders();
    blockedUntil = await grantTurns();
    await tellWaiters();

    const now = Date.now();
    if (s.memoryMs > 0) s.grants = s.grants.filter((t) => t > now - s.memoryMs);
    if (s.grants.length > MAX_GRANTS_REMEMBERED) s.grants.splice(0, s.grants.length - MAX_GRANTS_REMEMBERED);
    // When the last grant and release stop mattering to any limit a request has carried.
    const forgetAt =
      s.memoryMs > 0 ? Math.max(s.grants[s.grants.length - 1] ?? 0, s.lastReleaseAt ?? 0) + s.memoryMs : 0;
    const idle = s.queue.length === 0 && s.holders.length === 0 && s.status === 'active';
    if (idle && forgetAt <= now && s.pausedUntil <= now && !dirty) {
      // Nothing queued, held, paused or remembered: the gate ends, and the next request starts a fresh one. (Ending
      // keeps one open workflow per busy account, not per account ever used; signal-with-start makes the restart
      // safe: a request that arrives while the gate completes fails that completion and is handled by this run.)
      await condition(allHandlersFinished);
      if (!dirty) return;
    }

    const info = workflowInfo();
    if (info.continueAsNewSuggested || (input.maxHistoryLength && info.historyLength > input.maxHistoryLength)) {
      await condition(allHandlersFinished);
      s.recent = s.recent.slice(-RECENT_TICKETS);
      await continueAsNew<typeof accountGate>({
        kind,
        key,
        state: s,
        maxHistoryLength: input.maxHistoryLength,
        ...(input.protocol !== undefined ? { protocol: input.protocol } : {}),
      });
    }

    // Timers only while something is due: a holder to check, a waiting task's limit to pass, or (idle) the moment
    // the limit memory and any pause expire. A gate that needs a login waits for its reactivation without a timer.
    const wakes = s.holders.map((h) => h.checkAt);
    if (blockedUntil !== undefined) wakes.push(blockedUntil);
    if (idle) wakes.push(Math.max(forgetAt, s.pausedUntil));
    if (dirty) continue;
    if (keepTimer) {
      // condition(fn, timeout) cancels its timer whenever a signal comes first: a TIMER_STARTED and a TIMER_CANCELED
      // in the gate's history for nearly every turn (each grant moves the lease check). One timer is kept instead
      // and a new one started only when something is due sooner; one that fires early wakes the loop for nothing,
      // at most once per lease, and one pending when the gate ends or continues as new is simply dropped.
      const wakeAt = wakes.length === 0 ? undefined : Math.max(Date.now() + 1, Math.min(...wakes));
      if (wakeAt !== undefined && (alarmAt === undefined || alarmAt > wakeAt)) {
        const at = wakeAt;
        alarmAt = at;
        void sleep(at - Date.now()).then(() => {
          if (alarmAt === at) alarmAt = undefined;
          rang = true;
        });
      }
      await condition(() => dirty || rang);
      rang = false;
    } else if (wakes.length === 0) await condition(() => dirty);
    else await condition(() => dirty, Math.max(1, Math.min(...wakes) - Date.now()));
  }
}

// ---- The task's side ------------------------------------------------------------------------------------------------

/** The turns one attempt holds: its account's, then (with a platform limit) a platform slot. */
export interface Turn {
  tickets: Array<{ kind: GateKind; gateId: string; ticket: string }>;
}

/**
 * A task's client of the gates. Construct once per workflow run (it registers the grant and stage signal handlers).
 * `acquire` waits for the account, then for a platform slot (always in that order: no task ever waits for an account
 * while holding a platform slot, so the two gates cannot deadlock); `release` gives both back.
 */
export class GateTurns {
  /** Tickets this run waits for or holds; `stage` is the last reason its gate gave for the wait. */
  private readonly pending = new Map<string, { granted: boolean; stage?: string }>();
  private n = 0;

  /** `protocol`: the task's (PublishSingleInput.protocol); from 3 its signals to the gates go by local activity. */
  constructor(
    private readonly onStage: (stage: string) => void,
    private readonly protocol?: number,
  ) {
    setHandler(accountTurnGranted, async ({ gateId, ticket }) => {
      const t = this.pending.get(ticket);
      if (t) {
        t.granted = true; // a repeat while we hold it is the gate's liveness check: nothing to do
        return;
      }
      // A turn nobody waits for any more (withdrawn while the grant was on its way): give it straight back.
      await signalRun(this.protocol, { workflowId: gateId }, gateReleaseSignal, { ticket });
    });
    setHandler(gateWaitStageSignal, ({ ticket, stage }) => {
      const t = this.pending.get(ticket);
      if (!t || t.granted) return;
      t.stage = stage;
      this.onStage(stage);
    });
  }

  async acquire(args: {
    accountId: string;
    platform: string;
    priority: number;
    submittedAt: number;
    policy: PublishPolicy;
  }): Promise<Turn> {
    const { taskQueue } = workflowInfo();
    const limits = args.policy.limits ?? {};
    const turn: Turn = { tickets: [] };
    const base = {
      priority: args.priority,
      submittedAt: args.submittedAt,
      // An upload ends within its timeout (plus a heartbeat timeout to notice a dead worker); a holder still open
      // after that is asked again later, never preempted.
      leaseMs: Math.min(args.policy.uploadTimeoutMs + args.policy.heartbeatTimeoutMs, MAX_LEASE_MS),
    };
    const askedAt = Date.now();
    try {
      await this.take(turn, 'account', args.accountId, accountGateId(args.accountId, taskQueue), {
        ...base,
        slots: 1,
        ...(limits.minIntervalMs ? { minIntervalMs: limits.minIntervalMs } : {}),
        ...(limits.maxPerWindow ? { maxPerWindow: limits.maxPerWindow } : {}),
      });
      if (limits.platformMaxConcurrent !== undefined)
        await this.take(turn, 'platform', args.platform, platformGateId(args.platform, taskQueue), {
          ...base,
          slots: Math.max(1, limits.platformMaxConcurrent),
        });
      // pubflow_gate_wait_seconds (src/metrics/names.ts). The SDK's meter emits nothing on replay and adds no
      // command, so this needs no patch; it can only be made inside a workflow context, hence here.
      metricMeter
        .createHistogram('pubflow_gate_wait_seconds', 'float', 's', 'Time from asking for a turn to getting it')
        .record((Date.now() - askedAt) / 1000, { platform: args.platform });
      return turn;
    } catch (err) {
      await this.release(turn);
      throw err;
    }
  }

  /** Gives the turns back (the account's last). Safe to call twice; never cancelled. */
  async release(turn: Turn, note: Omit<GateRelease, 'ticket'> = {}): Promise<void> {
    await CancellationScope.nonCancellable(async () => {
      for (const t of turn.tickets.splice(0).reverse()) {
        const held = this.pending.get(t.ticket)?.granted === true && (this.protocol ?? 1) >= LOCAL_SIGNALS_PROTOCOL;
        this.pending.delete(t.ticket);
        await signalRun(this.protocol, { workflowId: t.gateId }, gateReleaseSignal, {
          ticket: t.ticket,
          ...(t.kind === 'account' ? note : {}),
          ...(held ? { held } : {}),
        });
      }
    });
  }

  private async take(
    turn: Turn,
    kind: GateKind,
    key: string,
    gateId: string,
    fields: Omit<GateRequest, 'ticket' | 'workflowId' | 'runId'>,
  ): Promise<void> {
    const { workflowId, runId } = workflowInfo();
    const ticket = `${workflowId}/${runId}/${++this.n}`;
    const entry: { granted: boolean; stage?: string } = { granted: false };
    this.pending.set(ticket, entry);
    // Recorded before the request goes out: a cancel from here on withdraws it.
    turn.tickets.push({ kind, gateId, ticket });
    const request: GateRequest = { ticket, workflowId, runId, ...fields };
    await CancellationScope.nonCancellable(() =>
      enqueueAtGate({ kind, key, gateId, taskQueue: workflowInfo().taskQueue, request }),
    );
    // The request is in the gate's queue now (the signal is recorded before the activity returns).
    if (!entry.granted) this.onStage(entry.stage ?? WAITING_STAGE[kind]);
    await condition(() => entry.granted);
  }
}
