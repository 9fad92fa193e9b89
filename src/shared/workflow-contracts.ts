/**
 * The workflows' contracts: their type names, inputs and outputs. The client side (service, API, reconciler) starts
 * and reads workflows through these alone and never imports src/workflows/ (an ESLint rule enforces it); the
 * workflows declare their signatures with the same types, and src/workflows/index.ts checks at compile time that
 * each exported workflow still matches its contract.
 */
import type { PublishPolicy } from './policy';
import type { BatchCounts, DecisionRecord, PublishRequest, PublishResult, TaskDoc, TaskStatus } from './types';

/** Workflow type names: the names the worker registers (the exported function names in src/workflows/index.ts). */
export const WORKFLOW_TYPES = {
  publishSingle: 'publishSingle',
  publishBatch: 'publishBatch',
  accountGate: 'accountGate',
  platformGate: 'platformGate',
  pruneProjection: 'pruneProjectionWorkflow',
  reconcileProjection: 'reconcileProjectionWorkflow',
  deliverEvent: 'deliverEvent',
} as const;
export type WorkflowTypeName = (typeof WORKFLOW_TYPES)[keyof typeof WORKFLOW_TYPES];

/** The workflow types whose id is a task id (batch children are publishSingle). Every other workflow is internal. */
export const TASK_WORKFLOW_TYPES = [WORKFLOW_TYPES.publishSingle, WORKFLOW_TYPES.publishBatch] as const;
export const isTaskWorkflowType = (type: string | undefined): boolean =>
  (TASK_WORKFLOW_TYPES as readonly string[]).includes(type ?? '');

export interface PublishSingleInput {
  request: PublishRequest;
  policy?: PublishPolicy;
  /** The batch this task belongs to, if any. */
  parentTaskId?: string | null;
  /** Position in the batch. */
  index?: number;
  /** When the API accepted the request (ISO); defaults to the workflow's start time. */
  createdAt?: string;
  /**
   * How the run talks to visibility and Redis (see TASK_PROTOCOL). Absent in runs started before it existed: those
   * keep the old behaviour, so their histories replay unchanged without a patch marker (whose TemporalChangeVersion
   * upsert would cost each new run a visibility write).
   */
  protocol?: number;
}

/**
 * 2 (2026-12-03, issue 14): PubflowStatus is upserted only for the states a task rests in (failed with a review,
 * retry) and once at the end, the document memo once at the end, and a projection write that fails is tried a few
 * times in the workflow task, then again after a durable timer (backing off), so a Redis outage neither holds the
 * workflow task nor grows the history quickly.
 * 3 (2026-12-03, evening): a task's release at its gate goes by local activity instead of an external-signal command
 * (src/workflows/signals.ts): 4 history events and a workflow task fewer. A batch child's reports stay commands
 * until protocol 5.
 * 4 (2026-12-07): a batch continues as new after 500 child starts instead of 1,000 (src/workflows/publish-batch.ts);
 * a task of protocol 4 behaves as one of 3.
 * 5 (2026-12-07, night): a batch child's reports to its batch go by local activity too (Projector.reportToParent):
 * about 6.5 history events fewer per batch item; a single of protocol 5 behaves as one of 3.
 * 6 (2026-12-08): a batch writes its document by regular activity, so it has no local activity left and replays
 * exactly as it ran (src/workflows/projector.ts, tryWriteDoc with byActivity); a single of protocol 6 behaves as one of 3.
 */
export const TASK_PROTOCOL = 6;

/**
 * The protocol enqueueAtGate starts new gates with (GateInput.protocol in src/workflows/account-gate.ts); from 3 a
 * gate's grants, stages and liveness checks go by local activity too; from 4 (2026-12-08) a change of the account's
 * login state reaches the gate's memo before any task hears of it. A gate keeps its protocol through continue-as-new.
 */
export const GATE_PROTOCOL = 4;

export interface PublishSingleOutput {
  taskId: string;
  status: TaskDoc['status'];
  result: PublishResult | null;
  attempts: number;
}

export type PublishSingleWorkflow = (input: PublishSingleInput) => Promise<PublishSingleOutput>;

export interface BatchSpacing {
  intervalSeconds: number;
  jitterSeconds: number;
}

/** Carried across continue-as-new; compact so that a 100,000-item batch still fits in one payload. */
export interface BatchState {
  total: number;
  /** Index of `items[0]`: every item before it has been started, so its request is no longer carried. */
  offset: number;
  /** One character per item: the CODE of its child (see publish-batch.ts). */
  codes: string;
  /** Highest child document version seen, for children started and not yet terminal (index -> version). */
  versions: Record<string, number>;
  docVersion: number;
  createdAt: string;
  startedAt: string;
  /** When the batch last became settled (null while any child is unsettled). */
  completedAt: string | null;
  /** Start failures other than "already started" (rare; the batch records them rather than failing). */
  lastError: string | null;
  runs: number;
  /** The batch's audit trail (its document's `decisions`). */
  decisions?: DecisionRecord[];
}

export interface PublishBatchInput {
  /**
   * The items still to start (all of them on the first run). Each is final: the API has already merged the
   * batch's `defaults` under it, so an item's priority is the batch's unless the item set its own.
   */
  items: PublishRequest[];
  /**
   * Policies resolved by the API (the workflow stays deterministic), keyed by platform, or by
   * `<platform>/<accountId>` where an account has its own (e.g. its rate limits); the account's key wins.
   */
  policies: Record<string, PublishPolicy>;
  /** At most this many children in flight (started and not settled). */
  concurrency: number;
  /** Child i starts no earlier than the batch's start + i × interval + a deterministic jitter in [0, jitter]. */
  spacing?: BatchSpacing;
  /** When the API accepted the batch (ISO); defaults to the workflow's start time. */
  createdAt?: string;
  /** The batch's own priority (0..9), shown in its document. */
  priority?: number;
  /** Set by the batch itself when it continues as new. */
  state?: BatchState;
  /** Testing knob: continue as new after this many child starts and status signals in one run. */
  continueAsNewAfter?: number;
  /** TASK_PROTOCOL the API started the batch with (carried through continue-as-new; absent: runs before it). */
  protocol?: number;
}

export interface PublishBatchOutput {
  taskId: string;
  status: TaskStatus;
  counts: BatchCounts;
}

export type PublishBatchWorkflow = (input: PublishBatchInput) => Promise<PublishBatchOutput>;

/** Memo key holding the sha256 of the request a task was submitted with: a reused Idempotency-Key is compared to it. */
export const REQUEST_HASH_MEMO_KEY = 'pubflowRequestHash';
