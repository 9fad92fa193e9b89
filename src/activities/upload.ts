import { CancelledFailure, Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { AccountRegistry } from '../platforms/accounts';
import type { DriverRegistry } from '../platforms';
import { PublishError } from '../platforms/types';
import type { ProjectionStore } from '../projection/store';
import { ERROR_KINDS, type Progress, type PublishRequest, type PublishResult } from '../shared/types';
import { fromTemporalLogger, type Logger } from '../log';
import { UPLOAD_OUTCOME_CANCELLED, UPLOAD_OUTCOME_SUCCESS } from '../metrics/names';
import { NO_WORKER_METRICS, type WorkerMetrics } from '../metrics/worker-metrics';

export interface UploadInput {
  taskId: string;
  attempt: number;
  request: PublishRequest;
}

export interface UploadDeps {
  store: ProjectionStore;
  accounts: AccountRegistry;
  drivers: DriverRegistry;
  /** The process logger; activity lines go through the SDK's activity logger instead (Context.current().log). */
  log: Logger;
  /** How often progress may reach Redis; the issue says at most once a second. */
  progressIntervalMs?: number;
  /** Records each attempt's outcome and duration; absent: nothing is recorded. */
  metrics?: WorkerMetrics;
}

/** Every failure leaves here as a non-retryable ApplicationFailure whose type is the error kind. */
function failure(kind: string, message: string, details: Record<string, unknown> = {}, cause?: Error) {
  return ApplicationFailure.create({ type: kind, message, nonRetryable: true, details: [details], cause });
}

export function makeUpload(deps: UploadDeps) {
  const progressIntervalMs = deps.progressIntervalMs ?? 1000;
  const metrics = deps.metrics ?? NO_WORKER_METRICS;

  // Each attempt's outcome and duration, however it ends (also the failures before the driver is called).
  return async function upload(input: UploadInput): Promise<PublishResult> {
    const startedAt = performance.now();
    let outcome: string = UPLOAD_OUTCOME_SUCCESS;
    try {
      return await runAttempt(input);
    } catch (err) {
      outcome = outcomeOf(err);
      throw err;
    } finally {
      metrics.upload({ platform: input.request.platform, outcome, seconds: (performance.now() - startedAt) / 1000 });
    }
  };

  async function runAttempt({ taskId, attempt, request }: UploadInput): Promise<PublishResult> {
    const ctx = Context.current();
    const driver = deps.drivers.get(request.platform);
    if (!driver) throw failure('Internal', `no driver for platform "${request.platform}"`);
    let account;
    try {
      account = deps.accounts.resolve(request.accountId);
    } catch (err) {
      throw failure('Internal', `account "${request.accountId}" cannot be used: ${(err as Error).message}`);
    }
    if (account.platform !== request.platform)
      throw failure('Internal', `account "${account.id}" belongs to platform "${account.platform}"`);

    // Heartbeat on a timer as well as on progress: the heartbeat proves this worker is alive (a dead worker is
    // noticed within heartbeatTimeout) and is how a cancel reaches a driver that reports no progress.
    let last: Progress = { percent: 0, stage: 'starting' };
    const heartbeatEvery = Math.max(200, Math.min(1000, (ctx.info.heartbeatTimeoutMs ?? 30_000) / 3));
    const beat = setInterval(() => ctx.heartbeat(last), heartbeatEvery);
    let lastWrite = 0;
    let pendingWrite: Progress | null = null;
    let flushTimer: NodeJS.Timeout | undefined;
    const writeProgress = (p: Progress) => {
      lastWrite = Date.now();
      pendingWrite = null;
      // Redis being down must never fail an upload: progress is best-effort.
      deps.store.writeProgress(taskId, attempt, p).catch(() => metrics.projectionWriteError('progress'));
    };
    const progress = (p: Progress) => {
      last = { percent: Math.max(0, Math.min(100, Math.round(p.percent))), stage: p.stage };
      ctx.heartbeat(last);
      const wait = progressIntervalMs - (Date.now() - lastWrite);
      if (wait <= 0) writeProgress(last);
      else {
        pendingWrite = last;
        flushTimer ??= setTimeout(() => {
          flushTimer = undefined;
          if (pendingWrite) writeProgress(pendingWrite);
        }, wait);
      }
    };

    // The SDK's activity logger: each line carries workflowId, runId and the activity's attempt; ours is taskAttempt.
    const log = fromTemporalLogger(ctx.log, { taskId, taskAttempt: attempt });
    log.info('upload started', { platform: request.platform, accountId: request.accountId });
    try {
      const result = await driver.publish({
        taskId,
        attempt,
        request,
        account,
        signal: ctx.cancellationSignal,
        progress,
      });
      const postId = typeof result?.postId === 'string' && result.postId.length > 0 ? result.postId : undefined;
      const url = typeof result?.url === 'string' && result.url.length > 0 ? result.url : undefined;
      // Never a silent success: a driver that returns nothing usable has not proven the post exists.
      if (!postId && !url) throw failure('InvalidResult', 'the driver returned neither a post id nor a url');
      log.info('upload succeeded', { postId, url });
      return { postId, url };
    } catch (err) {
      if (ctx.cancellationSignal.aborted) {
        const why = ctx.cancellationDetails;
        if (why?.cancelRequested) {
          log.info('upload aborted');
          throw new CancelledFailure('upload aborted: the task was cancelled');
        }
        // Not a person's cancel: the worker is shutting down past its grace period (or the attempt timed out).
        // The request was cut mid-flight, so the post may exist: a person must check, exactly as after a crash.
        const reason = why?.workerShutdown
          ? 'the worker shut down'
          : why?.timedOut
            ? 'the attempt timed out'
            : 'the upload was interrupted';
        log.warn('upload interrupted', { reason });
        throw failure('Unconfirmed', `upload interrupted: ${reason} during the upload`);
      }
      if (err instanceof ApplicationFailure) throw err;
      if (err instanceof PublishError) {
        log.warn('upload failed', { kind: err.kind, message: err.message });
        throw failure(err.kind, err.message, {
          retryAfterSeconds: err.options.retryAfterSeconds,
          evidence: err.options.evidence,
        });
      }
      // An unexpected exception mid-upload: bytes may have gone out. Never guess that it is safe to retry.
      log.error('upload crashed', { error: String(err) });
      throw failure('Unconfirmed', `unexpected error during upload: ${(err as Error)?.message ?? String(err)}`);
    } finally {
      clearInterval(beat);
      if (flushTimer) clearTimeout(flushTimer);
    }
  }
}

/** The outcome label of an attempt that threw: every failure leaves `runAttempt` as a CancelledFailure or `failure()`. */
function outcomeOf(err: unknown): string {
  if (err instanceof CancelledFailure) return UPLOAD_OUTCOME_CANCELLED;
  const kind = err instanceof ApplicationFailure ? err.type : undefined;
  // Bounded: a type that is not an error kind (none today) is counted as Unconfirmed, as the workflow reads it.
  return kind && (ERROR_KINDS as readonly string[]).includes(kind) ? kind : 'Unconfirmed';
}
