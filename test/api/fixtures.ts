/**
 * The whole of pubflow for API tests: a real Temporal dev server, a real redis-server, the real worker pair on a
 * fresh task queue, and createApp wired to them exactly as src/api.ts wires it. Only the platforms' far side is
 * local: the `local` driver's folder, a WebhookReceiver on 127.0.0.1, and a ScriptedDriver.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Client } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type express from 'express';
import Redis from 'ioredis';
import type { ActivityDeps } from '../../src/activities';
import { createApp } from '../../src/api/app';
import { KeyRegistry } from '../../src/auth/key-registry';
import { loadConfig, type Config } from '../../src/config';
import { connectTemporalClient } from '../../src/connections';
import { createLogger } from '../../src/log';
import { DriverRegistry, LocalDriver, WebhookDriver } from '../../src/platforms';
import { loadAccounts } from '../../src/platforms/accounts';
import {
  authExpired,
  contentRejected,
  unconfirmed,
  verificationRequired,
  type DriverResult,
  type PublishContext,
} from '../../src/platforms/types';
import { ProjectionStore } from '../../src/projection/store';
import { TaskStateManager } from '../../src/projection/task-state-manager';
import type { Role } from '../../src/auth/roles';
import type { TaskDoc } from '../../src/shared/types';
import { createPubflowWorkers } from '../../src/worker';
import { authed, createTestKeys, type AuthedRequest, type TestKeys } from '../helpers/api-keys';
import { workflowBundle } from '../helpers/harness';
import { validateResponses } from '../helpers/openapi-validator';
import { waitUntil } from '../helpers/polling';
import { hangUntilAborted, ScriptedDriver } from '../helpers/scripted-driver';
import { WebhookReceiver } from '../helpers/webhook-receiver';
import { startDevServer, startRedis, tempDir, type DevServer, type RedisServer } from '../helpers/servers';

/** The credential the webhook account carries: it must reach the endpoint and nothing else. */
export const WEBHOOK_SECRET = 'Bearer api-test-s3cret-7f1c';

/**
 * How the scripted platform behaves, chosen per request through `options.behave` (requests run concurrently, so a
 * shared queue of steps could hand one task's step to another).
 */
export type Behaviour = 'succeed' | 'reject-first' | 'unconfirmed' | 'hang' | 'auth-expired' | 'verify-first';

function scriptedBehaviour(ctx: PublishContext): Promise<DriverResult> {
  const behave = (ctx.request.options?.behave as Behaviour | undefined) ?? 'succeed';
  if (behave === 'hang') return hangUntilAborted(ctx);
  if (behave === 'reject-first' && ctx.attempt === 1) return Promise.reject(contentRejected('title is not allowed'));
  if (behave === 'unconfirmed') return Promise.reject(unconfirmed('the platform did not answer'));
  if (behave === 'verify-first' && ctx.attempt === 1)
    return Promise.reject(verificationRequired('the platform asks for a code', 'captcha page: <form id="verify">'));
  // A logged-out account on the first attempt (its gate then holds the account's queue until reactivated).
  if (behave === 'auth-expired' && ctx.attempt === 1)
    return Promise.reject(authExpired('the session cookie has expired'));
  return Promise.resolve({ postId: `post-${ctx.taskId}-${ctx.attempt}`, url: `https://example.invalid/${ctx.taskId}` });
}

export interface ApiStack {
  app: express.Express;
  /** One real key per role, in the keys file the app reads (PUBFLOW_API_KEYS_FILE). */
  keys: TestKeys;
  /** supertest on the app, each request with the least role its route needs (or the role given). */
  api(as?: Role): AuthedRequest;
  /** A plain client on the test's redis-server, for what `redis-cli` would show. */
  redis: Redis;
  client: Client;
  config: Config;
  scripted: ScriptedDriver;
  mediaRoot: string;
  /** A real file outside the media root. */
  outsideFile: string;
  /** The registry the app reads its keys from; reload() after changing the file (src/api.ts watches it). */
  registry: KeyRegistry;
  /** With `listen`: http://127.0.0.1:<port>, the same app (not wrapped in the validator: it serves the desk too). */
  url?: string;
  close(): Promise<void>;
}

export interface ApiStackOptions {
  webhookUrl: string;
  /** How the dev server is started (default: a database file, as `make up` runs it). */
  devServer?: Parameters<typeof startDevServer>[0];
  /** Accounts besides demo, hook, scr-1 and scr-2. */
  extraAccounts?: Array<{ id: string; platform: string; displayName?: string; settings?: Record<string, unknown> }>;
  /** Upload slots of the worker (default 4). */
  uploadConcurrency?: number;
  /** Event webhooks for the worker (test/events/); default none. */
  events?: ActivityDeps['events'];
  /** Also serve the app on a free loopback port (`url`), as the API process does: for a browser (the desk's tests). */
  listen?: boolean;
}

/**
 * The test file's stack on a webhook receiver of its own: started before the file's tests (and handed to `use`),
 * closed after them.
 */
export function useApiStack(
  use: (stack: ApiStack, receiver: WebhookReceiver) => void,
  opts: Omit<ApiStackOptions, 'webhookUrl'> = {},
): void {
  let stack: ApiStack | undefined;
  let receiver: WebhookReceiver | undefined;
  beforeAll(async () => {
    receiver = await WebhookReceiver.start();
    stack = await startApiStack({ ...opts, webhookUrl: receiver.url });
    use(stack, receiver);
  }, 120_000);
  afterAll(async () => {
    await stack?.close();
    await receiver?.close();
  });
}

export async function startApiStack(opts: ApiStackOptions): Promise<ApiStack> {
  const cleanups: Array<() => Promise<void> | void> = [];
  // Undo in reverse order, and keep going past a failure so no server or worker is left running.
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
    const [dev, redisServer] = await Promise.all([startDevServer(opts.devServer), startRedis()]);
    cleanups.push(
      () => dev.destroy() as Promise<void>,
      () => redisServer.destroy(),
    );
    return await wire(dev, redisServer, opts, cleanups, close);
  } catch (err) {
    await close();
    throw err;
  }
}

async function wire(
  dev: DevServer,
  redisServer: RedisServer,
  opts: ApiStackOptions,
  cleanups: Array<() => Promise<void> | void>,
  close: () => Promise<void>,
): Promise<ApiStack> {
  const dir = tempDir('api');
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const mediaRoot = path.join(dir, 'media');
  const outside = path.join(dir, 'outside');
  mkdirSync(path.join(mediaRoot, 'sub'), { recursive: true });
  mkdirSync(outside);
  writeFileSync(path.join(mediaRoot, 'clip.mp4'), randomBytes(64 * 1024));
  writeFileSync(path.join(mediaRoot, 'cover.jpg'), randomBytes(2048));
  const outsideFile = path.join(outside, 'private.mp4');
  writeFileSync(outsideFile, 'not for publishing');
  symlinkSync(outsideFile, path.join(mediaRoot, 'escape.mp4'));

  const accountsFile = path.join(dir, 'accounts.json');
  writeFileSync(
    accountsFile,
    JSON.stringify([
      { id: 'demo', platform: 'local', displayName: 'Demo', settings: {} },
      {
        id: 'hook',
        platform: 'webhook',
        displayName: 'Brand CMS',
        settings: { url: opts.webhookUrl, timeoutMs: 60_000 },
        credentials: { headers: { Authorization: WEBHOOK_SECRET, 'X-Tenant': 'brand-a' } },
      },
      { id: 'scr-1', platform: 'scripted', settings: {} },
      { id: 'scr-2', platform: 'scripted', settings: {} },
      ...(opts.extraAccounts ?? []).map((a) => ({ settings: {}, ...a })),
    ]),
  );

  const keys = createTestKeys(dir);
  const taskQueue = `tq-${randomUUID()}`;
  // The production config parser, with short timeouts and no automatic retries (each test decides every attempt).
  const config = loadConfig({
    ...dev.env, // TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE (and TLS with PUBFLOW_TEST_TEMPORAL=external)
    PUBFLOW_TASK_QUEUE: taskQueue,
    REDIS_URL: redisServer.url,
    PUBFLOW_ACCOUNTS_FILE: accountsFile,
    PUBFLOW_MEDIA_ROOT: mediaRoot,
    PUBFLOW_PUBLISHED_DIR: path.join(dir, 'published'),
    PUBFLOW_HEARTBEAT_TIMEOUT: '5s',
    PUBFLOW_UPLOAD_TIMEOUT: '2m',
    PUBFLOW_AUTO_RETRY_MAX: '0',
    PUBFLOW_API_KEYS_FILE: keys.file,
    // Tests poll as fast as 20 requests a second; the limiter itself is tested in auth-routes.test.ts.
    PUBFLOW_API_RATE_LIMIT: '500/s',
    PUBFLOW_API_RATE_BURST: '1000',
  });

  const scripted = new ScriptedDriver();
  scripted.fallback = scriptedBehaviour;
  // One registry for both sides: the worker runs these drivers, the API validates platform names against them.
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

  const nativeConnection = await NativeConnection.connect(dev.connection);
  cleanups.push(() => nativeConnection.close());
  const workers = await createPubflowWorkers({
    connection: nativeConnection,
    namespace: config.temporal.namespace,
    taskQueue,
    deps: {
      store: new ProjectionStore(workerRedis, { ttlSeconds: config.statusTtlSeconds }),
      accounts,
      drivers,
      log: createLogger('test-worker', { silent: true }),
      events: opts.events,
    },
    uploadConcurrency: opts.uploadConcurrency ?? 4,
    shutdownGraceMs: 1000,
    workflowBundle: await workflowBundle(),
  });
  const running = workers.run();
  cleanups.push(async () => {
    workers.shutdown();
    await running;
  });

  // The API's own way to Temporal (src/api.ts), so the routes read Temporal with the production channel options.
  const connection = await connectTemporalClient(config.temporalTarget);
  cleanups.push(() => connection.close());
  const client = new Client({ connection, namespace: config.temporal.namespace });

  const apiStore = new ProjectionStore(apiRedis, { ttlSeconds: config.statusTtlSeconds });
  const registry = KeyRegistry.fromFile(keys.file);
  const plain = createApp({
    keys: registry,
    client,
    redis: apiRedis,
    tsm: new TaskStateManager(apiRedis),
    store: apiStore,
    accounts,
    drivers,
    config,
    log: createLogger('test-api', { silent: true }),
  });
  // Every response the tests see through `api()` is checked against /openapi.json (a mismatch fails the test that
  // caused it).
  const app = validateResponses(plain);
  let url: string | undefined;
  if (opts.listen) {
    const server: Server = await new Promise((resolve) => {
      const s = plain.listen(0, '127.0.0.1', () => resolve(s));
    });
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections(); // open event streams
          server.close(() => resolve());
        }),
    );
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  const api = (as?: Role) => authed(app, keys, as);
  return { app, keys, api, redis, client, config, scripted, mediaRoot, outsideFile, registry, url, close };
}

/** A valid publish body; override any field. */
export function publishBody(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    platform: 'scripted',
    accountId: 'scr-1',
    video: { path: 'clip.mp4' },
    title: `t-${randomUUID().slice(0, 8)}`,
    ...over,
  };
}

/** POST /api/v1/publish with a publisher key, expecting 202; returns the task id. */
export async function publish(stack: Pick<ApiStack, 'api'>, body: Record<string, unknown>): Promise<string> {
  const res = await stack.api('publisher').post('/api/v1/publish').send(body);
  if (res.status !== 202) throw new Error(`publish answered ${res.status}: ${res.text}`);
  return (res.body as { taskId: string }).taskId;
}

/** The document at celery:task:<id>, as redis-cli GET shows it. */
export async function redisDoc(redis: Redis, taskId: string): Promise<TaskDoc | null> {
  const raw = await redis.get(`celery:task:${taskId}`);
  return raw === null ? null : (JSON.parse(raw) as TaskDoc);
}

/** Polls Redis until the task's document satisfies `pred`. */
export function docWhere(redis: Redis, taskId: string, pred: (d: TaskDoc) => boolean, timeoutMs = 20_000) {
  return waitUntil(
    `the document of ${taskId} to match`,
    async () => {
      const d = await redisDoc(redis, taskId);
      return d && pred(d) ? d : undefined;
    },
    { timeoutMs },
  );
}
