/**
 * deliverEvent: one event to one subscription (src/events/). Started by the projection activities with the id
 * `event:<subscription>:<event id>`, so each pair is delivered by one workflow however often its document is
 * written. Not a task: its type is not in TASK_WORKFLOW_TYPES, so the API answers 404 for it and the reconciler
 * never lists it.
 *
 * The POST is one activity retried by Temporal with backoff until the receiver answers 2xx, for at most
 * `retry.giveUpAfterMs` (24 h): retrying is right here, as the receiver deduplicates by the event id, which every
 * attempt carries (Pubflow-Delivery). The retries are server-side timers: while a receiver is down the workflow
 * runs no code and adds no history. Given up, the workflow records it (metric and log line) and fails, so that
 * `ExecutionStatus = 'Failed'` lists the deliveries that did not arrive (docs/operations.md).
 */
import {
  ActivityFailure,
  ApplicationFailure,
  proxyActivities,
  proxyLocalActivities,
  workflowInfo,
} from '@temporalio/workflow';
import type { createActivities } from '../activities';
import { DELIVERY_ERRORS, eventsQueueFor, type DeliverEventInput, type DeliverEventOutput } from '../events/types';

const { eventDeliveryEnded } = proxyLocalActivities<ReturnType<typeof createActivities>>({
  startToCloseTimeout: '10s',
  retry: { initialInterval: '1s', maximumInterval: '10s' },
});

export async function deliverEvent(input: DeliverEventInput): Promise<DeliverEventOutput> {
  const { subscriptionId, event, retry } = input;
  const { postEvent } = proxyActivities<ReturnType<typeof createActivities>>({
    taskQueue: eventsQueueFor(workflowInfo().taskQueue),
    // One POST has its own 10 s limit; this covers a worker that dies mid-request.
    startToCloseTimeout: '30s',
    scheduleToCloseTimeout: retry.giveUpAfterMs,
    retry: {
      initialInterval: retry.initialIntervalMs,
      backoffCoefficient: 2,
      maximumInterval: retry.maximumIntervalMs,
      nonRetryableErrorTypes: [DELIVERY_ERRORS.gone],
    },
  });
  try {
    const { status, attempt } = await postEvent({ subscriptionId, event });
    return { outcome: 'delivered', status, attempt };
  } catch (err) {
    const gone =
      err instanceof ActivityFailure &&
      err.cause instanceof ApplicationFailure &&
      err.cause.type === DELIVERY_ERRORS.gone;
    // After the time limit the failure is a TimeoutFailure whose cause is the last attempt's error.
    const last = err instanceof ActivityFailure ? ((err.cause?.cause as Error | undefined) ?? err.cause) : undefined;
    const lastError = last?.message ?? (err instanceof Error ? err.message : String(err));
    await eventDeliveryEnded({ subscriptionId, event, outcome: gone ? 'dropped' : 'gave_up', lastError });
    throw ApplicationFailure.nonRetryable(
      gone
        ? `event ${event.id} dropped: subscription ${subscriptionId} is no longer configured`
        : `event ${event.id} to subscription ${subscriptionId} given up after ${retry.giveUpAfterMs / 1000} s: ${lastError}`,
      gone ? 'EventDeliveryDropped' : 'EventDeliveryGaveUp',
      { eventId: event.id, subscriptionId },
    );
  }
}
