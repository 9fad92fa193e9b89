/**
 * The one webhook endpoint for tests: a real HTTP server on 127.0.0.1 (node:http + busboy) that stands in for a
 * platform. It records each request the moment its headers arrive (so a request counts even when its sender dies
 * mid-body), streams the multipart body through busboy (file parts are counted, and kept only when asked: a 1 GiB
 * upload costs no memory), and answers as the test's `behaviour` says once the body is in: a status after a delay,
 * held until `release()`, or never.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import busboy from 'busboy';

/** The `metadata` part the webhook driver sends. */
export interface WebhookMetadata {
  taskId: string;
  attempt: number;
  platform: string;
  accountId: string;
  title: string;
  description?: string;
  tags?: string[];
  options?: Record<string, unknown>;
}

export interface ReceivedFile {
  filename: string;
  mimeType: string;
  size: number;
  /** The bytes, when the receiver keeps them (`keepFileData`). */
  data?: Buffer;
}

/** What the receiver does with one upload once its body is in. */
export type Behaviour =
  /**
   * Answer with this status after `afterMs` (holding the request meanwhile). `body`: a string is sent as it is, with
   * only `headers`; anything else as JSON. Without a body, a 2xx carries a published post, any other an error.
   */
  | { status: number; body?: unknown; headers?: Record<string, string>; afterMs?: number }
  /** Hold the request until the test calls `release()`; then answer 200. */
  | 'hold'
  /** Never answer; only the client can end the request. */
  | 'hang';

export interface ReceivedRequest {
  seq: number;
  method: string;
  headers: http.IncomingHttpHeaders;
  /** The Idempotency-Key header: `<taskId>:<attempt>` ('' when absent). */
  key: string;
  taskId: string;
  attempt: number;
  /** Parsed from the `metadata` part once the body is in (empty until then, or when it is not JSON). */
  metadata: Partial<WebhookMetadata>;
  accountId?: string;
  title?: string;
  /** Every non-file part, by name. */
  fields: Record<string, string>;
  /** Every file part, by name, once it has ended. */
  files: Record<string, ReceivedFile>;
  /** Bytes of the raw body received so far. */
  bodyBytes: number;
  /** The raw body of a request that is not multipart (an event webhook's JSON), once it is in. */
  body?: string;
  arrivedAt: number;
  /** When the whole body had arrived. */
  bodyAt?: number;
  answeredAt?: number;
  /** The status it was answered with. */
  status?: number;
  /** The client closed the connection before an answer was written (the driver aborted, or its process died). */
  abortedAt?: number;
  behaviour?: Behaviour;
}

export class WebhookReceiver {
  readonly requests: ReceivedRequest[] = [];
  /** Decides the answer per request; by default a published post (200). */
  behaviour: (req: ReceivedRequest) => Behaviour = () => ({ status: 200 });
  private readonly held = new Map<ReceivedRequest, () => void>();

  private constructor(
    private readonly server: http.Server,
    readonly url: string,
    private readonly keepFileData: boolean,
  ) {}

  static async start(opts: { keepFileData?: boolean } = {}): Promise<WebhookReceiver> {
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const receiver = new WebhookReceiver(server, `http://127.0.0.1:${port}/upload`, opts.keepFileData ?? false);
    server.on('request', (req, res) => receiver.handle(req, res));
    return receiver;
  }

  /** Every request for one task, in arrival order. */
  requestsFor(taskId: string): ReceivedRequest[] {
    return this.requests.filter((r) => r.taskId === taskId);
  }

  /** Requests received and neither answered nor given up by their sender. */
  inFlight(): ReceivedRequest[] {
    return this.requests.filter((r) => r.answeredAt === undefined && r.abortedAt === undefined);
  }

  /** Idempotency-Keys received more than once: the same attempt sent twice. */
  duplicateKeys(): string[] {
    const seen = new Map<string, number>();
    for (const r of this.requests) seen.set(r.key, (seen.get(r.key) ?? 0) + 1);
    return [...seen].filter(([, n]) => n > 1).map(([k]) => k);
  }

  /** Answer every request held with 'hold' that `filter` picks (those whose sender has gone are only forgotten). */
  release(filter: (r: ReceivedRequest) => boolean = () => true): number {
    let n = 0;
    for (const [r, answer] of [...this.held]) {
      if (!filter(r)) continue;
      this.held.delete(r);
      answer();
      n++;
    }
    return n;
  }

  async close(): Promise<void> {
    this.held.clear();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const key = String(req.headers['idempotency-key'] ?? '');
    const colon = key.lastIndexOf(':');
    const rec: ReceivedRequest = {
      seq: this.requests.length,
      method: req.method ?? '',
      headers: req.headers,
      key,
      taskId: colon > 0 ? key.slice(0, colon) : key,
      attempt: colon > 0 ? Number(key.slice(colon + 1)) : NaN,
      metadata: {},
      fields: {},
      files: {},
      bodyBytes: 0,
      arrivedAt: Date.now(),
    };
    this.requests.push(rec);
    // 'close' on the response before it finished writing means the client dropped the connection.
    res.on('close', () => {
      if (!res.writableFinished && rec.abortedAt === undefined) {
        rec.abortedAt = Date.now();
        this.held.delete(rec);
      }
    });
    const answer = (b: Exclude<Behaviour, 'hold' | 'hang'>) => {
      if (rec.abortedAt !== undefined || res.writableEnded) return;
      rec.answeredAt = Date.now();
      rec.status = b.status;
      if (typeof b.body === 'string') {
        res.writeHead(b.status, b.headers ?? {}).end(b.body);
        return;
      }
      const body =
        b.body ??
        (b.status >= 200 && b.status < 300
          ? { postId: `post-${rec.key}`, url: `https://hook.test/${rec.taskId}/${rec.attempt}` }
          : { error: `answered ${b.status} by the test receiver` });
      res.writeHead(b.status, { 'Content-Type': 'application/json', ...b.headers }).end(JSON.stringify(body));
    };
    req.on('error', () => undefined);
    const isMultipart = String(req.headers['content-type'] ?? '').startsWith('multipart/');
    (isMultipart ? readUpload(req, rec, this.keepFileData) : readRaw(req, rec)).then(
      () => {
        rec.bodyAt = Date.now();
        try {
          rec.metadata = JSON.parse(rec.fields.metadata ?? '') as Partial<WebhookMetadata>;
          rec.accountId = rec.metadata.accountId;
          rec.title = rec.metadata.title;
        } catch {
          // The metadata is only informative here; the key identifies the task.
        }
        const b = this.behaviour(rec);
        rec.behaviour = b;
        if (b === 'hang') return;
        if (b === 'hold') {
          this.held.set(rec, () => answer({ status: 200 }));
          return;
        }
        if (b.afterMs) setTimeout(() => answer(b), b.afterMs);
        else answer(b);
      },
      () => {
        if (rec.abortedAt === undefined && !res.headersSent) res.writeHead(400).end('bad multipart');
      },
    );
  }
}

/** Read a body that is not multipart whole (small: an event's JSON) into `into.body`. */
function readRaw(req: http.IncomingMessage, into: Pick<ReceivedRequest, 'body' | 'bodyBytes'>): Promise<void> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => {
      into.bodyBytes += chunk.length;
      chunks.push(chunk);
    });
    req.on('end', () => {
      into.body = Buffer.concat(chunks).toString('utf8');
      resolve();
    });
    req.on('error', reject);
  });
}

/**
 * Stream a multipart body through busboy into `into`: fields, file parts (their bytes counted, and kept only when
 * `keepFileData`) and the raw body's size. Resolves when busboy has read the whole body.
 */
export function readUpload(
  req: http.IncomingMessage,
  into: Pick<ReceivedRequest, 'fields' | 'files' | 'bodyBytes'>,
  keepFileData: boolean,
): Promise<void> {
  return new Promise((resolve, reject) => {
    req.on('data', (chunk: Buffer) => (into.bodyBytes += chunk.length));
    const bb = busboy({ headers: req.headers });
    bb.on('field', (name, value) => (into.fields[name] = value));
    bb.on('file', (name, stream, info) => {
      const file: ReceivedFile = { filename: info.filename ?? '', mimeType: info.mimeType, size: 0 };
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => {
        file.size += chunk.length;
        if (keepFileData) chunks.push(chunk);
      });
      stream.on('end', () => {
        if (keepFileData) file.data = Buffer.concat(chunks);
        into.files[name] = file;
      });
    });
    bb.on('close', () => resolve());
    bb.on('error', reject);
    req.on('error', reject);
    req.pipe(bb);
  });
}
