/**
 * A real webhook endpoint on 127.0.0.1 for API tests: it parses each multipart upload with busboy, records it, and
 * answers as the test decides (a JSON status, or never, until the client goes away).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import busboy from 'busboy';

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

export interface ReceivedRequest {
  method: string;
  headers: http.IncomingHttpHeaders;
  idempotencyKey: string | undefined;
  metadata: WebhookMetadata;
  /** Bytes of each file part, by field name. */
  files: Record<string, number>;
  /** How the endpoint answered; 'hang' until the client closed the connection. */
  answered: number | 'hang';
  /** The client closed the connection before an answer was written (the driver aborted). */
  aborted: boolean;
}

/** What the endpoint does with a fully received upload. */
export type Answer = { status: number; body?: unknown } | 'hang';

export class WebhookReceiver {
  readonly requests: ReceivedRequest[] = [];
  /** Decides the answer per request; the default publishes and answers 200 with a postId and url. */
  answer: (req: ReceivedRequest) => Answer = (req) => ({
    status: 200,
    body: {
      postId: `hook-${req.metadata.taskId}-${req.metadata.attempt}`,
      url: `https://cms.test/p/${req.metadata.taskId}`,
    },
  });

  private constructor(
    private readonly server: http.Server,
    readonly url: string,
  ) {}

  static async start(): Promise<WebhookReceiver> {
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const receiver = new WebhookReceiver(server, `http://127.0.0.1:${port}/upload`);
    server.on('request', (req, res) => receiver.handle(req, res));
    return receiver;
  }

  /** Every request for one task, in arrival order. */
  requestsFor(taskId: string): ReceivedRequest[] {
    return this.requests.filter((r) => r.metadata.taskId === taskId);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    parse(req).then(
      ({ fields, files }) => {
        const rec: ReceivedRequest = {
          method: req.method ?? '',
          headers: req.headers,
          idempotencyKey: req.headers['idempotency-key'] as string | undefined,
          metadata: JSON.parse(fields.metadata ?? '{}') as WebhookMetadata,
          files,
          answered: 'hang',
          aborted: false,
        };
        // 'close' on the response before it finished writing means the client dropped the connection.
        res.on('close', () => {
          if (!res.writableFinished) rec.aborted = true;
        });
        this.requests.push(rec);
        const answer = this.answer(rec);
        if (answer === 'hang') return;
        rec.answered = answer.status;
        res.writeHead(answer.status, { 'Content-Type': 'application/json' }).end(JSON.stringify(answer.body ?? {}));
      },
      () => {
        if (!res.headersSent) res.writeHead(400).end('bad multipart');
      },
    );
  }
}

function parse(req: http.IncomingMessage): Promise<{ fields: Record<string, string>; files: Record<string, number> }> {
  return new Promise((resolve, reject) => {
    const fields: Record<string, string> = {};
    const files: Record<string, number> = {};
    const bb = busboy({ headers: req.headers });
    bb.on('field', (name, value) => (fields[name] = value));
    bb.on('file', (name, stream) => {
      files[name] = 0;
      stream.on('data', (chunk: Buffer) => (files[name] = (files[name] ?? 0) + chunk.length));
    });
    bb.on('close', () => resolve({ fields, files }));
    bb.on('error', reject);
    req.on('error', reject);
    req.pipe(bb);
  });
}
