/**
 * How every pubflow process (worker, API, reconcile, setup) reaches Temporal and Redis, in one place.
 *
 * Temporal: the SDK's environment configuration (`@temporalio/envconfig`): a TOML profile file
 * (TEMPORAL_CONFIG_FILE, else ~/.config/temporalio/temporal.toml; TEMPORAL_PROFILE, else "default") overridden by
 * TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS, TEMPORAL_TLS_CLIENT_CERT_PATH/_DATA,
 * TEMPORAL_TLS_CLIENT_KEY_PATH/_DATA, TEMPORAL_TLS_SERVER_CA_CERT_PATH/_DATA, TEMPORAL_TLS_SERVER_NAME and
 * TEMPORAL_GRPC_META_*. Nothing set: plaintext to 127.0.0.1:7233, namespace "default" (the dev server).
 *
 * Redis: REDIS_URL (redis:// or rediss:// for TLS), or Sentinel: REDIS_SENTINELS ("host:port,host:port") with
 * REDIS_SENTINEL_NAME (the master's name), REDIS_SENTINEL_PASSWORD, and REDIS_URL's password and db for the data
 * nodes. ioredis asks the sentinels for the master and follows a failover.
 */
import { Connection, type ConnectionOptions } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { NativeConnection, type NativeConnectionOptions } from '@temporalio/worker';
import Redis, { type RedisOptions } from 'ioredis';

export const DEFAULT_TEMPORAL_ADDRESS = '127.0.0.1:7233';
export const DEFAULT_TEMPORAL_NAMESPACE = 'default';

export interface TemporalTarget {
  address: string;
  namespace: string;
  /** For the client's Connection and the worker's NativeConnection alike (address, tls, apiKey, metadata). */
  connectionOptions: NativeConnectionOptions & { address: string };
  /** What a start-up log line may say about it (never the key or the certificates). */
  summary: { address: string; namespace: string; tls: 'off' | 'server' | 'mtls'; apiKey: boolean; profile: string };
}

const definedOnly = (env: NodeJS.ProcessEnv): Record<string, string> =>
  Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => typeof e[1] === 'string'));

/** Reads the environment configuration once (at start-up, from loadConfig). A broken profile file throws. */
export function loadTemporalTarget(env: NodeJS.ProcessEnv = process.env): TemporalTarget {
  const vars = definedOnly(env);
  // Empty strings mean "unset" (compose files and shells often pass VAR= through).
  for (const [k, v] of Object.entries(vars)) if (k.startsWith('TEMPORAL_') && v.trim() === '') delete vars[k];
  // TEMPORAL_PROFILE unset: the file's "default" profile if there is one (no file is fine); set: it must exist.
  const profile = vars.TEMPORAL_PROFILE ?? 'default';
  const { connectionOptions, namespace } = loadClientConnectConfig({ overrideEnvVars: vars });
  const address = connectionOptions.address ?? DEFAULT_TEMPORAL_ADDRESS;
  const tls = connectionOptions.tls;
  const tlsMode =
    tls === undefined || tls === false || tls === null
      ? 'off'
      : typeof tls === 'object' && tls.clientCertPair
        ? 'mtls'
        : 'server';
  return {
    address,
    namespace: namespace ?? DEFAULT_TEMPORAL_NAMESPACE,
    connectionOptions: { ...connectionOptions, address },
    summary: {
      address,
      namespace: namespace ?? DEFAULT_TEMPORAL_NAMESPACE,
      tls: tlsMode,
      apiKey: connectionOptions.apiKey !== undefined,
      profile,
    },
  };
}

/**
 * The largest reply a client Connection takes: 128 MiB. grpc-js refuses anything over 4 MiB unless told, and the
 * SDK's own default (client 1.24) names the option `max_receive_message_length`, a key grpc-js does not read (its
 * key has the `grpc.` prefix). A page of history can pass 4 MiB: a batch's run holds its items twice (its input and
 * its continue-as-new, up to 1.8 MB each) beside a thousand child starts, 5.1 MB in a fresh-clone batch-10k run,
 * where the test's fetchHistory and so the API's timeline of that batch failed with RESOURCE_EXHAUSTED.
 */
export const CLIENT_CHANNEL_ARGS = { 'grpc.max_receive_message_length': 128 * 1024 * 1024 } as const;

/** A client Connection (API, reconcile, setup, the worker's own client). */
export function connectTemporalClient(
  target: TemporalTarget,
  extra: Partial<ConnectionOptions> = {},
): Promise<Connection> {
  const { apiKey, ...rest } = target.connectionOptions;
  // The client's apiKey option accepts a string too; the native connection's type is a string already.
  return Connection.connect({
    ...(rest as ConnectionOptions),
    ...(apiKey !== undefined ? { apiKey } : {}),
    ...extra,
    channelArgs: { ...CLIENT_CHANNEL_ARGS, ...extra.channelArgs },
  });
}

/** The worker's NativeConnection. */
export function connectTemporalWorker(target: TemporalTarget): Promise<NativeConnection> {
  return NativeConnection.connect(target.connectionOptions);
}

export type RedisTarget =
  | { kind: 'url'; url: string }
  | {
      kind: 'sentinel';
      sentinels: { host: string; port: number }[];
      name: string;
      sentinelPassword?: string;
      password?: string;
      username?: string;
      db: number;
      /** rediss:// in REDIS_URL: TLS to the data nodes. */
      tls: boolean;
    };

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379/0';

/** Parses REDIS_URL / REDIS_SENTINELS / REDIS_SENTINEL_NAME; a bad value throws, naming the variable. */
export function loadRedisTarget(env: NodeJS.ProcessEnv = process.env): RedisTarget {
  const url = env.REDIS_URL?.trim() || DEFAULT_REDIS_URL;
  const sentinelList = env.REDIS_SENTINELS?.trim();
  if (!sentinelList) {
    if (env.REDIS_SENTINEL_NAME?.trim()) throw new Error('REDIS_SENTINEL_NAME is set but REDIS_SENTINELS is not');
    return { kind: 'url', url };
  }
  const name = env.REDIS_SENTINEL_NAME?.trim();
  if (!name) throw new Error('REDIS_SENTINELS is set: REDIS_SENTINEL_NAME (the master name) is needed too');
  const sentinels = sentinelList.split(',').map((entry) => {
    const m = /^\[?([^\]\s]+?)\]?:(\d{1,5})$/.exec(entry.trim());
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535)
      throw new Error(`REDIS_SENTINELS: "${entry.trim()}" is not host:port`);
    return { host: m[1]!, port: Number(m[2]) };
  });
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`REDIS_URL: "${url}" is not a URL`);
  }
  const dbText = parsed.pathname.replace(/^\//, '') || '0';
  if (!/^\d+$/.test(dbText)) throw new Error(`REDIS_URL: the database "${dbText}" is not a number`);
  return {
    kind: 'sentinel',
    sentinels,
    name,
    sentinelPassword: env.REDIS_SENTINEL_PASSWORD || undefined,
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    username: parsed.username ? decodeURIComponent(parsed.username) : undefined,
    db: Number(dbText),
    tls: parsed.protocol === 'rediss:',
  };
}

/** A Redis client for the target, with the caller's options (retries, offline queue). */
export function createRedis(target: RedisTarget, options: RedisOptions = {}): Redis {
  if (target.kind === 'url') return new Redis(target.url, options);
  return new Redis({
    ...options,
    sentinels: target.sentinels,
    name: target.name,
    sentinelPassword: target.sentinelPassword,
    password: target.password,
    username: target.username,
    db: target.db,
    // Not ioredis's failoverDetector: with it (5.11.1) a killed master left the client closed for good (tried in
    // test/cluster/connections.test.ts); without it the client asks the sentinels again on reconnect (~2.5 s).
    ...(target.tls ? { tls: {} } : {}),
  });
}

/** For log lines: where Redis is, without passwords. */
export function describeRedis(target: RedisTarget): string {
  if (target.kind === 'sentinel')
    return `sentinel ${target.name} via ${target.sentinels.map((s) => `${s.host}:${s.port}`).join(',')} db ${target.db}`;
  try {
    const u = new URL(target.url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'redis (unparsable URL)';
  }
}
