/**
 * OpenTelemetry traces, exported over OTLP/HTTP (protobuf by default, JSON with OTEL_EXPORTER_OTLP_PROTOCOL=http/json)
 * when OTEL_EXPORTER_OTLP_ENDPOINT is set. Unset, {@link startTracing} returns null and nothing of OpenTelemetry is
 * registered: no interceptors, no context manager, the workflows run from the bundle without tracing code.
 *
 * One trace per API request: the request's server span (src/tracing/express.ts) → the client's StartWorkflow span
 * (the SDK's OpenTelemetryWorkflowClientInterceptor) → the workflow's spans (its interceptors, in the traced bundle,
 * exported through the worker's `exporter` sink) → each activity's span (OpenTelemetryActivityInboundInterceptor).
 * An incoming W3C `traceparent` header makes the request's span a child of the caller's.
 */
import * as otel from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter as OTLPJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OTLPProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { Resource } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { TracingConfig } from '../config';

export interface Tracing {
  tracer: otel.Tracer;
  resource: Resource;
  spanProcessor: SpanProcessor;
  /** Sends what is buffered and stops exporting. */
  shutdown(): Promise<void>;
}

/**
 * Registers a tracer provider, the async-hooks context manager and the W3C propagator for this process, or does
 * nothing and returns null when tracing is off. `component` names the service (`pubflow-<component>`) unless
 * OTEL_SERVICE_NAME does. Batching follows the SDK's OTEL_BSP_* variables (default: every 5 s).
 */
export function startTracing(config: TracingConfig | null, component: string): Tracing | null {
  if (!config) return null;
  const resource = new Resource({ 'service.name': config.serviceName ?? `pubflow-${component}` });
  // The exporters read OTEL_EXPORTER_OTLP_HEADERS and OTEL_EXPORTER_OTLP_TIMEOUT themselves.
  const exporter =
    config.protocol === 'http/json'
      ? new OTLPJsonExporter({ url: config.tracesUrl })
      : new OTLPProtoExporter({ url: config.tracesUrl });
  const spanProcessor = new BatchSpanProcessor(exporter);
  const provider = new BasicTracerProvider({ resource, spanProcessors: [spanProcessor] });
  provider.register({
    contextManager: new AsyncLocalStorageContextManager(),
    propagator: new W3CTraceContextPropagator(),
  });
  return {
    tracer: otel.trace.getTracer('pubflow'),
    resource,
    spanProcessor,
    shutdown: () => provider.shutdown(),
  };
}
