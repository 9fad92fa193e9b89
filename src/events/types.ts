/**
 * Event webhooks (README "Event webhooks"): the event types, the event a receiver gets, and the delivery workflow's
 * contract. Pure types and constants: this file is bundled into workflow code.
 */

export const EVENT_TYPES = [
  'task.succeeded',
  'task.failed',
  'review.opened',
  'review.decided',
  'batch.completed',
  'account.needs_login',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** What a receiver gets (the JSON body, or the source of the Slack text). */
export interface PubflowEvent {
  /** Deterministic: task id, type and what makes this occurrence unique (attempt, outcome). Also `Pubflow-Delivery`. */
  id: string;
  type: EventType;
  /** When it happened, from the task's document (not when it was sent). */
  occurred_at: string;
  data: EventData;
}

export interface EventData {
  taskId: string;
  taskType: 'publish' | 'batch_publish';
  status: string;
  platform: string | null;
  accountId: string | null;
  errorKind: string | null;
  errorMessage: string | null;
  attempt: number;
  parentTaskId: string | null;
  title?: string;
  result?: { postId?: string; url?: string } | null;
  review?: {
    kind: string;
    reason: string;
    attempt: number;
    decision?: string;
    note?: string;
    expiresAt: string;
  };
  counts?: { total: number; pending: number; running: number; success: number; failed: number; cancelled: number };
}

/** How long and how often a delivery is retried; recorded in the workflow's input so a replay sees the same. */
export interface DeliveryRetry {
  initialIntervalMs: number;
  maximumIntervalMs: number;
  /** The delivery gives up this long after it was first tried (24 h). */
  giveUpAfterMs: number;
}

export const DEFAULT_DELIVERY_RETRY: DeliveryRetry = {
  initialIntervalMs: 10_000,
  maximumIntervalMs: 3_600_000,
  giveUpAfterMs: 24 * 3_600_000,
};

/** The `deliverEvent` workflow's input: no URL, no secret (both are read from the events file by the activity). */
export interface DeliverEventInput {
  subscriptionId: string;
  event: PubflowEvent;
  retry: DeliveryRetry;
}

export interface DeliverEventOutput {
  outcome: 'delivered';
  /** The receiver's HTTP status. */
  status: number;
  /** Which attempt succeeded (1 = the first). */
  attempt: number;
}

/** What a delivery ended with, as pubflow_event_deliveries_total{outcome} counts it. */
export const DELIVERY_OUTCOMES = ['delivered', 'gave_up', 'dropped'] as const;
export type DeliveryOutcome = (typeof DELIVERY_OUTCOMES)[number];

/** Why one attempt failed (pubflow_event_delivery_failures_total{reason}). */
export const ATTEMPT_FAILURES = ['http_4xx', 'http_5xx', 'http_other', 'timeout', 'network'] as const;
export type AttemptFailure = (typeof ATTEMPT_FAILURES)[number];

/** The error types the delivery activity fails with. */
export const DELIVERY_ERRORS = {
  /** The receiver answered, but not 2xx, or could not be reached: retried. */
  receiver: 'EventReceiverFailed',
  /** The subscription is no longer in the events file: not retried (counted as dropped). */
  gone: 'EventSubscriptionGone',
} as const;

/** Delivery workflows' ids: one per subscription and event, so a second start for the same pair is refused. */
export const deliveryWorkflowId = (subscriptionId: string, eventId: string) => `event:${subscriptionId}:${eventId}`;

/** The HTTP posts run on their own queue, so a slow receiver never holds a slot of the main queue's activities. */
export const eventsQueueFor = (mainQueue: string) => `${mainQueue}-events`;
