/**
 * An in-process OTLP/HTTP trace receiver for tests: a real HTTP server on a free loopback port that accepts
 * `POST /v1/traces` in either encoding, JSON (OTEL_EXPORTER_OTLP_PROTOCOL=http/json) or protobuf (http/protobuf,
 * decoded with the OTLP message definitions the exporter package itself ships), answers 200 as a collector does, and
 * keeps every span it decoded with its service name and the encoding it came in.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedSpan {
  service: string;
  encoding: 'json' | 'protobuf';
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
}

interface AnyValue {
  stringValue?: string;
  intValue?: number | string | { toString(): string } | null;
  boolValue?: boolean;
  doubleValue?: number;
}
interface KeyValue {
  key: string;
  value: AnyValue;
}
interface ExportTraceServiceRequest {
  resourceSpans?: {
    resource?: { attributes?: KeyValue[] };
    scopeSpans?: {
      spans?: {
        traceId: string | Uint8Array;
        spanId: string | Uint8Array;
        parentSpanId?: string | Uint8Array;
        name: string;
        kind: number;
        attributes?: KeyValue[];
      }[];
    }[];
  }[];
}

// protobufjs decodes 64-bit ints as Long objects and ids as bytes.
const valueOf = (v: AnyValue): unknown =>
  v.stringValue ??
  (v.intValue !== undefined && v.intValue !== null ? Number(String(v.intValue)) : undefined) ??
  v.boolValue ??
  v.doubleValue;
const hex = (id: unknown): string =>
  typeof id === 'string' ? id : id instanceof Uint8Array ? Buffer.from(id).toString('hex') : '';

interface ProtoRoot {
  opentelemetry: {
    proto: { collector: { trace: { v1: { ExportTraceServiceRequest: { decode(buf: Uint8Array): unknown } } } } };
  };
}
function decodeProtobuf(body: Buffer): ExportTraceServiceRequest {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const root = require('@opentelemetry/otlp-transformer/build/src/generated/root') as ProtoRoot;
  return root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest.decode(
    body,
  ) as ExportTraceServiceRequest;
}
const attrs = (kvs: KeyValue[] | undefined) => Object.fromEntries((kvs ?? []).map((kv) => [kv.key, valueOf(kv.value)]));

export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  /** Requests that were not JSON OTLP trace exports (path, content type), to show in a failure. */
  readonly refused: string[] = [];

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<OtlpReceiver> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const receiver = new OtlpReceiver(server, `http://127.0.0.1:${port}`);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => receiver.handle(req, res));
    return receiver;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const type = req.headers['content-type'] ?? '';
      const encoding = type.startsWith('application/json')
        ? 'json'
        : type.startsWith('application/x-protobuf')
          ? 'protobuf'
          : undefined;
      if (req.method !== 'POST' || req.url !== '/v1/traces' || !encoding) {
        this.refused.push(`${req.method} ${req.url} ${type}`);
        res.writeHead(415).end();
        return;
      }
      try {
        const body = Buffer.concat(chunks);
        this.take(
          encoding === 'json' ? (JSON.parse(body.toString('utf8')) as ExportTraceServiceRequest) : decodeProtobuf(body),
          encoding,
        );
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      } catch (err) {
        this.refused.push(`undecodable body: ${(err as Error).message}`);
        res.writeHead(400).end();
      }
    });
  }

  private take(body: ExportTraceServiceRequest, encoding: 'json' | 'protobuf'): void {
    for (const rs of body.resourceSpans ?? []) {
      const service = String(attrs(rs.resource?.attributes)['service.name'] ?? '');
      for (const ss of rs.scopeSpans ?? [])
        for (const s of ss.spans ?? [])
          this.spans.push({
            service,
            encoding,
            traceId: hex(s.traceId),
            spanId: hex(s.spanId),
            parentSpanId: hex(s.parentSpanId),
            name: s.name,
            kind: s.kind,
            attributes: attrs(s.attributes),
          });
    }
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
