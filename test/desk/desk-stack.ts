/**
 * The whole of pubflow for the desk's browser tests, listening on a free loopback port: a real Temporal dev server,
 * a real redis-server, the real worker pair and createApp (the API process's app, desk included), wired as
 * src/api.ts wires them. Only platforms are simulated: a WebhookReceiver on 127.0.0.1 and a ScriptedDriver.
 * (test/api/fixtures.ts wraps its app in the OpenAPI response validator, which only knows /api/v1: hence this file.)
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import Redis from 'ioredis';
import { createApp } from '../../src/api/app';
import { KeyRegistry } from '../../src/auth/key-registry';
import { loadConfig, type Config } from '../../src/config';
import { createLogger } from '../../src/log';
import { DriverRegistry, LocalDriver, WebhookDriver } from '../../src/platforms';
import { loadAccounts } from '../../src/platforms/accounts';
import { authExpired, type DriverResult, type PublishContext } from '../../src/platforms/types';
import { ProjectionStore } from '../../src/projection/store';
import { TaskStateManager } from '../../src/projection/task-state-manager';
import { createPubflowWorkers } from '../../src/worker';
import { authed, createTestKeys, type AuthedRequest, type TestKeys } from '../helpers/api-keys';
import { workflowBundle } from '../helpers/harness';
import { ScriptedDriver } from '../helpers/scripted-driver';
import { startDevServer, startRedis, tempDir } from '../helpers/servers';
import type { Role } from '../../src/auth/roles';

export interface DeskStack {
  /** http://127.0.0.1:<port> */
  url: string;
  keys: TestKeys;
  /** The registry the app reads its keys from; reload() after changing the file (src/api.ts watches it). */
  registry: KeyRegistry;
  api(as?: Role): AuthedRequest;
  redis: Redis;
  client: Client;
  config: Config;
  scripted: ScriptedDriver;
  close(): Promise<void>;
}

/** `options.behave: 'auth-expired'` makes a scripted upload report a logged-out account (the gate then holds it). */
function scriptedBehaviour(ctx: PublishContext): Promise<DriverResult> {
  if (ctx.request.options?.behave === 'auth-expired' && ctx.attempt === 1)
    return Promise.reject(authExpired('the session cookie has expired'));
  return Promise.resolve({ postId: `post-${ctx.taskId}-${ctx.attempt}`, url: `https://example.invalid/${ctx.taskId}` });
}

export async function startDeskStack(opts: { webhookUrl: string }): Promise<DeskStack> {
  const cleanups: Array<() => Promise<void> | void> = [];
  const close = async () => {
    let first: unknown;
    for (const fn of cleanups.splice(0).reverse()) {
      try {
        await fn();
      } catch (err) {
        first ??= err;
      }
    }
    if (first) throw first;
  };
  try {
    const [dev, redisServer] = await Promise.all([startDevServer(), startRedis()]);
    cleanups.push(
      () => dev.destroy() as Promise<void>,
      () => redisServer.destroy(),
    );
    const dir = tempDir('desk');
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const mediaRoot = path.join(dir, 'media');
    mkdirSync(mediaRoot, { recursive: true });
    writeFileSync(path.join(mediaRoot, 'clip.mp4'), randomBytes(16 * 1024));
    writeFileSync(path.join(mediaRoot, 'fixed.mp4'), randomBytes(16 * 1024));
    const accountsFile = path.join(dir, 'accounts.json');
    writeFileSync(
      accountsFile,
      JSON.stringify([
        {
          id: 'hook',
          platform: 'webhook',
          displayName: 'Brand CMS',
          settings: { url: opts.webhookUrl, timeoutMs: 60_000 },
        },
        { id: 'scr-1', platform: 'scripted', displayName: 'Scripted one', settings: {} },
        { id: 'scr-login', platform: 'scripted', displayName: 'Logs out', settings: {} },
      ]),
    );
    const keys = createTestKeys(dir);
    const config = loadConfig({
      TEMPORAL_ADDRESS: dev.address,
      PUBFLOW_TASK_QUEUE: `tq-${randomUUID()}`,
      REDIS_URL: redisServer.url,
      PUBFLOW_ACCOUNTS_FILE: accountsFile,
      PUBFLOW_MEDIA_ROOT: mediaRoot,
      PUBFLOW_PUBLISHED_DIR: path.join(dir, 'published'),
      PUBFLOW_HEARTBEAT_TIMEOUT: '5s',
      PUBFLOW_UPLOAD_TIMEOUT: '2m',
      PUBFLOW_AUTO_RETRY_MAX: '0',
      PUBFLOW_API_KEYS_FILE: keys.file,
      PUBFLOW_API_RATE_LIMIT: '500/s',
      PUBFLOW_API_RATE_BURST: '1000',
    });
    const scripted = new ScriptedDriver();
    scripted.fallback = scriptedBehaviour;
    const drivers = new DriverRegistry([
      new LocalDriver({ publishedRoot: config.publishedDir, mediaRoot: config.mediaRoot }),
      new WebhookDriver({ mediaRoot: config.mediaRoot }),
      scripted,
    ]);
    const accounts = loadAccounts(config.accountsFile);
    const workerRedis = new Redis(config.redisUrl, { maxRetriesPerRequest: 1 });
    const apiRedis = new Redis(config.redisUrl, { maxRetriesPerRequest: 1 });
    const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: 1 });
    cleanups.push(() => {
      workerRedis.disconnect();
      apiRedis.disconnect();
      redis.disconnect();
    });
    const nativeConnection = await NativeConnection.connect({ address: dev.address });
    cleanups.push(() => nativeConnection.close());
    const workers = await createPubflowWorkers({
      connection: nativeConnection,
      namespace: config.temporal.namespace,
      taskQueue: config.temporal.taskQueue,
      deps: {
        store: new ProjectionStore(workerRedis, { ttlSeconds: config.statusTtlSeconds }),
        accounts,
        drivers,
        log: createLogger('test-worker', { silent: true }),
      },
      uploadConcurrency: 4,
      shutdownGraceMs: 1000,
      workflowBundle: await workflowBundle(),
    });
    const running = workers.run();
    cleanups.push(async () => {
      workers.shutdown();
      await running;
    });
    const connection = await Connection.connect({ address: dev.address });
    cleanups.push(() => connection.close());
    const client = new Client({ connection, namespace: config.temporal.namespace });
    const registry = KeyRegistry.fromFile(keys.file);
    const app = createApp({
      keys: registry,
      client,
      redis: apiRedis,
      tsm: new TaskStateManager(apiRedis),
      store: new ProjectionStore(apiRedis, { ttlSeconds: config.statusTtlSeconds }),
      accounts,
      drivers,
      config,
      log: createLogger('test-api', { silent: true }),
    });
    const server: Server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections(); // open event streams
          server.close(() => resolve());
        }),
    );
    const { port } = server.address() as AddressInfo;
    return {
      url: `http://127.0.0.1:${port}`,
      keys,
      registry,
      api: (as?: Role) => authed(app, keys, as),
      redis,
      client,
      config,
      scripted,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
