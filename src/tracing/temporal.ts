/**
 * The Temporal side of tracing: the client interceptors of an API process and the worker options (activity
 * interceptors, the sink that exports workflow spans) of a worker process. Without tracing, only pubflow's own
 * request-id and log-context interceptors.
 */
import type { ClientInterceptors } from '@temporalio/client';
import {
  makeWorkflowExporter,
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
  OpenTelemetryWorkflowClientInterceptor,
  type OpenTelemetryWorkflowExporter,
} from '@temporalio/interceptors-opentelemetry';
import type { ActivityInterceptorsFactory, InjectedSinks } from '@temporalio/worker';
import { activityLogContext, RequestIdClientInterceptor } from '../interceptors';
import type { Tracing } from '.';

export function clientInterceptors(tracing: Tracing | null): ClientInterceptors {
  return {
    workflow: [
      new RequestIdClientInterceptor(),
      ...(tracing ? [new OpenTelemetryWorkflowClientInterceptor({ tracer: tracing.tracer })] : []),
    ],
  };
}

export function activityInterceptors(tracing: Tracing | null): ActivityInterceptorsFactory[] {
  const factories: ActivityInterceptorsFactory[] = [activityLogContext];
  if (tracing)
    factories.push((ctx) => ({
      inbound: new OpenTelemetryActivityInboundInterceptor(ctx, { tracer: tracing.tracer }),
      outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
    }));
  return factories;
}

/** The `exporter` sink the workflow interceptors send their finished spans through (tracing on only). */
export function workflowSpanSinks(
  tracing: Tracing | null,
): InjectedSinks<{ exporter: OpenTelemetryWorkflowExporter }> | undefined {
  return tracing ? { exporter: makeWorkflowExporter(tracing.spanProcessor, tracing.resource) } : undefined;
}
