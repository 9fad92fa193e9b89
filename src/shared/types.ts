/**
 * Payload types shared by the API, the workflows and the activities.
 * Pure types and pure functions only: this file is bundled into workflow code.
 */

export const TASK_STATUSES = ['pending', 'running', 'success', 'failed', 'retry', 'cancelled'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

export const TASK_TYPES = ['publish', 'batch_publish'] as const;
export type TaskType = (typeof TASK_TYPES)[number];

/** Error kinds a driver may report; they decide what the workflow does next. */
export const ERROR_KINDS = [
  'RateLimited',
  'NotSent',
  'AuthExpired',
  'VerificationRequired',
  'ContentRejected',
  'Unconfirmed',
  'InvalidResult',
  'Internal',
] as const;
export type ErrorKind = (typeof ERROR_KINDS)[number];

export interface FileRef {
  path: string;
}

/** One publish: one video or post, to one account on one platform. Carries no secrets: only the account id. */
export interface PublishRequest {
  platform: string;
  accountId: string;
  video: FileRef;
  title: string;
  description?: string;
  tags?: string[];
  cover?: FileRef;
  /** ISO 8601 with an offset. */
  publishAt?: string;
  /** 0..9, 0 most urgent. */
  priority: number;
  options?: Record<string, unknown>;
}

/** Fields a person may correct when retrying a review. */
export type RetryPatch = Partial<Pick<PublishRequest, 'title' | 'description' | 'tags' | 'accountId' | 'video'>>;

export interface Progress {
  percent: number;
  stage: string;
}

export interface PublishResult {
  postId?: string;
  url?: string;
}

export interface ReviewRecord {
  open: boolean;
  reason: string;
  kind: ErrorKind;
  message: string;
  attempt: number;
  failed_at: string;
  evidence?: string;
  /** Set when a person (or expiry) decides. */
  decision?: 'retry' | 'resolve' | 'discard' | 'expired';
  decided_at?: string;
  note?: string;
  expires_at: string;
}

/** Who took a human action: the API key's name and role (src/auth/roles.ts), as the API authenticated it. */
export interface Actor {
  name: string;
  role: string;
}

/** The human actions the audit trail records (docs/security.md, "Audit trail"). */
export const DECISION_ACTIONS = [
  'retry',
  'resolve',
  'discard',
  'cancel',
  'reschedule',
  'reactivate',
  'delete',
] as const;
export type DecisionAction = (typeof DECISION_ACTIONS)[number];

/**
 * What the API sends with a human action, inside the update's (or signal's) arguments, so that Temporal's history
 * holds who and when; the workflow copies it into the document's `decisions`. Optional on the wire: runs started
 * before the audit trail replay without it.
 */
export interface Audit {
  by: Actor;
  /** When the API accepted the action (ISO). */
  at: string;
  note?: string;
  /** Set when the action came from a bulk request (`retry-all`). */
  via?: 'retry-all';
}

/** One entry of a task document's `decisions`. */
export interface DecisionRecord {
  action: DecisionAction;
  /** The key's name ("unknown" for an action recorded without an audit, e.g. by an older API). */
  by: string;
  role: string;
  at: string;
  note: string | null;
  via?: 'retry-all';
  /** The attempt a review decision applies to. */
  attempt?: number;
  /** A reschedule's new publish time. */
  publishAt?: string;
}

/** A decision record from an action's audit (the workflow's clock stands in when it has none). */
export function decisionRecord(
  action: DecisionAction,
  audit: Audit | undefined,
  fallbackAt: string,
  extra: Pick<DecisionRecord, 'attempt' | 'publishAt'> = {},
): DecisionRecord {
  return {
    action,
    by: audit?.by.name ?? 'unknown',
    role: audit?.by.role ?? 'unknown',
    at: audit?.at ?? fallbackAt,
    note: audit?.note ?? null,
    ...(audit?.via ? { via: audit.via } : {}),
    ...extra,
  };
}

/** Decisions kept on a document: the newest, so a task retried for months stays a small document. */
export const MAX_DECISIONS = 50;

/** `decisions` with `entry` appended (oldest dropped past MAX_DECISIONS). */
export const withDecision = (decisions: DecisionRecord[] | undefined, entry: DecisionRecord): DecisionRecord[] =>
  [...(decisions ?? []), entry].slice(-MAX_DECISIONS);

/**
 * The projection document at `celery:task:<id>`.
 * The old Celery system's fields first (the contract), then pubflow's own.
 */
export interface TaskDoc {
  task_id: string;
  task_type: TaskType;
  data: Record<string, unknown>;
  priority: number;
  parent_task_id: string | null;
  status: TaskStatus;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  updated_at: string;
  error_message: string | null;
  result: PublishResult | null;
  retry_count: number;
  // pubflow's own fields
  version: number;
  attempt: number;
  progress: Progress | null;
  review: ReviewRecord | null;
  platform: string | null;
  account_id: string | null;
  workflow_id: string;
  run_id: string | null;
  scheduled_for: string | null;
  error_kind: ErrorKind | null;
  /** Batches only. */
  counts?: BatchCounts;
  /** Every human action on the task, oldest first (absent on documents written before the audit trail). */
  decisions?: DecisionRecord[];
}

export interface BatchCounts {
  total: number;
  pending: number;
  running: number;
  success: number;
  failed: number;
  cancelled: number;
}
