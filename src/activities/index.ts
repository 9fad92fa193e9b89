import type { DriverRegistry } from '../platforms';
import type { AccountRegistry } from '../platforms/accounts';
import type { ProjectionStore } from '../projection/store';
import type { TaskDoc } from '../shared/types';
import type { Logger } from '../log';
import { makeUpload } from './upload';

export interface ActivityDeps {
  store: ProjectionStore;
  accounts: AccountRegistry;
  drivers: DriverRegistry;
  log: Logger;
  progressIntervalMs?: number;
}

/** All activities, closed over their dependencies; the worker builds the clients and injects them. */
export function createActivities(deps: ActivityDeps) {
  return {
    upload: makeUpload(deps),

    /** Mirror a task document into Redis (versioned: stale writes are ignored). */
    async projectTask(doc: TaskDoc): Promise<'applied' | 'stale'> {
      return deps.store.write(doc);
    },

    /**
     * The manual-review activity: files a failed task in the review library (the open-review indexes) and
     * tells the operators' log. Same versioned write path as every other projection write.
     */
    async fileReview(doc: TaskDoc): Promise<'applied' | 'stale'> {
      const outcome = await deps.store.write(doc);
      if (outcome === 'applied' && doc.review) {
        deps.log.warn('review filed', {
          taskId: doc.task_id,
          kind: doc.review.kind,
          attempt: doc.review.attempt,
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
  };
}

export type Activities = ReturnType<typeof createActivities>;
