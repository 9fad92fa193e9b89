/** The manual-review library's decisions: retry (optionally corrected), resolve, discard, and retry-all. */
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import pLimit from 'p-limit';
import type { ReviewFilter } from '../projection/task-state-manager';
import { reviewDecisionUpdate, type ReviewDecision, type ReviewOutcome } from '../shared/definitions';
import type { RetryPatch } from '../shared/types';
import { auditOf, logAudit, type Actor } from './audit';
import type { ServiceDeps } from './deps';
import { ConflictError, invalid, NotFoundError } from './errors';
import { resolveMediaPath } from './media';
import { describeTask } from './temporal';

/** Review decisions sent at once by retry-all. */
const RETRY_ALL_CONCURRENCY = 16;

export interface RetryAllResult {
  matched: number;
  retried: number;
  failed: { taskId: string; code: string; message: string }[];
}

export function createReviewService(deps: ServiceDeps) {
  const { client, tsm, accounts, config, log } = deps;

  async function decide(taskId: string, decision: ReviewDecision): Promise<ReviewOutcome> {
    const out = await send(taskId, decision);
    if (decision.audit) logAudit(log, decision.action, { taskId }, decision.audit);
    return out;
  }

  async function send(taskId: string, decision: ReviewDecision): Promise<ReviewOutcome> {
    const d = await describeTask(client, taskId);
    if (!d) throw new NotFoundError(`task ${taskId}`);
    if (d.status.name !== 'RUNNING')
      throw new ConflictError('review_closed', `task ${taskId} has finished; it has no open review`);
    try {
      return await client.workflow.getHandle(taskId).executeUpdate(reviewDecisionUpdate, { args: [decision] });
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError)
        throw new ConflictError('no_open_review', err.cause?.message ?? `task ${taskId} has no open review`);
      if (err instanceof WorkflowNotFoundError) throw new ConflictError('review_closed', `task ${taskId} has finished`);
      throw err;
    }
  }

  /** A person's corrections, checked as a new publish would be: the video inside the media root, the account known. */
  async function checkPatch(taskId: string, patch: RetryPatch | undefined): Promise<RetryPatch | undefined> {
    if (!patch) return undefined;
    const out = { ...patch };
    if (out.video)
      out.video = { path: await resolveMediaPath(config.mediaRoot, out.video.path, 'body.patch.video.path') };
    if (out.accountId) {
      const account = accounts.get(out.accountId);
      if (!account) throw invalid('body.patch.accountId', `unknown account "${out.accountId}"`);
      const current = await tsm.getTaskState(taskId).catch(() => null);
      if (current?.platform && account.platform !== current.platform)
        throw invalid(
          'body.patch.accountId',
          `account "${account.id}" is on platform "${account.platform}", not "${current.platform}"`,
        );
    }
    return out;
  }

  return {
    async retry(taskId: string, opts: { patch?: RetryPatch; note?: string }, by: Actor): Promise<ReviewOutcome> {
      const patch = await checkPatch(taskId, opts.patch);
      return decide(taskId, { action: 'retry', patch, note: opts.note, audit: auditOf(by, opts.note) });
    },
    resolve(taskId: string, opts: { url?: string; note?: string }, by: Actor): Promise<ReviewOutcome> {
      return decide(taskId, { action: 'resolve', url: opts.url, note: opts.note, audit: auditOf(by, opts.note) });
    },
    discard(taskId: string, opts: { note?: string }, by: Actor): Promise<ReviewOutcome> {
      return decide(taskId, { action: 'discard', note: opts.note, audit: auditOf(by, opts.note) });
    },

    /** Retries every open review matching the filter (no filter: all of them); reports those that could not be. */
    async retryAll(filter: ReviewFilter, note: string | undefined, by: Actor): Promise<RetryAllResult> {
      const ids = await tsm.listReviewTaskIds(filter);
      // One audit for the whole request: every task's decision names the same person, time and note.
      const audit = auditOf(by, note, 'retry-all');
      const limit = pLimit(RETRY_ALL_CONCURRENCY);
      const outcomes = await Promise.all(
        ids.map((taskId) =>
          limit(async () => {
            try {
              await client.workflow
                .getHandle(taskId)
                .executeUpdate(reviewDecisionUpdate, { args: [{ action: 'retry', note, audit }] });
              return null;
            } catch (err) {
              // Decided or closed since it was listed: report it, carry on with the rest.
              if (err instanceof WorkflowUpdateFailedError)
                return { taskId, code: 'no_open_review', message: err.cause?.message ?? 'no open review' };
              if (err instanceof WorkflowNotFoundError)
                return { taskId, code: 'review_closed', message: 'task has finished' };
              log.warn('retry-all: decision failed', { taskId, error: (err as Error).message });
              return { taskId, code: 'error', message: (err as Error).message };
            }
          }),
        ),
      );
      const failed = outcomes.filter((o) => o !== null);
      const result = { matched: ids.length, retried: ids.length - failed.length, failed };
      logAudit(log, 'retry-all', { matched: result.matched, retried: result.retried }, audit);
      return result;
    },
  };
}
