/**
 * Real servers for tests: redis-server, the Temporal dev server and the time-skipping test server.
 * Each is started on free ports with a temporary data directory, and stopped by its PID.
 * Tests never touch a Redis or Temporal they did not start.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Connection, type TLSConfig } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { sleep, StopWaiting, waitUntil } from './polling';
import { toolPaths } from './tools';
import { SEARCH_ATTRIBUTES } from '../../src/shared/search-attributes';
import { connectTemporalClient, loadTemporalTarget } from '../../src/connections';
import { setupTemporal } from '../../src/setup/setup';

const started = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of started) if (child.exitCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
});

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

const tempDirs = new Set<string>();
// Whatever a test or benchmark left behind goes when its process exits (kept with PUBFLOW_TEST_DEBUG=1 or BENCH_KEEP=1,
// to read the logs in it).
process.on('exit', () => {
  if (process.env.PUBFLOW_TEST_DEBUG === '1' || process.env.BENCH_KEEP === '1') return;
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

export function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `pubflow-${prefix}-`));
  tempDirs.add(dir);
  return dir;
}

/** The last lines each server process wrote, for the message when it dies. */
const outputTails = new WeakMap<ChildProcess, string[]>();

/** Poll `check` until the server answers; stop at once if its process has exited (its last output in the message). */
function waitReady(what: string, check: () => Promise<boolean>, timeoutMs: number, child: ChildProcess) {
  return waitUntil(
    `${what} to become ready`,
    () => {
      if (child.exitCode !== null)
        throw new StopWaiting(
          `${what} exited early with code ${child.exitCode}; its last output:\n` +
            (outputTails.get(child) ?? []).join('').slice(-2000),
        );
      return check();
    },
    { timeoutMs, intervalMs: 100 },
  );
}

async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000) {
  if (child.exitCode !== null || child.signalCode !== null || !child.pid) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid, signal);
  const timer = setTimeout(() => child.pid && child.exitCode === null && process.kill(child.pid, 'SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
  started.delete(child);
}

function spawnTracked(cmd: string, args: string[], logName: string): ChildProcess {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  started.add(child);
  const tail: string[] = [];
  outputTails.set(child, tail);
  const keep = (buf: Buffer) => {
    tail.push(buf.toString());
    if (tail.length > 50) tail.shift();
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.on('exit', (code, sig) => {
    started.delete(child);
    if (code && code !== 0 && process.env.PUBFLOW_TEST_DEBUG)
      console.error(`${logName} exited ${code ?? sig}:\n${tail.join('')}`);
  });
  return child;
}

/** PING over a raw socket: a probe that leaves no client, timer or retry behind when the port is not ready. */
function redisPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}

/** A server process the tests started: stopped, killed and started again by its PID, on the same ports and dir. */
export interface ManagedServer {
  pid: number;
  /** Stop the server (SIGTERM: redis-server writes its AOF, the dev server its SQLite file, and exits). */
  stop(): Promise<void>;
  /** Kill it hard (SIGKILL). */
  kill(): Promise<void>;
  /** Start it again on the same port and data dir. */
  start(): Promise<void>;
  /** Stop and remove the data dir. */
  destroy(): Promise<void>;
}

export interface RedisServer extends ManagedServer {
  url: string;
  port: number;
  dir: string;
}

/** One server process: spawned by `start`, ready when `ready` resolves, stopped and killed by its PID. */
function managedProcess(o: {
  dir: string;
  spawn: () => ChildProcess;
  ready: (child: ChildProcess) => Promise<unknown>;
  stopGraceMs?: number;
}): ManagedServer {
  let child: ChildProcess | undefined;
  const server: ManagedServer = {
    pid: 0,
    async start() {
      const restart = child !== undefined;
      for (let tries = 1; ; tries++) {
        child = o.spawn();
        server.pid = child.pid ?? 0;
        try {
          await o.ready(child);
          return;
        } catch (err) {
          // Started again on the same port and data right after a stop, a server can exit at once while the old
          // process's port or files are still being released (seen once in CI: the dev server exited with code 2).
          // That is the harness's race, not what the fault tests test: try again shortly, twice at most.
          if (!restart || !(err instanceof StopWaiting) || tries >= 3) throw err;
          process.stderr.write(`restart attempt ${tries} failed, trying again in 1 s: ${err.message}\n`);
          await sleep(1000);
        }
      }
    },
    async stop() {
      if (child) await stopChild(child, 'SIGTERM', o.stopGraceMs);
    },
    async kill() {
      if (child) await stopChild(child, 'SIGKILL');
    },
    async destroy() {
      await server.stop();
      rmSync(o.dir, { recursive: true, force: true });
    },
  };
  return server;
}

/** Starts the server; if it fails to come up, stops it and removes its data dir before passing the error on. */
async function startOrClean<T extends ManagedServer>(server: T): Promise<T> {
  try {
    await server.start();
    return server;
  } catch (err) {
    await server.destroy().catch(() => undefined);
    throw err;
  }
}

/**
 * Ports come from `freePort()`, which another process on a busy machine can take before the server binds them: one
 * more try, on fresh ports, makes that race harmless.
 */
async function onFreshPorts<T>(start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch {
    return start();
  }
}

export function startRedis(opts: { appendonly?: boolean } = {}): Promise<RedisServer> {
  return onFreshPorts(() => startRedisOnce(opts));
}

async function startRedisOnce(opts: { appendonly?: boolean }): Promise<RedisServer> {
  const bin = toolPaths().redisServer || 'redis-server';
  const port = await freePort();
  const dir = tempDir('redis');
  const server: RedisServer = Object.assign(
    managedProcess({
      dir,
      spawn: () =>
        spawnTracked(
          bin,
          [
            '--port',
            String(port),
            '--bind',
            '127.0.0.1',
            '--dir',
            dir,
            '--save',
            '',
            '--appendonly',
            opts.appendonly ? 'yes' : 'no',
            '--appendfsync',
            'always',
            '--protected-mode',
            'no',
          ],
          'redis-server',
        ),
      ready: (child) => waitReady(`redis-server on :${port}`, () => redisPing(port), 10_000, child),
    }),
    { url: `redis://127.0.0.1:${port}/0`, port, dir },
  );
  return startOrClean(server);
}

export interface DevServer extends ManagedServer {
  address: string;
  namespace: string;
  uiPort: number;
  dbFile: string;
  /** For Connection.connect / NativeConnection.connect: the address, and mTLS against an external Temporal. */
  connection: { address: string; tls?: TLSConfig };
  /** TEMPORAL_* variables for a pubflow process or loadConfig (address, namespace, TLS paths). */
  env: Record<string, string>;
  /** PUBFLOW_TEST_TEMPORAL=external: a namespace on a Temporal the tests did not start (stop/kill/start throw). */
  external: boolean;
}

/** PUBFLOW_TEST_TEMPORAL=external: the tests use the Temporal of TEMPORAL_ADDRESS/TEMPORAL_TLS_* (scripts/cluster/test.sh). */
export const externalTemporal = (): boolean => process.env.PUBFLOW_TEST_TEMPORAL === 'external';

/** SQLite settings of the test dev servers (and of `make up`); see startDevServerOnce. */
export const DEV_SERVER_SQLITE_PRAGMAS = ['journal_mode=wal', 'synchronous=normal'];

export type DevServerOptions = {
  dynamicConfig?: Record<string, string | number | boolean>;
  /** `--sqlite-pragma` values, e.g. `journal_mode=wal`. */
  sqlitePragmas?: string[];
  /** No database file: everything in memory (lost when the server stops; for load tests that never restart it). */
  inMemory?: boolean;
};

/** `temporal server start-dev` on free ports, with its SQLite state in a temp dir, search attributes registered. */
export function startDevServer(opts: DevServerOptions = {}): Promise<DevServer> {
  if (externalTemporal()) return useExternalTemporal();
  return onFreshPorts(() => startDevServerOnce(opts));
}

/**
 * PUBFLOW_TEST_TEMPORAL=external: instead of a dev server, a fresh namespace on the Temporal that TEMPORAL_ADDRESS,
 * TEMPORAL_TLS_* (or a TEMPORAL_PROFILE) point at, made ready by `pubflow setup`'s code, so that test files never see
 * each other's workflows. The DevServerOptions (dynamic config, SQLite) do not apply there. The server is not the
 * tests' to stop: stop/kill/start throw (a test that restarts Temporal cannot run this way); destroy() deletes the
 * namespace, best effort.
 */
async function useExternalTemporal(): Promise<DevServer> {
  const target = loadTemporalTarget(process.env);
  const namespace = `pubflow-test-${process.pid}-${randomBytes(4).toString('hex')}`;
  const tls = target.connectionOptions.tls;
  const connection = { address: target.address, ...(tls && typeof tls === 'object' ? { tls } : {}) };
  const conn = await connectTemporalClient(target);
  try {
    await setupTemporal(conn, { namespace, retentionMs: 86_400_000, settleTimeoutMs: 120_000 });
    // A namespace registered a moment ago reaches each frontend, history and matching cache within seconds: usable
    // once visibility answers a query on pubflow's search attributes in it.
    await waitUntil(
      `namespace ${namespace} to be usable on ${target.address}`,
      async () => {
        try {
          await conn.workflowService.listWorkflowExecutions({ namespace, query: `PubflowStatus = 'probe'` });
          return true;
        } catch {
          return false;
        }
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    );
  } finally {
    await conn.close();
  }
  const notOurs = async () => {
    throw new Error(
      `PUBFLOW_TEST_TEMPORAL=external: the Temporal at ${target.address} is not the tests' to stop or start`,
    );
  };
  const env: Record<string, string> = Object.fromEntries(
    Object.entries(process.env).filter((e): e is [string, string] => e[0].startsWith('TEMPORAL_') && !!e[1]),
  );
  return {
    pid: 0,
    stop: notOurs,
    kill: notOurs,
    start: notOurs,
    async destroy() {
      const c = await connectTemporalClient(target).catch(() => undefined);
      if (!c) return;
      await c.operatorService.deleteNamespace({ namespace }).catch(() => undefined);
      await c.close();
    },
    address: target.address,
    namespace,
    uiPort: 0,
    dbFile: '',
    connection,
    env: { ...env, TEMPORAL_ADDRESS: target.address, TEMPORAL_NAMESPACE: namespace },
    external: true,
  };
}

async function startDevServerOnce(opts: DevServerOptions): Promise<DevServer> {
  const cli = toolPaths().temporalCli;
  if (!cli) throw new Error('No Temporal CLI: run scripts/provision.sh (or set PUBFLOW_TEMPORAL_CLI).');
  const port = await freePort();
  const uiPort = await freePort();
  const metricsPort = await freePort();
  const dir = tempDir('temporal');
  const dbFile = path.join(dir, 'temporal.db');
  const args = [
    'server',
    'start-dev',
    '--headless',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--ui-port',
    String(uiPort),
    '--metrics-port',
    String(metricsPort),
    ...(opts.inMemory ? [] : ['--db-filename', dbFile]),
    '--log-level',
    'error',
    '--namespace',
    'default',
    ...Object.entries(SEARCH_ATTRIBUTES).flatMap(([name, type]) => ['--search-attribute', `${name}=${type}`]),
    ...Object.entries(opts.dynamicConfig ?? {}).flatMap(([k, v]) => [
      '--dynamic-config-value',
      `${k}=${JSON.stringify(v)}`,
    ]),
    // As `make up` runs it: write-ahead log, synced at checkpoints. Safe when the process is killed (the fault
    // tests do), and it took the dev server from ~2 to ~5 batch items/s on this 2-core machine (docs/benchmarks.md).
    ...(opts.sqlitePragmas ?? DEV_SERVER_SQLITE_PRAGMAS).flatMap((p) => ['--sqlite-pragma', p]),
  ];
  const address = `127.0.0.1:${port}`;
  const server: DevServer = Object.assign(
    managedProcess({
      dir,
      spawn: () => spawnTracked(cli, args, 'temporal dev server'),
      ready: (child) =>
        waitReady(
          `temporal dev server on :${port}`,
          async () => {
            const conn = await Connection.connect({ address, connectTimeout: 1000 });
            try {
              await conn.workflowService.describeNamespace({ namespace: 'default' });
              return true;
            } finally {
              await conn.close();
            }
          },
          60_000,
          child,
        ),
      stopGraceMs: 15_000,
    }),
    {
      address,
      namespace: 'default',
      uiPort,
      dbFile,
      connection: { address },
      env: { TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: 'default' },
      external: false,
    },
  );
  return startOrClean(server);
}

/** The time-skipping test server, from the provisioned binary when there is one (else the SDK's download). */
export async function createTimeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  const { testServer } = toolPaths();
  const env = await TestWorkflowEnvironment.createTimeSkipping(
    testServer ? { server: { executable: { type: 'existing-path', path: testServer } } } : {},
  );
  // The test server accepts only registered search attributes, like a real cluster.
  await env.connection.operatorService.addSearchAttributes({
    namespace: 'default',
    searchAttributes: Object.fromEntries(
      Object.keys(SEARCH_ATTRIBUTES).map((name) => [
        name,
        temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
      ]),
    ),
  });
  return env;
}
