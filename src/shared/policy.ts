/**
 * Per-task policy, resolved from configuration by the API when the task is submitted and carried in the
 * workflow input, so the workflow stays deterministic and a config change never rewrites a running history.
 */
export interface PublishPolicy {
  /** startToCloseTimeout of one upload attempt (configurable per platform). */
  uploadTimeoutMs: number;
  /** A dead worker is noticed within this. */
  heartbeatTimeoutMs: number;
  /** An undecided review closes as discarded after this. */
  reviewTtlMs: number;
  /** Automatic retries for RateLimited / NotSent only (nothing can have been published). */
  autoRetry: { maxAttempts: number; initialDelayMs: number; maxDelayMs: number };
  /**
   * Queue limits of the task's account and platform (absent: one upload at a time on the account, nothing more).
   * Resolved with the rest of the policy, so the gates see the same limits on every replay.
   */
  limits?: QueueLimits;
  /**
   * While Redis is down, the longest wait between a task's projection attempts (protocol 2; default 5 minutes): a
   * bound on how late the document catches up when Redis returns, and on the history an outage adds.
   */
  projectionRetryMaxMs?: number;
}

export const DEFAULT_POLICY: PublishPolicy = {
  uploadTimeoutMs: 30 * 60_000,
  heartbeatTimeoutMs: 30_000,
  reviewTtlMs: 7 * 24 * 3600_000,
  autoRetry: { maxAttempts: 3, initialDelayMs: 30_000, maxDelayMs: 15 * 60_000 },
};

/**
 * Publish-rate limits of one account, as written in the accounts file (`settings.rateLimits`) and, as defaults per
 * platform, in PUBFLOW_PLATFORM_LIMITS.
 */
export interface RateLimits {
  /** At least this long between the end of one upload on the account and the start of the next. */
  minIntervalSeconds?: number;
  /** At most `count` uploads start on the account in any rolling window of `windowSeconds`. */
  maxPerWindow?: { count: number; windowSeconds: number };
}

/** Per-platform defaults (PUBFLOW_PLATFORM_LIMITS): the account defaults, plus the platform-wide concurrency. */
export interface PlatformLimits extends RateLimits {
  /** At most this many uploads run at once on the platform, across every worker of the deployment. */
  maxConcurrent?: number;
}

/** The limits one task is held to (milliseconds; absent = unlimited). */
export interface QueueLimits {
  minIntervalMs?: number;
  maxPerWindow?: { count: number; windowMs: number };
  platformMaxConcurrent?: number;
}

/** A platform's defaults (PUBFLOW_PLATFORM_LIMITS), as carried in the policy. */
export function platformQueueLimits(platform: PlatformLimits | undefined): QueueLimits {
  return withAccountLimits(
    platform?.maxConcurrent !== undefined ? { platformMaxConcurrent: platform.maxConcurrent } : {},
    platform,
  );
}

/** The account's own `settings.rateLimits` win over the platform's defaults, field by field. */
export function withAccountLimits(base: QueueLimits, account: RateLimits | undefined): QueueLimits {
  const out: QueueLimits = { ...base };
  if (account?.minIntervalSeconds !== undefined) {
    if (account.minIntervalSeconds > 0) out.minIntervalMs = Math.round(account.minIntervalSeconds * 1000);
    else delete out.minIntervalMs;
  }
  if (account?.maxPerWindow)
    out.maxPerWindow = {
      count: account.maxPerWindow.count,
      windowMs: Math.round(account.maxPerWindow.windowSeconds * 1000),
    };
  return out;
}
