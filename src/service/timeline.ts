/**
 * A task's timeline, read from Temporal's history (the truth) rather than kept in the document: every upload
 * attempt with its error kind, message and evidence, the automatic retries, each review opened and closed (by whom,
 * from the update's audit), and the other human decisions from the document's `decisions`. Nothing is written for
 * it: the workflows keep no extra state, and a publish costs no extra event or Redis write.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { optionalTsToMs } from '@temporalio/common/lib/time';
import type { temporal } from '@temporalio/proto';
import { reviewDecisionUpdate } from '../shared/definitions';
import type { Audit, DecisionRecord, TaskDoc } from '../shared/types';
import { NotFoundError } from './errors';
import { isTaskWorkflowType } from '../shared/workflow-contracts';

/** The activity whose scheduled/started/completed/failed events make an attempt. */
const UPLOAD_ACTIVITY = 'upload';
const REVIEW_ACTIONS: ReadonlySet<string> = new Set(['retry', 'resolve', 'discard']);

export type AttemptOutcome = 'running' | 'success' | 'failed' | 'timed_out' | 'cancelled';

export interface TimelineEntry {
  type: 'attempt' | 'auto_retry' | 'review_opened' | 'review_closed' | 'decision' | 'finished';
  /** When it happened (ISO): an attempt's scheduling, a retry's timer start, a decision's audit time. */
  at: string;
  attempt?: number;
  // attempt
  title?: string;
  platform?: string;
  accountId?: string;
  started_at?: string | null;
  ended_at?: string | null;
  outcome?: AttemptOutcome;
  error_kind?: string | null;
  message?: string | null;
  evidence?: string | null;
  url?: string | null;
  // auto_retry
  delay_seconds?: number;
  // review_closed and decision
  action?: string;
  by?: string;
  role?: string;
  note?: string | null;
  via?: string;
  /** review_closed after a retry: the fields the person corrected. */
  patched?: string[];
  // finished
  status?: string;
}

export interface Timeline {
  taskId: string;
  runId: string | null;
  /** False when Temporal no longer has the run (past retention): only the document's decisions are shown. */
  fromHistory: boolean;
  entries: TimelineEntry[];
}

type Event = temporal.api.history.v1.IHistoryEvent;
type Payloads = temporal.api.common.v1.IPayloads | null | undefined;

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());
const eventAt = (e: Event): string => iso(optionalTsToMs(e.eventTime)) ?? new Date(0).toISOString();

function decode(p: Payloads): unknown[] {
  return (p?.payloads ?? []).map((x) => {
    try {
      return defaultPayloadConverter.fromPayload(x);
    } catch {
      return null;
    }
  });
}

const rec = (v: unknown): Record<string, unknown> =>
  typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

function decisionEntry(d: DecisionRecord): TimelineEntry {
  return {
    type: 'decision',
    at: d.at,
    action: d.action,
    by: d.by,
    role: d.role,
    note: d.note,
    ...(d.attempt !== undefined ? { attempt: d.attempt } : {}),
    ...(d.via ? { via: d.via } : {}),
  };
}

/** Builds the entries from one run's events. Exported for the tests' own histories. */
export function timelineFromEvents(events: Event[], doc: TaskDoc | null): TimelineEntry[] {
  const out: TimelineEntry[] = [];
  const attempts = new Map<string, TimelineEntry>(); // by scheduled event id
  // What followed the last failed attempt, to tell an automatic retry from a review.
  let lastFailure: TimelineEntry | null = null;
  let pendingTimer: { at: string; seconds: number } | null = null;
  const openReview = (failure: TimelineEntry) =>
    out.push({
      type: 'review_opened',
      at: failure.ended_at ?? failure.at,
      attempt: failure.attempt,
      error_kind: failure.error_kind,
    });

  for (const e of events) {
    const id = String(e.eventId ?? '');
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled && scheduled.activityType?.name === UPLOAD_ACTIVITY) {
      if (lastFailure && !pendingTimer) openReview(lastFailure); // a retry decided without a review: not expected
      if (lastFailure && pendingTimer)
        out.push({
          type: 'auto_retry',
          at: pendingTimer.at,
          attempt: lastFailure.attempt,
          delay_seconds: pendingTimer.seconds,
        });
      lastFailure = null;
      pendingTimer = null;
      const input = rec(decode(scheduled.input)[0]);
      const request = rec(input.request);
      const entry: TimelineEntry = {
        type: 'attempt',
        at: eventAt(e),
        attempt: typeof input.attempt === 'number' ? input.attempt : undefined,
        title: str(request.title),
        platform: str(request.platform),
        accountId: str(request.accountId),
        started_at: null,
        ended_at: null,
        outcome: 'running',
        error_kind: null,
        message: null,
        evidence: null,
        url: null,
      };
      attempts.set(id, entry);
      out.push(entry);
      continue;
    }
    const started = e.activityTaskStartedEventAttributes;
    if (started) {
      const a = attempts.get(String(started.scheduledEventId ?? ''));
      if (a) a.started_at = eventAt(e);
      continue;
    }
    const completed = e.activityTaskCompletedEventAttributes;
    if (completed) {
      const a = attempts.get(String(completed.scheduledEventId ?? ''));
      if (a) {
        a.ended_at = eventAt(e);
        a.outcome = 'success';
        a.url = str(rec(decode(completed.result)[0]).url) ?? null;
      }
      continue;
    }
    const failed = e.activityTaskFailedEventAttributes;
    if (failed) {
      const a = attempts.get(String(failed.scheduledEventId ?? ''));
      if (a) {
        const info = failed.failure?.applicationFailureInfo;
        const details = rec(decode(info?.details)[0]);
        a.ended_at = eventAt(e);
        a.outcome = 'failed';
        a.error_kind = info?.type ?? 'Unconfirmed';
        a.message = failed.failure?.message ?? null;
        a.evidence = str(details.evidence) ?? null;
        lastFailure = a;
      }
      continue;
    }
    const timedOut = e.activityTaskTimedOutEventAttributes;
    if (timedOut) {
      const a = attempts.get(String(timedOut.scheduledEventId ?? ''));
      if (a) {
        a.ended_at = eventAt(e);
        a.outcome = 'timed_out';
        a.error_kind = 'Unconfirmed';
        a.message = timedOut.failure?.message ?? 'upload timed out';
        lastFailure = a;
      }
      continue;
    }
    const canceled = e.activityTaskCanceledEventAttributes;
    if (canceled) {
      const a = attempts.get(String(canceled.scheduledEventId ?? ''));
      if (a) {
        a.ended_at = eventAt(e);
        a.outcome = 'cancelled';
      }
      continue;
    }
    const timer = e.timerStartedEventAttributes;
    if (timer && lastFailure) {
      pendingTimer = { at: eventAt(e), seconds: Math.round((optionalTsToMs(timer.startToFireTimeout) ?? 0) / 1000) };
      continue;
    }
    const accepted = e.workflowExecutionUpdateAcceptedEventAttributes;
    if (accepted && accepted.acceptedRequest?.input?.name === reviewDecisionUpdate.name) {
      const d = rec(decode(accepted.acceptedRequest.input.args)[0]);
      const audit = rec(d.audit) as Partial<Audit>;
      const failure = lastFailure ?? [...attempts.values()].at(-1) ?? null;
      if (failure && lastFailure) openReview(failure);
      out.push({
        type: 'review_closed',
        at: str(audit.at) ?? eventAt(e),
        attempt: failure?.attempt,
        action: str(d.action),
        by: audit.by?.name ?? 'unknown',
        role: audit.by?.role ?? 'unknown',
        note: str(d.note) ?? str(audit.note) ?? null,
        ...(audit.via ? { via: audit.via } : {}),
        ...(d.action === 'retry' ? { patched: Object.keys(rec(d.patch)) } : {}),
      });
      lastFailure = null;
      pendingTimer = null;
      continue;
    }
    const closed =
      e.workflowExecutionCompletedEventAttributes ??
      e.workflowExecutionFailedEventAttributes ??
      e.workflowExecutionCanceledEventAttributes ??
      e.workflowExecutionTerminatedEventAttributes;
    if (closed) {
      if (lastFailure) {
        openReview(lastFailure);
        // The review's own timer fired with no decision: it expired.
        if (pendingTimer)
          out.push({
            type: 'review_closed',
            at: eventAt(e),
            attempt: lastFailure.attempt,
            action: 'expired',
            by: 'nobody',
            role: 'none',
            note: null,
          });
        lastFailure = null;
      }
      out.push({ type: 'finished', at: eventAt(e), status: doc?.status ?? 'closed' });
    }
  }
  // Still running after a failure: waiting for a person (or for the backoff timer, which a retry then follows).
  if (lastFailure) {
    const failure: TimelineEntry = lastFailure;
    if (doc?.review?.open && doc.review.attempt === failure.attempt) openReview(failure);
    else if (pendingTimer)
      out.push({
        type: 'auto_retry',
        at: pendingTimer.at,
        attempt: failure.attempt,
        delay_seconds: pendingTimer.seconds,
      });
    else openReview(failure);
  }
  // Decisions that are not review decisions (cancel, reschedule, ...) come from the document's audit trail.
  for (const d of doc?.decisions ?? []) if (!REVIEW_ACTIONS.has(d.action)) out.push(decisionEntry(d));
  return out.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
}

export async function readTimeline(client: Client, taskId: string, doc: TaskDoc | null): Promise<Timeline> {
  const handle = client.workflow.getHandle(taskId);
  try {
    const d = await handle.describe();
    if (!isTaskWorkflowType(d.type)) throw new NotFoundError(`task ${taskId}`);
    const history = await client.workflow.getHandle(taskId, d.runId).fetchHistory();
    return { taskId, runId: d.runId, fromHistory: true, entries: timelineFromEvents(history.events ?? [], doc) };
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
    if (!doc) throw new NotFoundError(`task ${taskId}`);
    return { taskId, runId: null, fromHistory: false, entries: (doc.decisions ?? []).map(decisionEntry) };
  }
}
