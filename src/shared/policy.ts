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
}

export const DEFAULT_POLICY: PublishPolicy = {
  uploadTimeoutMs: 30 * 60_000,
  heartbeatTimeoutMs: 30_000,
  reviewTtlMs: 7 * 24 * 3600_000,
  autoRetry: { maxAttempts: 3, initialDelayMs: 30_000, maxDelayMs: 15 * 60_000 },
};
