import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import busboy from 'busboy';
import ts from 'typescript';
import { PublishError, type PublishContext } from '../../src/platforms/types';
import { WebhookDriver } from '../../src/platforms/webhook';
import type { Progress, PublishRequest } from '../../src/shared/types';

const SECRET = 'Bearer s3cret-token-xyz';

let dir: string;
let videoPath: string;
let coverPath: string;
let video: Buffer;
let cover: Buffer;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pubflow-webhook-'));
  videoPath = path.join(dir, 'clip.mp4');
  coverPath = path.join(dir, 'cover.jpg');
  video = randomBytes(512 * 1024 + 3);
  cover = randomBytes(2000);
  writeFileSync(videoPath, video);
  writeFileSync(coverPath, cover);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

// ---- a real receiver on 127.0.0.1 --------------------------------------------------------------------------------

const servers: http.Server[] = [];

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

async function serve(handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/upload`;
}

interface ReceivedFile {
  filename: string;
  mimeType: string;
  size: number;
  data?: Buffer;
}

interface Upload {
  headers: http.IncomingHttpHeaders;
  bodyBytes: number;
  fields: Record<string, string>;
  files: Record<string, ReceivedFile>;
}

/** Parses the multipart body with busboy; file contents are kept only when `keep` (the 1 GiB test just counts). */
function parseUpload(req: http.IncomingMessage, keep = true): Promise<Upload> {
  return new Promise((resolve, reject) => {
    const upload: Upload = { headers: req.headers, bodyBytes: 0, fields: {}, files: {} };
    req.on('data', (chunk: Buffer) => (upload.bodyBytes += chunk.length));
    const bb = busboy({ headers: req.headers });
    bb.on('field', (name, value) => (upload.fields[name] = value));
    bb.on('file', (name, stream, info) => {
      const file: ReceivedFile = { filename: info.filename ?? '', mimeType: info.mimeType, size: 0 };
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => {
        file.size += chunk.length;
        if (keep) chunks.push(chunk);
      });
      stream.on('end', () => {
        if (keep) file.data = Buffer.concat(chunks);
        upload.files[name] = file;
      });
    });
    bb.on('close', () => resolve(upload));
    bb.on('error', reject);
    req.pipe(bb);
  });
}

/** A receiver that reads the whole upload, then answers as told. */
async function answering(
  status: number,
  body: string,
  headers: Record<string, string> = {},
): Promise<{ url: string; uploads: Upload[] }> {
  const uploads: Upload[] = [];
  const url = await serve((req, res) => {
    parseUpload(req).then(
      (upload) => {
        uploads.push(upload);
        res.writeHead(status, headers).end(body);
      },
      () => res.writeHead(400).end('bad multipart'),
    );
  });
  return { url, uploads };
}

async function refusedUrl(): Promise<string> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/upload`;
}

function sparseFile(name: string, bytes: number): string {
  const file = path.join(dir, name);
  writeFileSync(file, '');
  truncateSync(file, bytes);
  return file;
}

// ---- the driver's inputs ------------------------------------------------------------------------------------------

function context(
  url: string,
  overrides: Partial<Omit<PublishContext, 'request'>> & {
    request?: Partial<PublishRequest>;
    settings?: Record<string, unknown>;
  } = {},
) {
  const progress: Progress[] = [];
  const { request, settings, ...rest } = overrides;
  const ctx: PublishContext = {
    taskId: 'task-1',
    attempt: 2,
    account: {
      id: 'brand-a-hook',
      platform: 'webhook',
      settings: { url, ...settings },
      credentials: { headers: { Authorization: SECRET, 'X-Tenant': 'brand-a' } },
    },
    signal: new AbortController().signal,
    progress: (p) => progress.push(p),
    ...rest,
    request: {
      platform: 'webhook',
      accountId: 'brand-a-hook',
      video: { path: videoPath },
      title: 'Hello',
      priority: 5,
      ...request,
    },
  };
  return { ctx, progress };
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

async function publishError(promise: Promise<unknown>): Promise<PublishError> {
  const err = await rejection(promise);
  expect(err).toBeInstanceOf(PublishError);
  return err as PublishError;
}

const driver = new WebhookDriver();

// ---- tests --------------------------------------------------------------------------------------------------------

describe('WebhookDriver: the request', () => {
  test('posts metadata, video and cover as one multipart body with credential headers and an idempotency key', async () => {
    const { url, uploads } = await answering(
      200,
      JSON.stringify({ postId: 'p-1', url: 'https://cms.test/p-1', x: 1 }),
      {
        'Content-Type': 'application/json',
      },
    );
    const { ctx, progress } = context(url, {
      request: {
        cover: { path: coverPath },
        description: 'desc',
        tags: ['a', 'b'],
        options: { visibility: 'private' },
        publishAt: '2030-01-01T00:00:00Z',
      },
    });

    const result = await driver.publish(ctx);

    expect(result).toEqual({
      postId: 'p-1',
      url: 'https://cms.test/p-1',
      raw: { postId: 'p-1', url: 'https://cms.test/p-1', x: 1 },
    });
    expect(uploads).toHaveLength(1);
    const upload = uploads[0]!;
    expect(upload.headers.authorization).toBe(SECRET);
    expect(upload.headers['x-tenant']).toBe('brand-a');
    expect(upload.headers['idempotency-key']).toBe('task-1:2');
    expect(upload.headers['content-type']).toMatch(/^multipart\/form-data; boundary=/);
    // A normal, non-chunked body whose announced length is what arrived.
    expect(upload.headers['transfer-encoding']).toBeUndefined();
    expect(Number(upload.headers['content-length'])).toBe(upload.bodyBytes);
    expect(JSON.parse(upload.fields.metadata!)).toEqual({
      taskId: 'task-1',
      attempt: 2,
      platform: 'webhook',
      accountId: 'brand-a-hook',
      title: 'Hello',
      description: 'desc',
      tags: ['a', 'b'],
      options: { visibility: 'private' },
    });
    expect(upload.files.video).toMatchObject({ filename: 'clip.mp4', mimeType: 'video/mp4', size: video.length });
    expect(upload.files.video!.data!.equals(video)).toBe(true);
    expect(upload.files.cover).toMatchObject({ filename: 'cover.jpg', mimeType: 'image/jpeg', size: cover.length });
    expect(upload.files.cover!.data!.equals(cover)).toBe(true);
    // Progress: bytes written while uploading, then waiting for the answer.
    expect(progress.at(-1)).toEqual({ percent: 100, stage: 'waiting_for_response' });
    const uploading = progress.filter((p) => p.stage === 'uploading').map((p) => p.percent);
    expect(uploading[0]).toBe(0);
    expect(uploading.some((p) => p > 0 && p < 100)).toBe(true);
    expect([...uploading].sort((a, b) => a - b)).toEqual(uploading);
  });

  test('without a cover there is no cover part', async () => {
    const { url, uploads } = await answering(201, JSON.stringify({ url: 'https://cms.test/only-url' }));

    const result = await driver.publish(context(url).ctx);

    expect(result).toEqual({ url: 'https://cms.test/only-url', raw: { url: 'https://cms.test/only-url' } });
    expect(Object.keys(uploads[0]!.files)).toEqual(['video']);
  });

  test('a missing video is ContentRejected and nothing reaches the receiver', async () => {
    const { url, uploads } = await answering(200, '{"postId":"x"}');

    const err = await publishError(
      driver.publish(context(url, { request: { video: { path: path.join(dir, 'nope.mp4') } } }).ctx),
    );

    expect(err.kind).toBe('ContentRejected');
    expect(uploads).toHaveLength(0);
  });

  test('an account without a usable settings.url is an Internal error', async () => {
    const { ctx } = context('ftp://127.0.0.1/upload');

    expect((await publishError(driver.publish(ctx))).kind).toBe('Internal');
  });
});

describe('WebhookDriver: the answer', () => {
  test.each([
    [200, 'OK, published!', 'InvalidResult'],
    [200, '{"status":"ok"}', 'InvalidResult'],
    [200, '[]', 'InvalidResult'],
    [401, '{"error":"token expired"}', 'AuthExpired'],
    [403, 'forbidden', 'AuthExpired'],
    [404, 'no such endpoint', 'ContentRejected'],
    [422, '{"error":"title too long"}', 'ContentRejected'],
    [500, 'internal error', 'Unconfirmed'],
    [503, 'maintenance', 'Unconfirmed'],
  ])('HTTP %i with body %j is %s', async (status, body, kind) => {
    const { url, uploads } = await answering(status, body);

    const err = await publishError(driver.publish(context(url).ctx));

    expect(err.kind).toBe(kind);
    expect(err.message).toContain(String(status));
    expect(uploads).toHaveLength(1);
  });

  test('a rejection quotes a short excerpt of the body', async () => {
    const { url } = await answering(422, `title too long ${'x'.repeat(5000)}`);

    const err = await publishError(driver.publish(context(url).ctx));

    expect(err.message).toContain('title too long');
    expect(err.message.length).toBeLessThan(400);
  });

  test('a credential echoed by the receiver never reaches the error message', async () => {
    const { url } = await answering(400, `bad request; you sent Authorization: ${SECRET} and token s3cret-token-xyz`);

    const err = await publishError(driver.publish(context(url).ctx));

    expect(err.kind).toBe('ContentRejected');
    expect(err.message).toContain('[redacted]');
    expect(err.message).not.toContain('s3cret-token-xyz');
  });

  test('429 is RateLimited with Retry-After in seconds', async () => {
    const { url } = await answering(429, 'slow down', { 'Retry-After': '120' });

    const err = await publishError(driver.publish(context(url).ctx));

    expect(err.kind).toBe('RateLimited');
    expect(err.options.retryAfterSeconds).toBe(120);
  });

  test('429 is RateLimited with Retry-After as an HTTP date', async () => {
    const { url } = await answering(429, 'slow down', { 'Retry-After': new Date(Date.now() + 90_000).toUTCString() });

    const err = await publishError(driver.publish(context(url).ctx));

    expect(err.kind).toBe('RateLimited');
    expect(err.options.retryAfterSeconds).toBeGreaterThanOrEqual(85);
    expect(err.options.retryAfterSeconds).toBeLessThanOrEqual(91);
  });

  test('429 without Retry-After leaves the delay to the caller', async () => {
    const { url } = await answering(429, 'slow down');

    const err = await publishError(driver.publish(context(url).ctx));

    expect(err.kind).toBe('RateLimited');
    expect(err.options.retryAfterSeconds).toBeUndefined();
  });
});

describe('WebhookDriver: failures in transit', () => {
  test('a connection refused is NotSent: nothing left this machine', async () => {
    const err = await publishError(driver.publish(context(await refusedUrl()).ctx));

    expect(err.kind).toBe('NotSent');
    expect(err.message).toContain('ECONNREFUSED');
    expect(err.message).not.toContain('s3cret');
  });

  test('a receiver that reads the body and never answers is Unconfirmed after settings.timeoutMs', async () => {
    let bodyEnded = false;
    const url = await serve((req) => {
      req.resume();
      req.on('end', () => (bodyEnded = true));
    });

    const started = Date.now();
    const err = await publishError(driver.publish(context(url, { settings: { timeoutMs: 300 } }).ctx));

    expect(err.kind).toBe('Unconfirmed');
    expect(bodyEnded).toBe(true);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  test('a connection that breaks after bytes were sent is Unconfirmed', async () => {
    const big = sparseFile('break.mp4', 64 * 1024 * 1024);
    const url = await serve((req) => {
      req.once('data', () => req.socket.destroy());
    });

    const err = await publishError(driver.publish(context(url, { request: { video: { path: big } } }).ctx));

    expect(err.kind).toBe('Unconfirmed');
  });

  test('an abort mid-upload closes the connection at once and rejects with AbortError', async () => {
    const size = 64 * 1024 * 1024;
    const big = sparseFile('abort.mp4', size);
    let received = 0;
    let complete: boolean | undefined;
    let firstBytes!: () => void;
    const gotBytes = new Promise<void>((resolve) => (firstBytes = resolve));
    let closed!: () => void;
    const serverSawClose = new Promise<void>((resolve) => (closed = resolve));
    let held: http.IncomingMessage | undefined;
    const url = await serve((req) => {
      req.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (held) return;
        // Hold the upload back (backpressure), so it is still going when the abort comes.
        held = req;
        req.pause();
        firstBytes();
      });
      req.on('error', () => undefined);
      req.on('close', () => {
        complete = req.complete;
        closed();
      });
    });
    const controller = new AbortController();
    const publishing = rejection(
      driver.publish(context(url, { signal: controller.signal, request: { video: { path: big } } }).ctx),
    );

    await gotBytes;
    controller.abort();
    const err = await publishing;
    // Read on: a paused socket cannot notice that the peer went away.
    held!.resume();
    await serverSawClose;

    expect(err.name).toBe('AbortError');
    expect(err).not.toBeInstanceOf(PublishError);
    expect(complete).toBe(false);
    expect(received).toBeLessThan(size);
  });

  test('an already-aborted signal rejects with AbortError and sends nothing', async () => {
    const { url, uploads } = await answering(200, '{"postId":"x"}');
    const controller = new AbortController();
    controller.abort();

    const err = await rejection(driver.publish(context(url, { signal: controller.signal }).ctx));

    expect(err.name).toBe('AbortError');
    expect(uploads).toHaveLength(0);
  });
});

describe('WebhookDriver: memory', () => {
  let compiled: string;

  beforeAll(() => {
    // The child runs plain JS: transpile the driver (and its runtime import) once, here, rather than loading
    // TypeScript into a 64 MB heap.
    const out = path.join(dir, 'compiled', 'platforms');
    mkdirSync(out, { recursive: true });
    for (const name of ['webhook', 'media-root', 'types']) {
      const source = readFileSync(path.resolve(__dirname, `../../src/platforms/${name}.ts`), 'utf8');
      const { outputText } = ts.transpileModule(source, {
        compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
      });
      writeFileSync(path.join(out, `${name}.js`), outputText);
    }
    compiled = path.join(out, 'webhook.js');
  });

  test('a 1 GiB file streams from a child process with a 64 MB heap, and every byte arrives', async () => {
    const size = 1024 * 1024 * 1024;
    const big = sparseFile('one-gib.mp4', size);
    const uploads: Upload[] = [];
    const url = await serve((req, res) => {
      void parseUpload(req, false).then((upload) => {
        uploads.push(upload);
        res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"postId":"big-1"}');
      });
    });

    const child = spawn(
      process.execPath,
      ['--max-old-space-size=64', path.join(__dirname, 'fixtures', 'webhook-upload-child.js'), compiled, big, url],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const killer = setTimeout(() => child.pid && process.kill(child.pid, 'SIGKILL'), 50_000);
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    clearTimeout(killer);

    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    const report = JSON.parse(stdout) as { result: unknown; maxRssBytes: number };
    expect(report.result).toEqual({ postId: 'big-1', raw: { postId: 'big-1' } });
    expect(uploads).toHaveLength(1);
    expect(uploads[0]!.files.video!.size).toBe(size);
    expect(Number(uploads[0]!.headers['content-length'])).toBe(uploads[0]!.bodyBytes);
    // Buffers live outside the V8 heap, so the heap cap alone would not catch a driver that reads the whole file:
    // the peak resident memory does. This is a check that the file streams, not a memory goal (those are in bench/):
    // a quiet machine peaks near 80 MB; under a loaded `make test` freed buffers stay resident longer, and runs have
    // peaked at 226, 238 and (with a headless browser test beside it) 357 MB. A driver that held the file needs over
    // 1 GiB, so half of that as the bound fails it by a wide margin without failing on load.
    expect(report.maxRssBytes).toBeLessThan(512 * 1024 * 1024);
  }, 60_000);
});
