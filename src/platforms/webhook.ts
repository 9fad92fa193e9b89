/**
 * The webhook driver: one multipart/form-data POST per publish attempt to the account's `settings.url`.
 *
 * It uses node:http directly rather than fetch, to control three things fetch hides:
 * - streaming: files go from disk to the socket with backpressure and a known Content-Length (constant memory);
 * - cancellation: an abort destroys the socket at once, so the receiver sees the connection close;
 * - "was anything sent?": a failure before the connection is established is NotSent (safe to retry);
 *   anything later is Unconfirmed, because the receiver may have published.
 */
import { randomBytes } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import path from 'node:path';
import type { Socket } from 'node:net';
import { pipeline } from 'node:stream';
import { openMedia } from './media-root';
import {
  abortError,
  authExpired,
  contentRejected,
  errorCode,
  notSent,
  PublishError,
  rateLimited,
  unconfirmed,
  type DriverResult,
  type PlatformDriver,
  type PublishContext,
  type ResolvedAccount,
} from './types';

export interface WebhookDriverOptions {
  /** Timeout for the whole request (connect, upload, answer) unless the account sets `settings.timeoutMs`. Default 30 min. */
  defaultTimeoutMs?: number;
  /**
   * PUBFLOW_MEDIA_ROOT: files are opened only inside it, checked again at open time (see media-root.ts).
   * Without it nothing is confined; every process that runs uploads must set it.
   */
  mediaRoot?: string;
}

export const DEFAULT_WEBHOOK_TIMEOUT_MS = 30 * 60_000;

/** Enough for any `{ postId, url }` answer; a larger body is read no further (memory stays bounded). */
const MAX_RESPONSE_BYTES = 1024 * 1024;
const EXCERPT_CHARS = 200;
/** We set these; an account's credential headers must not break the multipart body or the idempotency contract. */
const RESERVED_HEADERS = new Set([
  'content-type',
  'content-length',
  'transfer-encoding',
  'connection',
  'idempotency-key',
]);

const CONTENT_TYPES: Record<string, string> = {
  '.mp4': 'video/mp4',
  '.m4v': 'video/mp4',
  '.mov': 'video/quicktime',
  '.webm': 'video/webm',
  '.mkv': 'video/x-matroska',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
};

interface FilePart {
  field: 'video' | 'cover';
  filePath: string;
  handle: FileHandle;
  size: number;
}

/**
 * POSTs the video (and cover) with a `metadata` JSON part, and maps the answer to a DriverResult or a PublishError.
 * On cancel it rejects with an Error whose name is 'AbortError' (not a PublishError), so the caller can tell a cancel
 * from a failure.
 */
export class WebhookDriver implements PlatformDriver {
  readonly platform = 'webhook';
  private readonly defaultTimeoutMs: number;
  private readonly mediaRoot: string | undefined;

  constructor(options: WebhookDriverOptions = {}) {
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? DEFAULT_WEBHOOK_TIMEOUT_MS;
    this.mediaRoot = options.mediaRoot;
  }

  async publish(ctx: PublishContext): Promise<DriverResult> {
    const { taskId, attempt, request, account, signal } = ctx;
    if (signal.aborted) throw abortError(signal);
    const url = targetUrl(account);
    const timeoutMs = this.timeoutFor(account);
    const extraHeaders = credentialHeaders(account);

    const parts: FilePart[] = [];
    try {
      // Open before connecting: a missing file is the request's fault, and nothing has been sent yet.
      parts.push(await openPart(this.mediaRoot, 'video', request.video.path));
      if (request.cover) parts.push(await openPart(this.mediaRoot, 'cover', request.cover.path));
      if (signal.aborted) throw abortError(signal);

      const metadata = JSON.stringify({
        taskId,
        attempt,
        platform: request.platform,
        accountId: request.accountId,
        title: request.title,
        description: request.description,
        tags: request.tags,
        options: request.options,
      });
      const body = multipartBody(metadata, parts);
      const headers: Record<string, string> = {
        ...extraHeaders,
        'Content-Type': `multipart/form-data; boundary=${body.boundary}`,
        'Content-Length': String(body.length),
        'Idempotency-Key': `${taskId}:${attempt}`,
        Accept: 'application/json',
      };
      return await send({ url, headers, body, timeoutMs, ctx, secrets: secretValues(account.credentials) });
    } finally {
      // The read streams do not own the handles (autoClose: false); closing waits for any read still in flight.
      await Promise.all(parts.map((p) => p.handle.close().catch(() => undefined)));
    }
  }

  private timeoutFor(account: ResolvedAccount): number {
    const t = account.settings.timeoutMs;
    if (t === undefined) return this.defaultTimeoutMs;
    if (typeof t !== 'number' || !Number.isFinite(t) || t <= 0)
      throw new PublishError('Internal', `account "${account.id}": settings.timeoutMs must be a positive number`);
    return t;
  }
}

function targetUrl(account: ResolvedAccount): URL {
  const raw = account.settings.url;
  let url: URL | undefined;
  try {
    url = typeof raw === 'string' ? new URL(raw) : undefined;
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:'))
    throw new PublishError('Internal', `account "${account.id}": settings.url must be an http:// or https:// URL`);
  return url;
}

/** `credentials.headers`, checked here so a bad value fails with its name only (Node's own errors are not ours to word). */
function credentialHeaders(account: ResolvedAccount): Record<string, string> {
  const raw = account.credentials.headers;
  if (raw === undefined) return {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new PublishError('Internal', `account "${account.id}": credentials.headers must be an object`);
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (RESERVED_HEADERS.has(name.toLowerCase())) continue;
    const text = typeof value === 'string' || typeof value === 'number' ? String(value) : undefined;
    try {
      if (text === undefined) throw new Error('not a string');
      http.validateHeaderName(name);
      http.validateHeaderValue(name, text);
    } catch {
      throw new PublishError(
        'Internal',
        `account "${account.id}": credentials.headers["${name}"] is not a valid header`,
      );
    }
    out[name] = text;
  }
  return out;
}

/** Every literal credential, and its words (so "Bearer s3cret" also hides a bare "s3cret" echoed by the receiver). */
function secretValues(credentials: Record<string, unknown>): string[] {
  const out = new Set<string>();
  const walk = (v: unknown) => {
    if (typeof v === 'string') {
      for (const s of [v, ...v.split(/\s+/)]) if (s.length >= 4) out.add(s);
    } else if (typeof v === 'object' && v !== null) Object.values(v).forEach(walk);
  };
  walk(credentials);
  // Longest first, so a secret that contains another is replaced whole.
  return [...out].sort((a, b) => b.length - a.length);
}

/** openMedia confines the open to the media root at this moment, whatever was checked when the task was accepted. */
async function openPart(mediaRoot: string | undefined, field: FilePart['field'], filePath: string): Promise<FilePart> {
  const { handle, size } = await openMedia(mediaRoot, filePath, field);
  return { field, filePath, handle, size };
}

interface MultipartBody {
  boundary: string;
  length: number;
  /** Yields the body; `onFileBytes` sees each file chunk as it is handed to the request. */
  chunks(onFileBytes: (n: number) => void): AsyncGenerator<Buffer>;
}

function multipartBody(metadata: string, parts: FilePart[]): MultipartBody {
  const boundary = `----pubflow${randomBytes(16).toString('hex')}`;
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="metadata"\r\n` +
      `Content-Type: application/json\r\n\r\n${metadata}\r\n`,
  );
  const fileHeads = parts.map((p) => {
    const type = CONTENT_TYPES[path.extname(p.filePath).toLowerCase()] ?? 'application/octet-stream';
    return Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="${p.field}"; filename="${quote(path.basename(p.filePath))}"\r\n` +
        `Content-Type: ${type}\r\n\r\n`,
    );
  });
  const crlf = Buffer.from('\r\n');
  const tail = Buffer.from(`--${boundary}--\r\n`);
  const length =
    head.length + parts.reduce((n, p, i) => n + (fileHeads[i]?.length ?? 0) + p.size + crlf.length, 0) + tail.length;

  async function* chunks(onFileBytes: (n: number) => void): AsyncGenerator<Buffer> {
    yield head;
    for (const [i, p] of parts.entries()) {
      yield fileHeads[i]!;
      let read = 0;
      if (p.size > 0) {
        // Pinned to the size announced in Content-Length; a file that grows meanwhile cannot corrupt the body.
        const stream = p.handle.createReadStream({ start: 0, end: p.size - 1, autoClose: false });
        for await (const chunk of stream as AsyncIterable<Buffer>) {
          read += chunk.length;
          onFileBytes(chunk.length);
          yield chunk;
        }
      }
      if (read !== p.size) throw new Error(`${p.field} file shrank during the upload (${read} of ${p.size} bytes)`);
      yield crlf;
    }
    yield tail;
  }

  return { boundary, length, chunks };
}

/** Quoted-string escaping as browsers do it for multipart filenames (WHATWG HTML). */
function quote(name: string): string {
  return name.replace(/"/g, '%22').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

function send(o: {
  url: URL;
  headers: Record<string, string>;
  body: MultipartBody;
  timeoutMs: number;
  ctx: PublishContext;
  secrets: string[];
}): Promise<DriverResult> {
  const { url, ctx, timeoutMs } = o;
  const { signal } = ctx;
  const origin = url.origin;
  const isHttps = url.protocol === 'https:';

  return new Promise<DriverResult>((resolve, reject) => {
    let req: http.ClientRequest;
    try {
      // agent: false => a fresh connection, so "connected" below really means this request's connection.
      req = (isHttps ? https : http).request(url, { method: 'POST', headers: o.headers, agent: false });
    } catch (err) {
      reject(new PublishError('Internal', `cannot build the request to ${origin}`, { cause: err }));
      return;
    }

    let settled = false;
    // From the moment the connection is up, Node flushes the headers: treat the request as (possibly) received.
    let connected = false;

    const settle = (err: Error | null, result?: DriverResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      req.destroy();
      if (err) reject(err);
      else resolve(result!);
    };
    const failure = (what: string, cause?: unknown): PublishError =>
      connected
        ? unconfirmed(`${what} after the upload to ${origin} started; the post may or may not exist`, cause)
        : notSent(`${what} before anything was sent to ${origin}`, cause);

    const onAbort = () => settle(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(
      () => settle(failure(connected ? `no answer within ${timeoutMs} ms` : `no connection within ${timeoutMs} ms`)),
      timeoutMs,
    );

    req.on('socket', (socket: Socket) => {
      if (isHttps) socket.once('secureConnect', () => (connected = true));
      else if (socket.connecting) socket.once('connect', () => (connected = true));
      else connected = true;
    });
    req.on('error', (err) => settle(failure(`request failed (${errorCode(err)})`, err)));

    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let truncated = false;
      res.on('data', (chunk: Buffer) => {
        if (size + chunk.length <= MAX_RESPONSE_BYTES) {
          chunks.push(chunk);
          size += chunk.length;
        } else truncated = true;
      });
      res.on('end', () => {
        try {
          const account = ctx.account.id;
          settle(
            null,
            interpret(res.statusCode ?? 0, res.headers, Buffer.concat(chunks), truncated, origin, account, o.secrets),
          );
        } catch (err) {
          settle(err as Error);
        }
      });
      res.on('error', (err) => settle(failure(`the answer was cut off (${errorCode(err)})`, err)));
      res.on('close', () => {
        if (!res.complete) settle(failure('the answer was cut off'));
      });
    });

    const total = o.body.length;
    let sent = 0;
    let lastPercent = -1;
    const onFileBytes = (n: number) => {
      sent += n;
      const percent = Math.floor((sent / total) * 100);
      if (percent !== lastPercent) {
        lastPercent = percent;
        ctx.progress({ percent, stage: 'uploading' });
      }
    };
    ctx.progress({ percent: 0, stage: 'uploading' });
    pipeline(o.body.chunks(onFileBytes), req, (err) => {
      if (settled) return;
      if (err) settle(failure(`sending the body failed (${errorCode(err)})`, err));
      else ctx.progress({ percent: 100, stage: 'waiting_for_response' });
    });
  });
}

function interpret(
  status: number,
  headers: IncomingHttpHeaders,
  body: Buffer,
  truncated: boolean,
  origin: string,
  accountId: string,
  secrets: string[],
): DriverResult {
  const excerpt = () => bodyExcerpt(body, secrets);
  if (status >= 200 && status < 300) {
    if (truncated)
      throw new PublishError(
        'InvalidResult',
        `HTTP ${status} from ${origin} with a body over ${MAX_RESPONSE_BYTES} bytes`,
      );
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      throw new PublishError(
        'InvalidResult',
        `HTTP ${status} from ${origin}, but the body is not JSON: "${excerpt()}"`,
      );
    }
    const rec = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
    const postId =
      typeof rec.postId === 'string' && rec.postId !== ''
        ? rec.postId
        : typeof rec.postId === 'number' && Number.isFinite(rec.postId)
          ? String(rec.postId)
          : undefined;
    const postUrl = typeof rec.url === 'string' && rec.url !== '' ? rec.url : undefined;
    // Never a silent success: a 2xx that names no post proves nothing.
    if (postId === undefined && postUrl === undefined)
      throw new PublishError('InvalidResult', `HTTP ${status} from ${origin}, but no postId or url in "${excerpt()}"`);
    return { ...(postId !== undefined && { postId }), ...(postUrl !== undefined && { url: postUrl }), raw: parsed };
  }
  if (status === 429) throw rateLimited(`HTTP 429 from ${origin}: "${excerpt()}"`, retryAfter(headers));
  if (status === 401 || status === 403)
    throw authExpired(`HTTP ${status} from ${origin}: the credentials of account "${accountId}" were refused`);
  if (status >= 400 && status < 500) throw contentRejected(`HTTP ${status} from ${origin}: "${excerpt()}"`);
  // 5xx (and anything unexpected, such as a redirect we cannot replay a streamed body to): the body was sent.
  throw unconfirmed(`HTTP ${status} from ${origin}; the post may or may not exist: "${excerpt()}"`);
}

/** Retry-After as seconds, from delta-seconds or an HTTP date; undefined when absent or unreadable. */
function retryAfter(headers: IncomingHttpHeaders, now = Date.now()): number | undefined {
  const value = headers['retry-after']?.trim();
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return Number(value);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

/** A short, single-line piece of the receiver's answer, with any credential it echoed blanked out. */
function bodyExcerpt(body: Buffer, secrets: string[]): string {
  // Redact the whole (bounded) body before cutting, so half a secret can never survive the cut.
  let text = body.toString('utf8');
  for (const s of secrets) text = text.split(s).join('[redacted]');
  text = text.replace(/\s+/g, ' ').trim();
  return text.length > EXCERPT_CHARS ? `${text.slice(0, EXCERPT_CHARS)}…` : text;
}
