/**
 * The CLI's one way to the HTTP API: JSON over fetch, `Authorization: Bearer <token>` on every request, and every
 * failure turned into a CliError with the right exit code. A POST is sent once and never retried here: a second send
 * could publish twice.
 */
import { ApiResponseError, CliError, EXIT } from './errors';
import type { CliConfig } from './config';

export type Query = Record<string, string | number | undefined>;

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  headers?: Record<string, string>;
  /** Default 30 s for reads; writes wait longer, as a batch of many items takes a while to validate and start. */
  timeoutMs?: number;
}

/** The answer of a successful request: its status (200 and 202 mean different things) and its JSON body. */
export interface ApiAnswer<T> {
  status: number;
  body: T;
}

export class ApiClient {
  constructor(readonly config: CliConfig) {}

  async get<T>(path: string, query?: Query): Promise<T> {
    return (await this.request<T>('GET', path, { query })).body;
  }

  async post<T>(path: string, body: unknown = {}, opts: Omit<RequestOptions, 'body'> = {}): Promise<ApiAnswer<T>> {
    return this.request<T>('POST', path, { timeoutMs: 120_000, ...opts, body });
  }

  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<ApiAnswer<T>> {
    const url = new URL(this.config.url + '/api/v1' + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { accept: 'application/json', ...opts.headers };
    if (this.config.token) headers.authorization = `Bearer ${this.config.token}`;
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    const timeoutMs = opts.timeoutMs ?? 30_000;

    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      throw this.networkError(method, url, err, timeoutMs);
    }
    const text = await res.text().catch(() => '');
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = undefined;
    }
    if (res.ok) {
      if (json === undefined)
        throw new CliError(`${method} ${url.pathname}: the API answered ${res.status} with no JSON`, EXIT.api);
      return { status: res.status, body: json as T };
    }
    throw this.httpError(method, url, res, json, text);
  }

  private networkError(method: string, url: URL, err: unknown, timeoutMs: number): CliError {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    if (e.name === 'TimeoutError') {
      const lines =
        method === 'GET'
          ? []
          : ['The request may still have been accepted: check with `pubflow tasks` before sending it again.'];
      return new CliError(
        `${method} ${url.pathname}: no answer from ${this.config.url} within ${timeoutMs / 1000} s`,
        EXIT.api,
        lines,
      );
    }
    const why = e.cause?.code ?? e.cause?.message ?? e.message;
    return new CliError(`cannot reach the pubflow API at ${this.config.url} (${why})`, EXIT.api, [
      'Is it running (`make up`)? Set PUBFLOW_URL if it listens elsewhere.',
    ]);
  }

  private httpError(method: string, url: URL, res: Response, json: unknown, text: string): ApiResponseError {
    const envelope = (json as { error?: { code?: unknown; message?: unknown; details?: unknown } } | null)?.error;
    const code = typeof envelope?.code === 'string' ? envelope.code : `http_${res.status}`;
    const message =
      typeof envelope?.message === 'string' ? envelope.message : text.trim().slice(0, 300) || res.statusText;
    const details = envelope?.details ?? null;
    const where = `${method} ${url.pathname}`;
    const { tokenSource } = this.config;
    if (res.status === 401)
      return new ApiResponseError(
        401,
        code,
        `${where}: the API refused the token (401: ${message})`,
        details,
        EXIT.api,
        [
          `Token used: ${tokenSource}.`,
          'Set PUBFLOW_TOKEN to a valid key (`pubflow keys create --name NAME --role ROLE` makes one).',
        ],
      );
    if (res.status === 403) {
      const d = (details ?? {}) as { required?: unknown; role?: unknown };
      const need = typeof d.required === 'string' ? ` needs role ${d.required}` : ' is not allowed';
      const has = typeof d.role === 'string' ? `; the token's role is ${d.role}` : '';
      return new ApiResponseError(403, code, `${where}${need}${has} (403)`, details, EXIT.api, [
        `Token used: ${tokenSource}.`,
      ]);
    }
    if (res.status === 429) {
      const after = res.headers.get('retry-after');
      return new ApiResponseError(
        429,
        code,
        `${where}: rate limited (429)${after ? `; retry after ${after} s` : ''}`,
        details,
        EXIT.api,
      );
    }
    if (res.status >= 500)
      return new ApiResponseError(
        res.status,
        code,
        `${where}: the API failed (${res.status}: ${message})`,
        details,
        EXIT.api,
      );
    return new ApiResponseError(res.status, code, message, details, EXIT.input);
  }
}
