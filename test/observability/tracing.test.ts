/**
 * src/tracing in one process: off without OTEL_EXPORTER_OTLP_ENDPOINT (nothing registered, spans are no-ops); on,
 * spans reach an OTLP/HTTP receiver in the default encoding, protobuf. The configuration refuses what it cannot use.
 */
import * as otel from '@opentelemetry/api';
import { loadConfig } from '../../src/config';
import { startTracing } from '../../src/tracing';
import { OtlpReceiver } from './otlp-receiver';

let receiver: OtlpReceiver;
beforeAll(async () => {
  receiver = await OtlpReceiver.start();
});
afterAll(async () => {
  await receiver?.close();
});

test('without OTEL_EXPORTER_OTLP_ENDPOINT (or with it empty) tracing is off: nothing is registered, spans record nothing', () => {
  expect(loadConfig({}).tracing).toBeNull();
  expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: ' ' }).tracing).toBeNull();
  expect(startTracing(loadConfig({}).tracing, 'api')).toBeNull();
  const span = otel.trace.getTracer('probe').startSpan('probe');
  expect(span.isRecording()).toBe(false);
  expect(span.spanContext().traceId).toBe(otel.INVALID_TRACEID);
  span.end();
});

test('the configuration names the variable it refuses, and sets the traces URL, protocol and service name', () => {
  expect(() => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' })).toThrow(/OTEL_EXPORTER_OTLP_ENDPOINT/);
  expect(() =>
    loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }),
  ).toThrow(/OTEL_EXPORTER_OTLP_PROTOCOL/);
  expect(
    loadConfig({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_SERVICE_NAME: 'pubflow-eu',
    }).tracing,
  ).toEqual({ tracesUrl: 'http://collector:4318/v1/traces', protocol: 'http/json', serviceName: 'pubflow-eu' });
});

test('with an endpoint, spans are exported over OTLP/HTTP as protobuf by default, under pubflow-<component>', async () => {
  const config = loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url }).tracing;
  expect(config).toEqual(expect.objectContaining({ protocol: 'http/protobuf' }));
  const tracing = startTracing(config, 'api')!;
  const parent = tracing.tracer.startSpan('outer');
  const child = tracing.tracer.startSpan('inner', {}, otel.trace.setSpan(otel.context.active(), parent));
  child.end();
  parent.end();
  await tracing.shutdown();
  expect(receiver.refused).toEqual([]);
  const { traceId, spanId } = parent.spanContext();
  expect(receiver.spans).toEqual(
    expect.arrayContaining([
      expect.objectContaining({ encoding: 'protobuf', service: 'pubflow-api', name: 'outer', traceId, spanId }),
      expect.objectContaining({ encoding: 'protobuf', name: 'inner', traceId, parentSpanId: spanId }),
    ]),
  );
});
