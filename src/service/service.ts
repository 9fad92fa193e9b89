/**
 * The use cases, the one client-side place that talks to Temporal: the HTTP routes (and, through them, the desk and
 * the CLI) call these and map their results and errors; they never hold a Temporal client themselves.
 */
import type { ServiceDeps } from './deps';
import { createAccountService } from './accounts';
import { createPublishService } from './publish';
import { createReviewService } from './reviews';
import { createTaskService } from './tasks';

export function createService(deps: ServiceDeps) {
  const publish = createPublishService(deps);
  return {
    submitSingle: publish.submitSingle,
    submitBatch: publish.submitBatch,
    checkHorizon: publish.checkHorizon,
    ...createTaskService(deps),
    ...createReviewService(deps),
    ...createAccountService(deps),

    /** Both backends answer: what /readyz reports. */
    async readiness(): Promise<{ ready: boolean; redis: string; temporal: string }> {
      const [redis, temporal] = await Promise.all([
        deps.redis
          .ping()
          .then(() => 'ok')
          .catch((e: Error) => `error: ${e.message}`),
        deps.client.connection.workflowService
          .getSystemInfo({})
          .then(() => 'ok')
          .catch((e: Error) => `error: ${e.message}`),
      ]);
      return { ready: redis === 'ok' && temporal === 'ok', redis, temporal };
    },
  };
}

export type PubflowService = ReturnType<typeof createService>;
