/**
 * Per-key request rate limit: a token bucket per principal name, in memory, in this API process.
 *
 * Each bucket holds up to `burst` requests and refills at `perSecond`. With several API processes behind a load
 * balancer each has its own buckets, so a key's effective limit is the per-process limit times the number of
 * processes (docs/security.md). Buckets are keyed by key name, a set bounded by the keys file.
 */
export interface RateLimit {
  /** Sustained requests per second per key. */
  perSecond: number;
  /** Requests a key may make at once after being idle. */
  burst: number;
}

export type RateDecision = { allowed: true; remaining: number } | { allowed: false; retryAfterSeconds: number };

export class TokenBucketLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    readonly limit: RateLimit,
    private readonly now: () => number = Date.now,
  ) {
    if (!(limit.perSecond > 0) || !(limit.burst >= 1)) throw new Error('rate limit: perSecond > 0 and burst >= 1');
  }

  /** Takes one request from `key`'s bucket, or says how many whole seconds until one is there. */
  take(key: string): RateDecision {
    const t = this.now();
    const b = this.buckets.get(key) ?? { tokens: this.limit.burst, at: t };
    b.tokens = Math.min(this.limit.burst, b.tokens + (Math.max(0, t - b.at) / 1000) * this.limit.perSecond);
    b.at = t;
    this.buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { allowed: true, remaining: Math.floor(b.tokens) };
    }
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - b.tokens) / this.limit.perSecond)) };
  }
}

/**
 * "20/s", "600/m", "1000/h" (requests per unit), or "off". Returns requests per second, or null for off.
 */
export function parseRate(value: string): number | null {
  const v = value.trim().toLowerCase();
  if (v === 'off' || v === '0') return null;
  const m = /^(\d+(?:\.\d+)?)\s*\/\s*(s|sec|second|m|min|minute|h|hour)$/.exec(v);
  if (!m) throw new Error(`not a rate: "${value}" (use e.g. 20/s, 600/m, 1000/h, or off)`);
  const n = Number(m[1]);
  if (!(n > 0)) throw new Error(`not a rate: "${value}" (must be above 0, or off)`);
  const unit = m[2]!.charAt(0);
  return n / ({ s: 1, m: 60, h: 3600 } as Record<string, number>)[unit]!;
}
