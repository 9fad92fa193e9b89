/**
 * The worker's own metrics, recorded through the Temporal SDK's metric meter, so they are served by the SDK's
 * Prometheus exporter next to its `temporal_*` series: one scrape endpoint per process, as issue 13 asks.
 *
 * Why the SDK's meter and not prom-client: the exporter already runs inside the SDK's core (Runtime.install), so a
 * second HTTP server would mean a second port per worker; and workflow code (the gate wait is measured where the
 * turn is granted, in a workflow) can only emit metrics through the SDK's replay-safe `metricMeter`.
 */
import type { MetricMeter } from '@temporalio/common';
import {
  ATTEMPT_FAILURES,
  DELIVERY_OUTCOMES,
  EVENT_TYPES,
  type AttemptFailure,
  type DeliveryOutcome,
} from '../events/types';
import type { Logger } from '../log';
import { GATE_WAIT_BUCKETS, METRICS, PROJECTION_WRITES, UPLOAD_DURATION_BUCKETS, type ProjectionWrite } from './names';

/** What the activities record; injected through ActivityDeps.metrics (absent: nothing is recorded). */
export interface WorkerMetrics {
  /** One finished upload attempt: outcome is `success`, `cancelled` or the error kind. */
  upload(o: { platform: string; outcome: string; seconds: number }): void;
  projectionWriteError(write: ProjectionWrite): void;
  // Optional: recorders written before event webhooks need not count them.
  /** An event delivery ended: delivered, given up after its retries, or dropped (its subscription was removed). */
  eventDelivery?(o: { type: string; outcome: DeliveryOutcome }): void;
  /** One POST of an event failed (it is retried). */
  eventAttemptFailed?(o: { type: string; reason: AttemptFailure }): void;
}

export const NO_WORKER_METRICS: WorkerMetrics = {
  upload() {},
  projectionWriteError() {},
  eventDelivery() {},
  eventAttemptFailed() {},
};

export function createWorkerMetrics(meter: MetricMeter): WorkerMetrics {
  const uploads = meter.createCounter(METRICS.uploads, undefined, 'Upload attempts by platform and outcome');
  const duration = meter.createHistogram(
    METRICS.uploadDuration,
    'float',
    's',
    'Duration of one upload attempt, by platform',
  );
  const writeErrors = meter.createCounter(
    METRICS.projectionWriteErrors,
    undefined,
    'Projection (Redis) writes that failed, by write',
  );
  // Present from the start at 0, so "is it failing" is a rate of an existing series, not an absent one.
  for (const write of PROJECTION_WRITES) writeErrors.add(0, { write });
  const deliveries = meter.createCounter(
    METRICS.eventDeliveries,
    undefined,
    'Event webhook deliveries that ended, by event type and outcome (delivered, gave_up, dropped)',
  );
  const failures = meter.createCounter(
    METRICS.eventDeliveryFailures,
    undefined,
    'Event webhook POSTs that failed and will be retried, by event type and reason',
  );
  for (const type of EVENT_TYPES) {
    for (const outcome of DELIVERY_OUTCOMES) deliveries.add(0, { type, outcome });
    for (const reason of ATTEMPT_FAILURES) failures.add(0, { type, reason });
  }
  return {
    upload({ platform, outcome, seconds }) {
      uploads.add(1, { platform, outcome });
      duration.record(seconds, { platform });
    },
    projectionWriteError(write) {
      writeErrors.add(1, { write });
    },
    eventDelivery({ type, outcome }) {
      deliveries.add(1, { type, outcome });
    },
    eventAttemptFailed({ type, reason }) {
      failures.add(1, { type, reason });
    },
  };
}

export interface WorkerMetricsEndpoint {
  host: string;
  /** 0: no exporter. */
  port: number;
}

/** The `metrics` part of Runtime.install's telemetryOptions for a Prometheus exporter on host:port. */
export function prometheusTelemetry(endpoint: WorkerMetricsEndpoint) {
  return {
    prometheus: {
      bindAddress: `${endpoint.host.includes(':') ? `[${endpoint.host}]` : endpoint.host}:${endpoint.port}`,
      // Seconds, as Prometheus's conventions and our own histograms have it.
      useSecondsForDurations: true,
      histogramBucketOverrides: {
        [METRICS.uploadDuration]: UPLOAD_DURATION_BUCKETS,
        [METRICS.gateWait]: GATE_WAIT_BUCKETS,
      },
    },
  };
}

/**
 * Installs the runtime with the exporter when one is asked for. A port already taken (a second worker started on the
 * same host with the same settings) must not stop a worker from publishing: it runs without the exporter and says so
 * loudly; its scrape target is then down, which the PubflowWorkerDown alert reports.
 */
export function installWithMetrics(
  install: (metrics: ReturnType<typeof prometheusTelemetry> | undefined) => void,
  endpoint: WorkerMetricsEndpoint,
  log: Logger,
): boolean {
  if (endpoint.port === 0) {
    install(undefined);
    return false;
  }
  try {
    install(prometheusTelemetry(endpoint));
    return true;
  } catch (err) {
    log.error('worker metrics exporter not started; running without it', {
      bindAddress: `${endpoint.host}:${endpoint.port}`,
      error: (err as Error).message,
      fix: 'give each worker its own PUBFLOW_WORKER_METRICS_PORT (0 turns the exporter off)',
    });
    install(undefined);
    return false;
  }
}
