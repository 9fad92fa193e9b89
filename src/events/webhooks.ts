/**
 * Event webhooks, the worker side: the projection activities hand every document version to `onDocument`, which
 * starts one `deliverEvent` workflow per subscription and event; the workflow's `postEvent` activity sends it,
 * retried with backoff for 24 h.
 *
 * Why Temporal and not an in-memory queue: an event must survive a worker crash and a receiver that is down for
 * hours, and Temporal already keeps the retry timers durably. Why a workflow per delivery rather than an activity of
 * the publish workflow: a delivery adds nothing to the publish's history (another helper is cutting those events),
 * and a receiver's retries never hold the publish open. Why started from the projection activities: they see every
 * version the workflows ship, batch documents included, without touching the workflows (no replay change).
 */
import { Context } from '@temporalio/activity';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { NO_WORKER_METRICS, type WorkerMetrics } from '../metrics/worker-metrics';
import type { TaskDoc } from '../shared/types';
import { WORKFLOW_TYPES } from '../shared/workflow-contracts';
import { deriveEvents } from './derive';
import { deliveryHeaders, eventBody } from './format';
import type { SubscriptionRegistry } from './subscriptions';
import {
  DEFAULT_DELIVERY_RETRY,
  DELIVERY_ERRORS,
  deliveryWorkflowId,
  type AttemptFailure,
  type DeliverEventInput,
  type DeliveryOutcome,
  type DeliveryRetry,
  type PubflowEvent,
} from './types';

export interface EventWebhooksOptions {
  subscriptions: SubscriptionRegistry;
  /** Defaults: first retry after 10 s, doubling to at most 1 h, given up after 24 h (PUBFLOW_EVENTS_RETRY_*). */
  retry?: Partial<DeliveryRetry>;
  /** One POST's time limit (default 10 s). */
  requestTimeoutMs?: number;
  /** The worker's client; defaults to the one the SDK gives each activity. */
  client?: Client;
}

/** Delivery workflows this process has started (or found started), so a document written again costs no RPC. */
const REMEMBERED_STARTS = 10_000;

/**
 * A delivery's workflow tasks run at the lowest priority key (a task's priority 9): a notification waits behind
 * publishes, never the other way round.
 */
const DELIVERY_PRIORITY_KEY = 10;

export class EventWebhooks {
  readonly subscriptions: SubscriptionRegistry;
  readonly retry: DeliveryRetry;
  readonly requestTimeoutMs: number;
  private readonly client?: Client;
  private readonly started = new Set<string>();

  constructor(opts: EventWebhooksOptions) {
    this.subscriptions = opts.subscriptions;
    this.retry = { ...DEFAULT_DELIVERY_RETRY, ...opts.retry };
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 10_000;
    this.client = opts.client;
  }

  /**
   * Starts the deliveries this document version implies. Called from inside a projection activity (the task queue
   * and the fallback client come from its context). Idempotent: a delivery's workflow id is its subscription and
   * event, and Temporal refuses a second start of it (REJECT_DUPLICATE: also once the first has closed). Throws when
   * Temporal cannot be reached, so the activity is retried and no event is lost.
   */
  async onDocument(doc: TaskDoc): Promise<void> {
    const events = deriveEvents(doc);
    if (events.length === 0) return;
    const ctx = Context.current();
    const client = this.client ?? ctx.client;
    const taskQueue = ctx.info.taskQueue;
    const starts: Array<Promise<void>> = [];
    for (const event of events) {
      for (const sub of this.subscriptions.wanting(event.type)) {
        const workflowId = deliveryWorkflowId(sub.id, event.id);
        if (this.started.has(workflowId)) continue;
        starts.push(this.start(client, taskQueue, workflowId, { subscriptionId: sub.id, event, retry: this.retry }));
      }
    }
    await Promise.all(starts);
  }

  private async start(client: Client, taskQueue: string, workflowId: string, input: DeliverEventInput) {
    try {
      await client.workflow.start(WORKFLOW_TYPES.deliverEvent, {
        workflowId,
        taskQueue,
        args: [input],
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        workflowIdConflictPolicy: 'FAIL',
        priority: { priorityKey: DELIVERY_PRIORITY_KEY },
      });
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
    this.started.add(workflowId);
    if (this.started.size > REMEMBERED_STARTS) this.started.delete(this.started.values().next().value!);
  }

  /** The delivery workflow's activities; `metrics` counts attempts and outcomes. */
  activities(metrics: WorkerMetrics = NO_WORKER_METRICS) {
    return createEventActivities(this, metrics);
  }
}

export interface PostEventInput {
  subscriptionId: string;
  event: PubflowEvent;
}

export interface DeliveryEndedInput {
  subscriptionId: string;
  event: PubflowEvent;
  outcome: Exclude<DeliveryOutcome, 'delivered'>;
  /** The last attempt's error (no secret: the receiver's status, or the network error). */
  lastError: string;
}

const failureOf = (status: number): AttemptFailure =>
  status >= 500 && status < 600 ? 'http_5xx' : status >= 400 && status < 500 ? 'http_4xx' : 'http_other';

/**
 * `postEvent`: one POST to the subscription's URL, read from the events file now (a changed URL or secret is used
 * by the next attempt). A 2xx is delivered; anything else fails the attempt, and Temporal retries it with the
 * workflow's backoff. The body is built from the event alone, so each redelivery sends the same bytes, id and
 * signature.
 * `eventDeliveryEnded`: the delivery workflow's record of a delivery it gave up (a local activity).
 */
export function createEventActivities(webhooks: EventWebhooks | undefined, metrics: WorkerMetrics) {
  return {
    async postEvent({ subscriptionId, event }: PostEventInput): Promise<{ status: number; attempt: number }> {
      const ctx = Context.current();
      const sub = webhooks?.subscriptions.get(subscriptionId);
      if (!webhooks || !sub)
        throw ApplicationFailure.nonRetryable(
          `event subscription "${subscriptionId}" is not in this worker's events file (PUBFLOW_EVENTS_FILE)`,
          DELIVERY_ERRORS.gone,
        );
      const body = eventBody(event, sub.format);
      const headers = deliveryHeaders(event, body, webhooks.subscriptions.secret(sub.id));
      const timeout = AbortSignal.timeout(webhooks.requestTimeoutMs);
      let res: Response;
      try {
        res = await fetch(sub.url, {
          method: 'POST',
          headers,
          body,
          redirect: 'manual',
          signal: AbortSignal.any([timeout, ctx.cancellationSignal]),
        });
        // The answer's body is not read; release the connection.
        await res.body?.cancel();
      } catch (err) {
        const reason: AttemptFailure = timeout.aborted ? 'timeout' : 'network';
        metrics.eventAttemptFailed?.({ type: event.type, reason });
        const cause = (err as { cause?: { code?: string } }).cause?.code;
        throw ApplicationFailure.retryable(
          `event ${event.id} to subscription ${sub.id}: ${reason === 'timeout' ? `no answer within ${webhooks.requestTimeoutMs} ms` : `cannot reach the receiver${cause ? ` (${cause})` : ''}`}`,
          DELIVERY_ERRORS.receiver,
        );
      }
      if (res.status < 200 || res.status >= 300) {
        metrics.eventAttemptFailed?.({ type: event.type, reason: failureOf(res.status) });
        throw ApplicationFailure.retryable(
          `event ${event.id} to subscription ${sub.id}: the receiver answered ${res.status}`,
          DELIVERY_ERRORS.receiver,
        );
      }
      metrics.eventDelivery?.({ type: event.type, outcome: 'delivered' });
      return { status: res.status, attempt: ctx.info.attempt };
    },

    async eventDeliveryEnded({ subscriptionId, event, outcome, lastError }: DeliveryEndedInput): Promise<void> {
      metrics.eventDelivery?.({ type: event.type, outcome });
      Context.current().log.warn(outcome === 'gave_up' ? 'event delivery given up' : 'event delivery dropped', {
        subscription: subscriptionId,
        eventId: event.id,
        eventType: event.type,
        taskId: event.data.taskId,
        lastError,
      });
    },
  };
}

export type EventActivities = ReturnType<typeof createEventActivities>;
