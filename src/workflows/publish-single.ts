/**
 * publishSingle: one video or post, to one account on one platform.
 *
 * pending -> running -> success
 *                    -> (RateLimited | NotSent: nothing was published) retry on a durable timer -> running ...
 *                    -> failed + open review -> retry (attempt N+1) | resolve (success) | discard | expiry
 * Cancel works in every state. The workflow's own state is the truth; the Redis document is its mirror,
 * written by a background projector so that a Redis outage never blocks publishing.
 */
import {
  ActivityCancellationType,
  allHandlersFinished,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  proxyActivities,
  setHandler,
  sleep,
  TimeoutFailure,
  workflowInfo,
} from '@temporalio/workflow';
import type { createActivities } from '../activities';
import {
  cancelRequestedSignal,
  rescheduleUpdate,
  reviewDecisionUpdate,
  taskStateQuery,
  type ReviewDecision,
  type ReviewOutcome,
} from '../shared/definitions';
import { DEFAULT_POLICY } from '../shared/policy';
import { priorityKey } from '../shared/priority';
import { uploadQueueFor } from '../shared/task-queues';
import {
  decisionRecord,
  withDecision,
  type Audit,
  type DecisionRecord,
  type ErrorKind,
  type PublishRequest,
  type PublishResult,
  type RetryPatch,
  type TaskDoc,
} from '../shared/types';
import { initialTaskDoc } from '../shared/task-doc';
import type { PublishSingleInput, PublishSingleOutput } from '../shared/workflow-contracts';
import { GateTurns } from './account-gate';
import { Projector } from './projector';

/** Error kinds where nothing can have reached the platform, so an automatic retry cannot publish twice. */
const SAFE_TO_RETRY: ReadonlySet<ErrorKind> = new Set<ErrorKind>(['RateLimited', 'NotSent']);

const REVIEW_REASONS: Record<ErrorKind, string> = {
  RateLimited: 'The platform kept rate-limiting this account; automatic retries are exhausted.',
  NotSent: 'The upload could not be sent; automatic retries are exhausted.',
  AuthExpired: 'The account needs a new login.',
  VerificationRequired: 'The platform asks for a captcha or SMS verification.',
  ContentRejected: 'The platform rejected the content.',
  Unconfirmed: 'The publish may have happened: check the account before retrying.',
  InvalidResult:
    'The driver returned no post id or url; the publish may have happened: check the account before retrying.',
  Internal: 'pubflow could not run the upload.',
};

interface ClassifiedError {
  kind: ErrorKind;
  message: string;
  retryAfterMs?: number;
  evidence?: string;
}

/** Turns the upload activity's failure into a driver error kind. Anything unknown is Unconfirmed: never guess "safe". */
export function classifyUploadError(err: unknown): ClassifiedError {
  if (err instanceof ActivityFailure) {
    const cause = err.cause;
    if (cause instanceof ApplicationFailure) {
      const details = (cause.details?.[0] ?? {}) as { retryAfterSeconds?: number; evidence?: string };
      const kind = (cause.type ?? 'Unconfirmed') as ErrorKind;
      return {
        kind: kind in REVIEW_REASONS ? kind : 'Unconfirmed',
        message: cause.message,
        retryAfterMs: details.retryAfterSeconds !== undefined ? details.retryAfterSeconds * 1000 : undefined,
        evidence: details.evidence,
      };
    }
    if (cause instanceof TimeoutFailure) {
      // A heartbeat timeout means the worker died or hung mid-upload; a start-to-close timeout means the upload
      // ran too long. Either way bytes may have reached the platform.
      return {
        kind: 'Unconfirmed',
        message: `upload timed out (${cause.timeoutType}); the worker may have died mid-upload`,
      };
    }
    return { kind: 'Unconfirmed', message: cause?.message ?? err.message };
  }
  return { kind: 'Unconfirmed', message: err instanceof Error ? err.message : String(err) };
}

export async function publishSingle(input: PublishSingleInput): Promise<PublishSingleOutput> {
  const info = workflowInfo();
  const policy = input.policy ?? DEFAULT_POLICY;
  const taskId = info.workflowId;
  let request: PublishRequest = { ...input.request };

  const { upload } = proxyActivities<ReturnType<typeof createActivities>>({
    taskQueue: uploadQueueFor(info.taskQueue),
    startToCloseTimeout: policy.uploadTimeoutMs,
    heartbeatTimeout: policy.heartbeatTimeoutMs,
    // Never retried by Temporal: a retried upload could publish twice. The workflow decides, by error kind.
    retry: { maximumAttempts: 1 },
    // Wait until the driver has really aborted, so "cancelled" means the request is gone.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    priority: { priorityKey: priorityKey(request.priority) },
  });

  const now = () => new Date().toISOString();
  const doc: TaskDoc = initialTaskDoc({
    taskId,
    request,
    parentTaskId: input.parentTaskId ?? null,
    createdAt: input.createdAt ?? info.startTime.toISOString(),
    runId: info.runId,
  });
  const projector = new Projector(
    doc,
    { parentTaskId: input.parentTaskId ?? null, index: input.index ?? 0 },
    {
      protocol: input.protocol,
      retryMaxMs: policy.projectionRetryMaxMs,
      // Protocol 2: the API wrote version 1 as it started the run, so it is not written again (one marker and one
      // Redis write fewer); should that write have failed, the next version, which comes at once, carries it. A batch
      // child writes its own (nobody else does), and so does a scheduled task, which may not change for hours.
      firstWritten: !input.parentTaskId && !request.publishAt,
    },
  );
  const change = (patch: Partial<TaskDoc>) => projector.change({ ...patch, updated_at: now() });
  /** The audit trail: `decisions` with one more human action (see Audit in shared/types.ts). */
  const recorded = (
    action: DecisionRecord['action'],
    audit: Audit | undefined,
    extra?: Pick<DecisionRecord, 'attempt' | 'publishAt'>,
    note?: string,
  ): DecisionRecord[] => {
    const entry = decisionRecord(action, audit, now(), extra);
    return withDecision(doc.decisions, entry.note === null && note ? { ...entry, note } : entry);
  };

  let decision: ReviewDecision | undefined;
  const reviewOpen = () => doc.review?.open === true && decision === undefined;
  // Read through a function: the update handler sets `decision` between awaits, which flow analysis cannot see.
  const takeDecision = (): ReviewDecision | undefined => decision;
  setHandler(taskStateQuery, () => doc);
  // A cancel request has no arguments: the API says who asked just before sending it.
  setHandler(cancelRequestedSignal, (audit) => change({ decisions: recorded('cancel', audit) }));
  setHandler(
    reviewDecisionUpdate,
    (d): ReviewOutcome => {
      decision = d;
      return { taskId, action: d.action, attempt: doc.attempt };
    },
    {
      validator: (d) => {
        if (!reviewOpen()) throw new Error(`task ${taskId} has no open review (status ${doc.status})`);
        if (d.action === 'retry' && d.patch?.accountId !== undefined && d.patch.accountId.length === 0)
          throw new Error('patch.accountId must not be empty');
      },
    },
  );

  // Scheduled publishing: wait on a durable timer until publishAt; a reschedule moves the deadline.
  let publishAt = request.publishAt ? Date.parse(request.publishAt) : undefined;
  let waiting = publishAt !== undefined && publishAt > Date.now();
  setHandler(
    rescheduleUpdate,
    ({ publishAt: next, audit }) => {
      publishAt = Date.parse(next);
      request = { ...request, publishAt: next };
      change({
        scheduled_for: next,
        data: { ...request },
        decisions: recorded('reschedule', audit, { publishAt: next }),
      });
      return { publishAt: next };
    },
    {
      validator: ({ publishAt: next }) => {
        if (!waiting)
          throw new Error(`task ${taskId} is no longer waiting for its publish time (status ${doc.status})`);
        if (Number.isNaN(Date.parse(next))) throw new Error('publishAt must be an ISO 8601 date');
      },
    },
  );

  // While a task waits for its turn it is pending, and its stage says why (waiting_for_account,
  // rate_limited_until_<iso>, account_needs_login, waiting_for_platform).
  const turns = new GateTurns(
    (stage) => change({ status: 'pending', progress: { percent: 0, stage } }),
    input.protocol,
  );

  projector.start();
  /** Turns given back and not yet confirmed by the gate (see the upload's `finally`). */
  const releases: Array<Promise<void>> = [];
  let autoRetries = 0;
  try {
    while (waiting && publishAt !== undefined && publishAt > Date.now()) {
      const target = publishAt;
      if (doc.scheduled_for === null) change({ scheduled_for: new Date(target).toISOString() });
      // Wakes at the deadline, or early when a reschedule changes it.
      await condition(() => publishAt !== target, target - Date.now());
    }
    waiting = false;
    for (;;) {
      const attempt = doc.attempt + 1;
      // One upload at a time per account, within its rate limits (see account-gate.ts).
      const turn = await turns.acquire({
        accountId: request.accountId,
        platform: request.platform,
        priority: request.priority,
        submittedAt: Date.parse(doc.created_at),
        policy,
      });
      let result: PublishResult | undefined;
      let failure: ClassifiedError | undefined;
      try {
        change({
          status: 'running',
          attempt,
          started_at: doc.started_at ?? now(),
          progress: { percent: 0, stage: 'starting' },
          error_message: null,
          error_kind: null,
        });
        try {
          result = await upload({ taskId, attempt, request });
        } catch (err) {
          if (isCancellation(err)) throw err;
          failure = classifyUploadError(err);
        }
      } finally {
        // Also on cancel and on failure. AuthExpired holds the account's queue; a platform "retry after" pauses it.
        // Sent now and confirmed before the run ends (a signal from a closed run is dropped), not awaited here: the
        // outcome's own writes go out alongside, one workflow task sooner.
        releases.push(
          turns.release(turn, {
            ...(failure?.kind === 'AuthExpired' ? { needsLogin: { message: failure.message } } : {}),
            ...(failure?.kind === 'RateLimited' && failure.retryAfterMs
              ? { pauseUntil: Date.now() + failure.retryAfterMs }
              : {}),
          }),
        );
      }
      if (!failure) {
        change({ status: 'success', result, progress: { percent: 100, stage: 'done' }, completed_at: now() });
        break;
      }

      if (SAFE_TO_RETRY.has(failure.kind) && autoRetries < policy.autoRetry.maxAttempts) {
        autoRetries++;
        const backoff = Math.min(
          policy.autoRetry.maxDelayMs,
          Math.max(failure.retryAfterMs ?? 0, policy.autoRetry.initialDelayMs * 2 ** (autoRetries - 1)),
        );
        change({
          status: 'retry',
          error_kind: failure.kind,
          error_message: failure.message,
          progress: { percent: 0, stage: `retry_in_${Math.round(backoff / 1000)}s` },
        });
        await sleep(backoff);
        continue;
      }

      // A person decides. The review stays open until a decision or expiry.
      decision = undefined;
      const failedAt = now();
      change({
        status: 'failed',
        error_kind: failure.kind,
        error_message: failure.message,
        progress: null,
        completed_at: failedAt,
        review: {
          open: true,
          reason: REVIEW_REASONS[failure.kind],
          kind: failure.kind,
          message: failure.message,
          attempt,
          failed_at: failedAt,
          evidence: failure.evidence,
          expires_at: new Date(Date.now() + policy.reviewTtlMs).toISOString(),
        },
      });
      const decided = await condition(() => decision !== undefined, policy.reviewTtlMs);
      const d: ReviewDecision = takeDecision() ?? { action: 'discard' };
      const closed = {
        ...doc.review!,
        open: false,
        decision: decided ? d.action : ('expired' as const),
        decided_at: now(),
        note: d.note ?? d.audit?.note,
      };
      // An expired review is nobody's decision; a person's goes into the audit trail.
      const decisions = decided ? recorded(d.action, d.audit, { attempt: closed.attempt }, d.note) : doc.decisions;
      if (d.action === 'retry') {
        request = applyPatch(request, d.patch);
        autoRetries = 0;
        // Pending again at once: the next attempt may first wait for its account's turn, and a failed status with a
        // closed review would read as final (to a batch, for one).
        change({
          status: 'pending',
          progress: null,
          review: closed,
          decisions,
          retry_count: doc.retry_count + 1,
          data: { ...request },
          platform: request.platform,
          account_id: request.accountId,
          completed_at: null,
        });
        continue;
      }
      if (d.action === 'resolve') {
        change({
          status: 'success',
          review: closed,
          decisions,
          result: { url: d.url, postId: undefined },
          error_message: null,
          completed_at: now(),
        });
      } else {
        change({ status: 'failed', review: closed, decisions });
      }
      break;
    }
  } catch (err) {
    if (!isCancellation(err)) throw err;
    await CancellationScope.nonCancellable(async () => {
      change({
        status: 'cancelled',
        progress: null,
        completed_at: now(),
        review: doc.review?.open ? { ...doc.review, open: false, decided_at: now(), note: 'cancelled' } : doc.review,
      });
      await Promise.all(releases);
      await condition(allHandlersFinished);
      await projector.flush();
      projector.finish();
    });
    throw err;
  }
  // The outcome is decided: a cancel arriving while the last write is in flight must not turn it into "cancelled".
  // Handlers finish first: a turn handed back by the grant handler must reach its gate before the run closes.
  await CancellationScope.nonCancellable(async () => {
    await Promise.all(releases);
    await condition(allHandlersFinished);
    await projector.flush();
    projector.finish();
  });
  return { taskId, status: doc.status, result: doc.result, attempts: doc.attempt };
}

function applyPatch(request: PublishRequest, patch: RetryPatch | undefined): PublishRequest {
  if (!patch) return request;
  const next: PublishRequest = { ...request };
  if (patch.title !== undefined) next.title = patch.title;
  if (patch.description !== undefined) next.description = patch.description;
  if (patch.tags !== undefined) next.tags = patch.tags;
  if (patch.accountId !== undefined) next.accountId = patch.accountId;
  if (patch.video !== undefined) next.video = patch.video;
  return next;
}
