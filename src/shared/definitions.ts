/**
 * Signals, updates and queries, defined once at module level and used by both the workflows and the API.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { DEFAULT_TASK_QUEUE } from './task-queues';
import type { Audit, DecisionRecord, RetryPatch, TaskDoc, TaskStatus } from './types';

/** `audit` says who decided and when (Temporal's history keeps it); `note` is kept as sent before the audit trail. */
export type ReviewDecision =
  | { action: 'retry'; patch?: RetryPatch; note?: string; audit?: Audit }
  | { action: 'resolve'; url?: string; note?: string; audit?: Audit }
  | { action: 'discard'; note?: string; audit?: Audit };

export interface ReviewOutcome {
  taskId: string;
  action: ReviewDecision['action'];
  /** The attempt the decision applies to. */
  attempt: number;
}

/** A person's decision on an open review. Validated: rejected unless a review is open. */
export const reviewDecisionUpdate = defineUpdate<ReviewOutcome, [ReviewDecision]>('reviewDecision');

/** The task's current document, the truth the Redis projection mirrors. */
export const taskStateQuery = defineQuery<TaskDoc>('taskState');

/** A child reports its status to its batch (issue "Batch publish"). */
export interface ChildStatusReport {
  index: number;
  taskId: string;
  status: TaskStatus;
  /** True while a review is open: the child counts as settled-failed until a person decides. */
  inReview: boolean;
  version: number;
}
export const childStatusSignal = defineSignal<[ChildStatusReport]>('childStatus');

/** Move a scheduled task's publish time (only while it is still waiting). Returns the new time. */
export const rescheduleUpdate = defineUpdate<{ publishAt: string }, [{ publishAt: string; audit?: Audit }]>(
  'reschedule',
);

/**
 * Who asked for a cancel, sent just before it: a cancel request carries no arguments of its own, so this signal puts
 * the person (and the note) into the history, and into the document's `decisions`.
 */
export const cancelRequestedSignal = defineSignal<[Audit]>('cancelRequested');

// ---- Queue gates (issue "Queue semantics"): one entity workflow per account, and one per platform with a limit ----

export type GateKind = 'account' | 'platform';

/** Deployment-scoped: a gate's workflow tasks are served by the workers of its task queue. */
const gateScope = (taskQueue: string) => (taskQueue === DEFAULT_TASK_QUEUE ? '' : `@${taskQueue}`);
/** The account's gate: `account-gate-<accountId>` (plus `@<taskQueue>` outside the default queue). */
export const accountGateId = (accountId: string, taskQueue: string) =>
  `account-gate-${accountId}${gateScope(taskQueue)}`;
/** The platform's concurrency gate: `platform-gate-<platform>` (plus `@<taskQueue>` outside the default queue). */
export const platformGateId = (platform: string, taskQueue: string) =>
  `platform-gate-${platform}${gateScope(taskQueue)}`;

/** A task asks a gate for a turn. Sent by the task itself (signal, or the gate's start arguments). */
export interface GateRequest {
  /** Unique per request: `<workflowId>/<runId>/<n>`. A duplicate is ignored. */
  ticket: string;
  workflowId: string;
  /** The turn goes to this run only: a reset or terminated run can never hold the gate. */
  runId: string;
  /** 0..9, 0 first. */
  priority: number;
  /** When the task was submitted (epoch ms): the order within a priority. */
  submittedAt: number;
  /** How many turns the gate may grant at once for this request (1 on an account gate). */
  slots: number;
  minIntervalMs?: number;
  maxPerWindow?: { count: number; windowMs: number };
  /** After this long without a release, the gate checks that the holder's run is still open. */
  leaseMs: number;
}

/** A task gives its turn back, or withdraws from the queue (cancelled while waiting). */
export interface GateRelease {
  ticket: string;
  /** The upload failed with AuthExpired: the account stops granting turns until it is reactivated. */
  needsLogin?: { message: string };
  /** The platform said "retry after": no turn on the account before this time (epoch ms). */
  pauseUntil?: number;
  /**
   * Protocol 3: the task had been granted this turn. A gate that lost the workflow task in which it granted the turn
   * (its grant went out by a local activity, before the task completed) still finds the ticket queued; this tells it
   * the turn was used, so its rate-limit memory counts it.
   */
  held?: boolean;
}

/** Gate -> task: the turn is yours (also re-sent as a liveness probe while the task holds it). */
export interface TurnGranted {
  gateId: string;
  ticket: string;
}

/** Gate -> waiting task: why it is still waiting (`progress.stage` of its document). */
export interface GateWaitStage {
  ticket: string;
  stage: string;
}

/** What a task sends to the `enqueueAtGate` activity: its request, to be signalled to the gate (started if needed). */
export interface EnqueueAtGateInput {
  kind: GateKind;
  /** The account id, or the platform. */
  key: string;
  gateId: string;
  /** The gate's task queue (the task's own). */
  taskQueue: string;
  request: GateRequest;
}

/** A signal from one of pubflow's workflows to another, sent through the worker's client (protocol 3). */
export interface SignalWorkflowInput {
  workflowId: string;
  /** A specific run; absent: the open run. */
  runId?: string;
  /** The signal's name (its definition's `name`). */
  signal: string;
  arg: unknown;
}

/**
 * The gate activities (src/activities/gate.ts), typed here so that workflow code can proxy them without importing
 * the activity module.
 */
export interface GateActivities {
  /** Signal-with-start: queue the request at the gate, starting the gate if it is not running. */
  enqueueAtGate(input: EnqueueAtGateInput): Promise<void>;
  /** Sends a signal; false when the workflow (or that run) is not open. */
  signalWorkflow(input: SignalWorkflowInput): Promise<boolean>;
}

export const gateRequestSignal = defineSignal<[GateRequest]>('gateRequest');
export const gateReleaseSignal = defineSignal<[GateRelease]>('gateRelease');
export const accountTurnGranted = defineSignal<[TurnGranted]>('accountTurnGranted');
export const gateWaitStageSignal = defineSignal<[GateWaitStage]>('gateWaitStage');
/**
 * Sent by whoever closed a task's run from outside (DELETE with force=true terminates it): the run holds or waits for
 * nothing any more. Without it the gate finds out at the holder's next lease check, minutes later.
 */
export interface GateRunClosed {
  workflowId: string;
  runId: string;
}
export const gateRunClosedSignal = defineSignal<[GateRunClosed]>('gateRunClosed');

export type AccountStatus = 'active' | 'needs_login';

/** What the gate shows in its memo (read by `GET /api/v1/accounts` through describe: no worker needed). */
export interface GateMemo {
  status: AccountStatus;
  since: string | null;
  reason: string | null;
  /** Who reactivated the account last, and when (absent in memos written before the audit trail). */
  lastReactivation?: DecisionRecord | null;
}
export const GATE_MEMO_KEY = 'pubflowGate';

export interface GateSnapshot {
  kind: GateKind;
  key: string;
  status: AccountStatus;
  needsLogin: { since: string; reason: string; taskId: string } | null;
  holders: Array<{ taskId: string; ticket: string; grantedAt: string }>;
  queue: Array<{ taskId: string; ticket: string; priority: number; stage: string }>;
  /** Start times of the grants the gate still remembers for its rate limits. */
  grants: string[];
  lastReleaseAt: string | null;
  pausedUntil: string | null;
  /** The time before which the next waiting task cannot start (a rate limit or a pause), if any. */
  blockedUntil: string | null;
  grantsTotal: number;
  runs: number;
}
export const gateStateQuery = defineQuery<GateSnapshot>('gateState');

/** Release an account that needed a login: its queued tasks get their turns again. Rejected unless it needed one. */
export const reactivateAccountUpdate = defineUpdate<{ status: AccountStatus; waiting: number }, [Audit]>(
  'reactivateAccount',
);
