import type { ErrorKind, Progress, PublishRequest, PublishResult } from '../shared/types';

/** A credential value in the accounts file: literal, from an env var, or from a file. */
export type CredentialValue = string | { env: string } | { file: string };

/** An account as configured in PUBFLOW_ACCOUNTS_FILE. Credentials are resolved only inside activities. */
export interface AccountConfig {
  id: string;
  platform: string;
  displayName?: string;
  settings: Record<string, unknown>;
  credentials?: Record<string, unknown>;
}

/** An account with its credentials resolved to plain values (never leaves the activity). */
export interface ResolvedAccount extends AccountConfig {
  credentials: Record<string, unknown>;
}

/** What a driver is given for one publish attempt. */
export interface PublishContext {
  taskId: string;
  /** 1 for the first attempt; increases with every retry (automatic or human). */
  attempt: number;
  request: PublishRequest;
  account: ResolvedAccount;
  /** Fires when the task is cancelled (or the worker shuts down); the driver must stop at once. */
  signal: AbortSignal;
  /** Report progress; cheap to call often (the caller throttles). */
  progress: (p: Progress) => void;
}

/** Returned on success; at least one of postId or url must be set, or the publish counts as failed. */
export interface DriverResult extends PublishResult {
  raw?: unknown;
}

/** One implementation per platform, looked up by `platform` name. */
export interface PlatformDriver {
  readonly platform: string;
  publish(ctx: PublishContext): Promise<DriverResult>;
}

/**
 * The typed failure every driver throws. `kind` decides what happens next:
 * only RateLimited and NotSent may be retried automatically (nothing was published);
 * everything else goes to a person.
 */
export class PublishError extends Error {
  override readonly name: string = 'PublishError';
  constructor(
    readonly kind: ErrorKind,
    message: string,
    readonly options: { retryAfterSeconds?: number; evidence?: string; cause?: unknown } = {},
  ) {
    super(message, options.cause !== undefined ? { cause: options.cause } : undefined);
  }
}

export const rateLimited = (message: string, retryAfterSeconds?: number) =>
  new PublishError('RateLimited', message, { retryAfterSeconds });
export const notSent = (message: string, cause?: unknown) => new PublishError('NotSent', message, { cause });
export const authExpired = (message: string) => new PublishError('AuthExpired', message);
export const verificationRequired = (message: string, evidence?: string) =>
  new PublishError('VerificationRequired', message, { evidence });
export const contentRejected = (message: string) => new PublishError('ContentRejected', message);
export const unconfirmed = (message: string, cause?: unknown) => new PublishError('Unconfirmed', message, { cause });

/** The error a driver throws when its signal fires: `name` is 'AbortError', so the caller can tell cancel from failure. */
export function abortError(signal: AbortSignal): Error {
  const err = new Error('publish cancelled', { cause: signal.reason });
  err.name = 'AbortError';
  return err;
}

/** A system error's code (ECONNREFUSED, ENOENT, ...), else its message. */
export function errorCode(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e?.code ?? e?.message ?? String(err);
}
