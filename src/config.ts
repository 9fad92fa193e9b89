/**
 * Configuration: every environment variable pubflow reads, parsed and validated once at start-up.
 * The README's configuration table mirrors this file.
 */
import path from 'node:path';
import ms from 'ms';
import { z } from 'zod';
import { parseRate, type RateLimit } from './auth/rate-limit';
import { loadRedisTarget, loadTemporalTarget, type RedisTarget, type TemporalTarget } from './connections';
import { LOG_LEVELS, type LogLevel } from './log';
import { PlatformLimitsSchema } from './platforms/accounts';
import { DEFAULT_POLICY, platformQueueLimits, type PlatformLimits, type PublishPolicy } from './shared/policy';
import { DEFAULT_TASK_QUEUE } from './shared/task-queues';

/**
 * A duration as `ms` reads it ("500ms", "30s", "10m", "2h", "7d", "1.5h", "5 minutes") or plain milliseconds, in
 * milliseconds. Negative and unparsable values are refused.
 */
export function parseDuration(value: string): number {
  const text = value.trim();
  const n = text === '' ? undefined : (ms(text as ms.StringValue) as number | undefined);
  if (n === undefined || !Number.isFinite(n) || n < 0)
    throw new Error(`not a duration: "${value}" (use e.g. 500ms, 30s, 10m, 2h, 7d)`);
  return Math.round(n);
}

const duration = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((v, ctx) => {
      try {
        return parseDuration(v);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message });
        return z.NEVER;
      }
    });

const int = (fallback: number, min: number, max: number) => z.coerce.number().int().min(min).max(max).default(fallback);

const EnvSchema = z.object({
  // TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TLS_*, TEMPORAL_API_KEY, TEMPORAL_PROFILE: src/connections.ts.
  PUBFLOW_TASK_QUEUE: z.string().default(DEFAULT_TASK_QUEUE),
  REDIS_URL: z.string().default('redis://127.0.0.1:6379/0'),
  PUBFLOW_API_PORT: int(3000, 0, 65535),
  // --- API access (docs/security.md): listener, keys file, per-key rate limit ---
  /** Loopback by default; any other address needs PUBFLOW_API_KEYS_FILE (assertSafeListen). */
  PUBFLOW_API_HOST: z.string().default('127.0.0.1'),
  /** API keys file, JSON or YAML: [{name, role, sha256}]. Unset: no keys, loopback only. */
  PUBFLOW_API_KEYS_FILE: z.string().optional(),
  /** Sustained requests per API key, per API process: "20/s", "600/m", "1000/h", or "off". */
  PUBFLOW_API_RATE_LIMIT: z
    .string()
    .default('20/s')
    .transform((v, ctx) => {
      try {
        return parseRate(v);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message });
        return z.NEVER;
      }
    }),
  /** Requests a key may make at once after being idle. */
  PUBFLOW_API_RATE_BURST: int(40, 1, 1_000_000),
  // --- end of API access ---
  PUBFLOW_ACCOUNTS_FILE: z.string().optional(),
  PUBFLOW_MEDIA_ROOT: z.string().default('./media'),
  PUBFLOW_PUBLISHED_DIR: z.string().default('./data/published'),
  PUBFLOW_WORKER_CONCURRENCY: int(3, 1, 1000),
  /** Workflow tasks one worker process runs at once (its main queue's slots); see Config.workflowTaskSlots. */
  PUBFLOW_WORKFLOW_TASK_SLOTS: int(40, 2, 1000),
  /** Workflow runs one worker process keeps in memory between their tasks; see Config.workflowCacheSize. */
  // Empty is unset (a compose file's `${PUBFLOW_WORKFLOW_CACHE:-}`), not 0.
  PUBFLOW_WORKFLOW_CACHE: z.preprocess(
    (v) => (typeof v === 'string' && v.trim() === '' ? undefined : v),
    z.coerce.number().int().min(2).max(1_000_000).optional(),
  ),
  /** The worker's Prometheus endpoint (the SDK's metrics and pubflow's); port 0 turns it off. */
  PUBFLOW_WORKER_METRICS_HOST: z.string().default('127.0.0.1'),
  PUBFLOW_WORKER_METRICS_PORT: int(9464, 0, 65535),
  PUBFLOW_UPLOAD_TIMEOUT: duration('30m'),
  /** JSON object of per-platform upload timeouts, e.g. {"webhook":"10m","local":"2m"}. */
  PUBFLOW_UPLOAD_TIMEOUTS: z.string().default('{}'),
  PUBFLOW_HEARTBEAT_TIMEOUT: duration('30s'),
  PUBFLOW_REVIEW_TTL: duration('7d'),
  PUBFLOW_AUTO_RETRY_MAX: int(3, 0, 100),
  PUBFLOW_AUTO_RETRY_INITIAL: duration('30s'),
  PUBFLOW_AUTO_RETRY_MAX_DELAY: duration('15m'),
  PUBFLOW_STATUS_TTL: duration('7d'),
  PUBFLOW_SHUTDOWN_GRACE: duration('30s'),
  PUBFLOW_PRUNE_INTERVAL: duration('1h'),
  PUBFLOW_SCHEDULE_HORIZON: duration('90d'),
  /**
   * JSON object of per-platform queue limits: defaults for each account on the platform (`minIntervalSeconds`,
   * `maxPerWindow: {count, windowSeconds}`, overridden by the account's `settings.rateLimits`) and the platform-wide
   * `maxConcurrent`, e.g. {"webhook":{"minIntervalSeconds":0,"maxConcurrent":5}}.
   */
  PUBFLOW_PLATFORM_LIMITS: z.string().default('{}'),
  /** Event webhook subscriptions (src/events/subscriptions.ts); unset: no events. */
  PUBFLOW_EVENTS_FILE: z.string().optional(),
  PUBFLOW_EVENTS_RETRY_INITIAL: duration('10s'),
  PUBFLOW_EVENTS_RETRY_MAX_INTERVAL: duration('1h'),
  PUBFLOW_EVENTS_GIVE_UP_AFTER: duration('24h'),
  PUBFLOW_LOG_LEVEL: z
    .preprocess((v) => (typeof v === 'string' ? v.trim().toLowerCase() : v), z.enum(LOG_LEVELS))
    .default('info'),
  // --- traces (src/tracing): off unless an OTLP endpoint is set ---
  OTEL_EXPORTER_OTLP_ENDPOINT: z
    .string()
    .optional()
    .refine((v) => !v?.trim() || /^https?:\/\/[^\s]+$/.test(v.trim()), 'must be an http:// or https:// URL'),
  OTEL_EXPORTER_OTLP_PROTOCOL: z.enum(['http/protobuf', 'http/json']).default('http/protobuf'),
  OTEL_SERVICE_NAME: z.string().optional(),
});

export type RawEnv = z.input<typeof EnvSchema>;

export interface Config {
  temporal: { address: string; namespace: string; taskQueue: string };
  /** How to connect to Temporal: address, TLS, API key, profile (src/connections.ts). */
  temporalTarget: TemporalTarget;
  /** REDIS_URL as given (or the default); `redis` is what to connect to, a URL or Sentinel. */
  redisUrl: string;
  redis: RedisTarget;
  /** `keysFile` unset: no API keys (loopback only). `rateLimit` null: off. */
  api: { host: string; port: number; keysFile?: string; rateLimit: RateLimit | null };
  accountsFile?: string;
  mediaRoot: string;
  publishedDir: string;
  workerConcurrency: number;
  /**
   * PUBFLOW_WORKFLOW_TASK_SLOTS: workflow tasks a worker process takes at once. The process runs them on one workflow
   * thread, so past a few a taken task only waits in the process, where Temporal's task priorities no longer apply.
   */
  workflowTaskSlots: number;
  /**
   * PUBFLOW_WORKFLOW_CACHE: open workflow runs a worker process keeps in memory (the SDK's sticky cache,
   * `maxCachedWorkflows`); unset, the SDK's default from the heap limit (about 2,300 runs for Node's default heap
   * here). Each cached run costs memory: with thousands of tasks waiting for their accounts, a worker's RSS grows with
   * the cache (1.7 GiB at the end of 10,000 singles, docs/benchmarks.md). A run not in the cache is replayed from its
   * history at its next workflow task: less memory, more CPU. Not below the workflow-task slots (the SDK would lower
   * the slots to it).
   */
  workflowCacheSize?: number;
  /** The worker's metrics endpoint; port 0: none. */
  workerMetrics: { host: string; port: number };
  /** PUBFLOW_LOG_LEVEL (createLogger reads the same variable). */
  logLevel: LogLevel;
  /** OpenTelemetry traces over OTLP/HTTP; null (OTEL_EXPORTER_OTLP_ENDPOINT unset): no tracing at all. */
  tracing: TracingConfig | null;
  statusTtlSeconds: number;
  shutdownGraceMs: number;
  pruneIntervalMs: number;
  /** A publishAt further ahead than this is refused. */
  scheduleHorizonMs: number;
  /** Event webhooks: the subscriptions file (unset: none) and how deliveries are retried. */
  events: {
    file?: string;
    retry: { initialIntervalMs: number; maximumIntervalMs: number; giveUpAfterMs: number };
  };
  /** Queue limits per platform (PUBFLOW_PLATFORM_LIMITS). */
  platformLimits: Record<string, PlatformLimits>;
  /**
   * The policy for a task on this platform. Its queue limits are the platform's (PUBFLOW_PLATFORM_LIMITS); an
   * account's own `settings.rateLimits` are applied over them when the task joins the account's queue.
   */
  policyFor(platform: string): PublishPolicy;
}

export interface TracingConfig {
  /** Where spans go: OTEL_EXPORTER_OTLP_ENDPOINT plus `/v1/traces`. */
  tracesUrl: string;
  protocol: 'http/protobuf' | 'http/json';
  /** OTEL_SERVICE_NAME; unset: `pubflow-api`, `pubflow-worker`. */
  serviceName?: string;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new Error(`invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  if (e.PUBFLOW_WORKFLOW_CACHE !== undefined && e.PUBFLOW_WORKFLOW_CACHE < e.PUBFLOW_WORKFLOW_TASK_SLOTS)
    throw new Error(
      `invalid configuration:\n  PUBFLOW_WORKFLOW_CACHE: ${e.PUBFLOW_WORKFLOW_CACHE} is below PUBFLOW_WORKFLOW_TASK_SLOTS (${e.PUBFLOW_WORKFLOW_TASK_SLOTS}); a worker cannot run more workflow tasks at once than it caches runs`,
    );
  let target: TemporalTarget;
  let redis: RedisTarget;
  try {
    target = loadTemporalTarget(env);
    redis = loadRedisTarget(env);
  } catch (err) {
    throw new Error(`invalid configuration:\n  ${(err as Error).message}`);
  }
  let perPlatform: Record<string, number>;
  try {
    const raw = JSON.parse(e.PUBFLOW_UPLOAD_TIMEOUTS) as unknown;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error('must be a JSON object');
    perPlatform = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, parseDuration(String(v))]));
  } catch (err) {
    throw new Error(`invalid configuration:\n  PUBFLOW_UPLOAD_TIMEOUTS: ${(err as Error).message}`);
  }
  let platformLimits: Record<string, PlatformLimits>;
  try {
    const parsedLimits = z
      .record(z.string(), PlatformLimitsSchema)
      .safeParse(JSON.parse(e.PUBFLOW_PLATFORM_LIMITS) as unknown);
    if (!parsedLimits.success)
      throw new Error(
        parsedLimits.error.issues.map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`).join('; '),
      );
    platformLimits = parsedLimits.data;
  } catch (err) {
    throw new Error(`invalid configuration:\n  PUBFLOW_PLATFORM_LIMITS: ${(err as Error).message}`);
  }
  return {
    temporal: { address: target.address, namespace: target.namespace, taskQueue: e.PUBFLOW_TASK_QUEUE },
    temporalTarget: target,
    redisUrl: e.REDIS_URL,
    redis,
    api: {
      host: e.PUBFLOW_API_HOST,
      port: e.PUBFLOW_API_PORT,
      keysFile: e.PUBFLOW_API_KEYS_FILE || undefined,
      rateLimit:
        e.PUBFLOW_API_RATE_LIMIT === null
          ? null
          : { perSecond: e.PUBFLOW_API_RATE_LIMIT, burst: e.PUBFLOW_API_RATE_BURST },
    },
    accountsFile: e.PUBFLOW_ACCOUNTS_FILE || undefined,
    mediaRoot: path.resolve(e.PUBFLOW_MEDIA_ROOT),
    publishedDir: path.resolve(e.PUBFLOW_PUBLISHED_DIR),
    workerConcurrency: e.PUBFLOW_WORKER_CONCURRENCY,
    workflowTaskSlots: e.PUBFLOW_WORKFLOW_TASK_SLOTS,
    workflowCacheSize: e.PUBFLOW_WORKFLOW_CACHE,
    workerMetrics: { host: e.PUBFLOW_WORKER_METRICS_HOST, port: e.PUBFLOW_WORKER_METRICS_PORT },
    logLevel: e.PUBFLOW_LOG_LEVEL,
    tracing: e.OTEL_EXPORTER_OTLP_ENDPOINT?.trim()
      ? {
          tracesUrl: `${e.OTEL_EXPORTER_OTLP_ENDPOINT.trim().replace(/\/+$/, '')}/v1/traces`,
          protocol: e.OTEL_EXPORTER_OTLP_PROTOCOL,
          serviceName: e.OTEL_SERVICE_NAME?.trim() || undefined,
        }
      : null,
    statusTtlSeconds: Math.round(e.PUBFLOW_STATUS_TTL / 1000),
    shutdownGraceMs: e.PUBFLOW_SHUTDOWN_GRACE,
    pruneIntervalMs: e.PUBFLOW_PRUNE_INTERVAL,
    scheduleHorizonMs: e.PUBFLOW_SCHEDULE_HORIZON,
    events: {
      file: e.PUBFLOW_EVENTS_FILE || undefined,
      retry: {
        initialIntervalMs: Math.max(1, e.PUBFLOW_EVENTS_RETRY_INITIAL),
        maximumIntervalMs: Math.max(1, e.PUBFLOW_EVENTS_RETRY_MAX_INTERVAL),
        giveUpAfterMs: Math.max(1000, e.PUBFLOW_EVENTS_GIVE_UP_AFTER),
      },
    },
    platformLimits,
    policyFor: (platform) => ({
      ...DEFAULT_POLICY,
      uploadTimeoutMs: perPlatform[platform] ?? e.PUBFLOW_UPLOAD_TIMEOUT,
      heartbeatTimeoutMs: e.PUBFLOW_HEARTBEAT_TIMEOUT,
      reviewTtlMs: e.PUBFLOW_REVIEW_TTL,
      autoRetry: {
        maxAttempts: e.PUBFLOW_AUTO_RETRY_MAX,
        initialDelayMs: e.PUBFLOW_AUTO_RETRY_INITIAL,
        maxDelayMs: e.PUBFLOW_AUTO_RETRY_MAX_DELAY,
      },
      limits: platformQueueLimits(platformLimits[platform]),
    }),
  };
}
