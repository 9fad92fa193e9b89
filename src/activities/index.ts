import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { DriverRegistry } from '../platforms';
import type { AccountRegistry } from '../platforms/accounts';
import { reconcile, type ReconcileReport } from '../service/reconciler';
import type { ProjectionStore } from '../projection/store';
import type { TaskDoc } from '../shared/types';
import { fromTemporalLogger, type Logger } from '../log';
import { NO_WORKER_METRICS, type WorkerMetrics } from '../metrics/worker-metrics';
import { createEventActivities, type EventWebhooks } from '../events/webhooks';
import { createGateActivities } from './gate';
import { makeUpload } from './upload';

export interface ActivityDeps {
  store: ProjectionStore;
  accounts: AccountRegistry;
  drivers: DriverRegistry;
  /** The process logger; activities log through the SDK's activity logger (Context.current().log) instead. */
  log: Logger;
  progressIntervalMs?: number;
  /** The worker's Temporal client: the reconciler reads visibility and queries workflows with it. */
  client?: Client;
  /** Upload outcomes and durations, projection write errors (src/metrics/worker-metrics.ts); absent: not recorded. */
  metrics?: WorkerMetrics;
  /** Event webhooks (PUBFLOW_EVENTS_FILE, src/events/); absent: no events, nothing extra happens. */
  events?: EventWebhooks;
}

/** All activities, closed over their dependencies; the worker builds the clients and injects them. */
export function createActivities(deps: ActivityDeps) {
  const metrics = deps.metrics ?? NO_WORKER_METRICS;
  /** A failed projection write is counted, then thrown on (the activity's retries decide what happens next). */
  const counted = async <T>(write: 'task' | 'review', run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (err) {
      metrics.projectionWriteError(write);
      throw err;
    }
  };
  /**
   * A projection write and the events its document implies, side by side: neither waits for the other. An event
   * describes the workflow's state (the truth), not the mirror, so a Redis outage must not hold it back; and a
   * Temporal hiccup while starting a delivery must not hold back the mirror. Either failing fails the activity,
   * whose retry repeats both (the write is versioned, a delivery's start idempotent): nothing is lost either way.
   */
  const projected = async (doc: TaskDoc, write: () => Promise<'applied' | 'stale'>) => {
    if (!deps.events) return write();
    const [written, emitted] = await Promise.allSettled([write(), deps.events.onDocument(doc)]);
    if (written.status === 'rejected') throw written.reason;
    if (emitted.status === 'rejected') throw emitted.reason;
    return written.value;
  };
  return {
    upload: makeUpload(deps),
    ...createGateActivities({ accounts: deps.accounts, log: deps.log, client: deps.client }),
    ...createEventActivities(deps.events, metrics),

    /** Mirror a task document into Redis (versioned: stale writes are ignored). */
    async projectTask(doc: TaskDoc): Promise<'applied' | 'stale'> {
      const outcome = await projected(doc, () => counted('task', () => deps.store.write(doc)));
      // A task's story in the log; a batch's document changes with every child, so its writes are debug lines.
      Context.current().log[doc.task_type === 'batch_publish' ? 'debug' : 'info']('task projected', {
        taskId: doc.task_id,
        status: doc.status,
        version: doc.version,
        outcome,
      });
      return outcome;
    },

    /**
     * The manual-review activity: files a failed task in the review library (the open-review indexes) and
     * tells the operators' log. Same versioned write path as every other projection write.
     */
    async fileReview(doc: TaskDoc): Promise<'applied' | 'stale'> {
      const outcome = await projected(doc, () => counted('review', () => deps.store.write(doc)));
      if (outcome === 'applied' && doc.review) {
        // The SDK's activity logger adds workflowId, runId and attempt (the activity's; the task's is taskAttempt).
        Context.current().log.warn('review filed', {
          taskId: doc.task_id,
          kind: doc.review.kind,
          taskAttempt: doc.review.attempt,
          platform: doc.platform,
          accountId: doc.account_id,
          reason: doc.review.reason,
        });
      }
      return outcome;
    },

    /** Removes index members whose documents have expired (run by a Temporal Schedule). */
    async pruneProjection(): Promise<{ scanned: number; removed: number }> {
      return deps.store.prune();
    },

    /** Rebuilds or repairs the projection from Temporal (run by a Temporal Schedule); heartbeats as it goes. */
    async reconcileProjection(input: { windowDays?: number } = {}): Promise<ReconcileReport> {
      if (!deps.client)
        throw ApplicationFailure.nonRetryable(
          'this worker has no Temporal client to reconcile with (ActivityDeps.client)',
          'NotConfigured',
        );
      const ctx = Context.current();
      return reconcile({
        client: deps.client,
        store: deps.store,
        log: fromTemporalLogger(ctx.log),
        windowDays: input.windowDays,
        signal: ctx.cancellationSignal,
        onProgress: (p) => ctx.heartbeat(p),
      });
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;
