/**
 * pubflow's metric names and histogram buckets, in one place: the worker (through the SDK's metric meter), the API
 * (prom-client), the alert rules in deploy/prometheus/ and the Grafana dashboard use these names, and
 * test/metrics/ checks that every name the rules and the dashboard use is in a real scrape.
 * Labels are bounded sets only (platform, outcome, kind, status): never a task id, a title or an account.
 */
export const METRICS = {
  // worker
  uploads: 'pubflow_uploads_total',
  uploadDuration: 'pubflow_upload_duration_seconds',
  gateWait: 'pubflow_gate_wait_seconds',
  projectionWriteErrors: 'pubflow_projection_write_errors_total',
  /** Event webhooks: one per delivery (subscription x event) that ended, by type and outcome. */
  eventDeliveries: 'pubflow_event_deliveries_total',
  /** Event webhooks: one per failed POST (each is retried until the delivery gives up), by type and reason. */
  eventDeliveryFailures: 'pubflow_event_delivery_failures_total',
  // API
  httpRequests: 'pubflow_http_requests_total',
  httpDuration: 'pubflow_http_request_duration_seconds',
  tasks: 'pubflow_tasks',
  reviewsOpen: 'pubflow_reviews_open',
  reviewOldestAge: 'pubflow_review_oldest_age_seconds',
  accountsNeedingLogin: 'pubflow_accounts_needing_login',
  collectErrors: 'pubflow_metrics_collect_errors_total',
} as const;

/** An upload takes from under a second (local) to many minutes (a large video). */
export const UPLOAD_DURATION_BUCKETS = [0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800];
/** A turn comes at once on an idle account, or after hours behind a rate limit or a login. */
export const GATE_WAIT_BUCKETS = [0.05, 0.1, 0.5, 1, 5, 15, 30, 60, 300, 900, 3600, 14400];
export const HTTP_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** `outcome` of pubflow_uploads_total besides the error kinds. */
export const UPLOAD_OUTCOME_SUCCESS = 'success';
/** The task was cancelled during its upload (a person's cancel; not a failure). */
export const UPLOAD_OUTCOME_CANCELLED = 'cancelled';

/** Which projection write failed (pubflow_projection_write_errors_total{write}). */
export type ProjectionWrite = 'task' | 'review' | 'progress';
export const PROJECTION_WRITES: readonly ProjectionWrite[] = ['task', 'review', 'progress'];
