/** The HTTP API process: starts workflows and reads the Redis projection. */
import type { Server } from 'node:http';
import { Client } from '@temporalio/client';
import { createApp } from './api/app';
import { assertSafeListen, createRateLimiter, loadKeyRegistry } from './api/auth';
import { answerClientErrors } from './api/client-errors';
import { loadConfig, type Config } from './config';
import { connectTemporalClient, createRedis } from './connections';
import { createLogger } from './log';
import { createDefaultDrivers } from './platforms';
import { loadAccounts } from './platforms/accounts';
import { ProjectionStore } from './projection/store';
import { TaskStateManager } from './projection/task-state-manager';
import { startTracing } from './tracing';
import { clientInterceptors } from './tracing/temporal';

export { createApp } from './api/app';

export async function runApi(config: Config = loadConfig()): Promise<Server> {
  const log = createLogger('api');
  // Keys first: a bad keys file, or a listener beyond loopback without keys, stops the start here, saying why.
  const keys = loadKeyRegistry(config);
  assertSafeListen(config, keys);
  if (!keys || keys.size === 0)
    log.warn('no API keys: every /api/v1 request will be refused with 401 (set PUBFLOW_API_KEYS_FILE)', {
      keysFile: config.api.keysFile ?? null,
    });
  else log.info('api keys loaded', { file: keys.file, keys: keys.size });
  // Rotation: the file is re-read when it changes or on SIGHUP; a broken file keeps the keys in force.
  const unwatchKeys = keys?.watch(log) ?? (() => undefined);
  const redis = createRedis(config.redis, { maxRetriesPerRequest: 1 });
  redis.on('error', (err) => log.warn('redis error', { error: err.message }));
  const tracing = startTracing(config.tracing, 'api');
  const connection = await connectTemporalClient(config.temporalTarget);
  // The request id (always) and the trace (when on) travel into the workflows as headers.
  const client = new Client({
    connection,
    namespace: config.temporal.namespace,
    interceptors: clientInterceptors(tracing),
  });
  const store = new ProjectionStore(redis, { ttlSeconds: config.statusTtlSeconds });
  const app = createApp({
    keys,
    limiter: createRateLimiter(config),
    client,
    redis,
    tsm: new TaskStateManager(redis),
    store,
    accounts: loadAccounts(config.accountsFile),
    drivers: createDefaultDrivers({
      publishedRoot: config.publishedDir,
      mediaRoot: config.mediaRoot,
      // The driver gives up (Unconfirmed, with its own message) just before the activity would time out.
      webhookTimeoutMs: Math.max(1000, config.policyFor('webhook').uploadTimeoutMs - 5000),
    }),
    config,
    log,
    tracer: tracing?.tracer,
  });
  const server = app.listen(config.api.port, config.api.host, () =>
    log.info('api listening', {
      url: `http://${config.api.host}:${config.api.port}`,
      traces: config.tracing ? `${config.tracing.tracesUrl} (${config.tracing.protocol})` : null,
    }),
  );
  answerClientErrors(server);
  const shutdown = (signal: string) => {
    log.info('api stopping', { signal });
    unwatchKeys();
    server.close(() => {
      void connection
        .close()
        .then(() => tracing?.shutdown())
        .catch(() => undefined)
        .finally(() => {
          redis.disconnect();
          process.exit(0);
        });
    });
    // Idle keep-alive sockets at once; after 2 s also what is still open (a desk tab's event stream never ends by
    // itself), so a stop does not wait for the 10 s forced exit. A request in flight has those 2 s to be answered.
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), 2000).unref();
    setTimeout(() => process.exit(0), 10_000).unref();
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  return server;
}

if (require.main === module) {
  runApi().catch((err) => {
    createLogger('api').error('api failed', { error: err instanceof Error ? err.stack : String(err) });
    process.exit(1);
  });
}
