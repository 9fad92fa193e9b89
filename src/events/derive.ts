/**
 * Which events a task document stands for, from the document alone.
 *
 * The projection activities see every version a workflow ships (src/activities/index.ts); each version is turned
 * into the events it implies, each with an id made of the task id, the type and the attempt (or the outcome), so the
 * same occurrence always has the same id however often its document is written again (a later progress write, a
 * retried write, a replayed local activity). The delivery workflow's id is built from it, and Temporal refuses a
 * second start: an event is sent once per subscription, whatever the number of writes.
 *
 * - task.succeeded: a publish whose status is success (final: an upload's success, or a review resolved by hand).
 * - task.failed: a publish that ended failed: its review was closed by discard or expiry. Every failure opens a
 *   review first, so `review.opened` is the event that says at once that a publish failed.
 * - review.opened: a publish failed and a review is open for the attempt.
 * - review.decided: the review of an attempt was closed by a decision (retry, resolve, discard) or expired. A review
 *   closed by a cancel is not a decision (the task ends cancelled).
 * - batch.completed: a batch settled (success, failed or cancelled). A failed batch whose children are retried may
 *   settle again: each distinct settled outcome (status and counts) is one event.
 * - account.needs_login: the upload of a publish failed with AuthExpired. The account's gate (accountGate,
 *   src/workflows/account-gate.ts) turns needs_login exactly when that task gives its turn back, and holds the
 *   account's queue until it is reactivated, so no other upload on the account can fail the same way meanwhile: one
 *   event per time the account goes needs_login, derived from the task's document without touching the gate.
 */
import type { TaskDoc } from '../shared/types';
import type { EventData, EventType, PubflowEvent } from './types';

function baseData(doc: TaskDoc): EventData {
  const title = typeof doc.data.title === 'string' ? doc.data.title : undefined;
  return {
    taskId: doc.task_id,
    taskType: doc.task_type,
    status: doc.status,
    platform: doc.platform,
    accountId: doc.account_id,
    errorKind: doc.error_kind,
    errorMessage: doc.error_message,
    attempt: doc.attempt,
    parentTaskId: doc.parent_task_id,
    ...(title !== undefined ? { title } : {}),
  };
}

function reviewData(doc: TaskDoc): EventData['review'] {
  const r = doc.review!;
  return {
    kind: r.kind,
    reason: r.reason,
    attempt: r.attempt,
    ...(r.decision ? { decision: r.decision } : {}),
    ...(r.note ? { note: r.note } : {}),
    expiresAt: r.expires_at,
  };
}

const event = (
  doc: TaskDoc,
  type: EventType,
  discriminator: string | number,
  occurredAt: string | null | undefined,
  data: EventData,
): PubflowEvent => ({
  id: `${doc.task_id}:${type}:${discriminator}`,
  type,
  occurred_at: occurredAt ?? doc.updated_at,
  data,
});

/** The events this document version implies (often none: most versions are progress). */
export function deriveEvents(doc: TaskDoc): PubflowEvent[] {
  if (doc.task_type === 'batch_publish') {
    if (doc.status === 'running' || doc.status === 'pending' || doc.status === 'retry') return [];
    const c = doc.counts;
    // Cancelled is terminal and its counts still move as children confirm: one event. The others may re-settle.
    const key = doc.status === 'cancelled' || !c ? doc.status : `${doc.status}-${c.success}-${c.failed}-${c.cancelled}`;
    return [event(doc, 'batch.completed', key, doc.completed_at, { ...baseData(doc), ...(c ? { counts: c } : {}) })];
  }
  const out: PubflowEvent[] = [];
  const r = doc.review;
  if (doc.status === 'success') {
    out.push(event(doc, 'task.succeeded', doc.attempt, doc.completed_at, { ...baseData(doc), result: doc.result }));
  }
  if (r?.open && doc.status === 'failed') {
    const data = { ...baseData(doc), review: reviewData(doc) };
    out.push(event(doc, 'review.opened', r.attempt, r.failed_at, data));
    if (r.kind === 'AuthExpired') out.push(event(doc, 'account.needs_login', r.attempt, r.failed_at, data));
  }
  if (r && !r.open && r.decision) {
    const data = { ...baseData(doc), review: reviewData(doc) };
    out.push(event(doc, 'review.decided', r.attempt, r.decided_at, data));
    if (doc.status === 'failed' && (r.decision === 'discard' || r.decision === 'expired'))
      out.push(event(doc, 'task.failed', r.attempt, r.decided_at, data));
  }
  return out;
}
