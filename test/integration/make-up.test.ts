/**
 * `make up` survives its own processes (issue 15 §6): scripts/up.sh itself, as a user runs it, on free ports with a
 * temporary data dir, and a local webhook endpoint as the platform. The test kills what up.sh started and checks that
 * up.sh brings it back while the rest of the stack goes on, then that SIGTERM stops everything it started.
 * fault-worker.test.ts checks the same kill at the process level; this file checks it under the supervisor.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { TaskDoc } from '../../src/shared/types';
import { freePort, tempDir } from '../helpers/servers';
import { sleep, waitUntil } from '../helpers/polling';
import { WebhookReceiver, type ReceivedRequest } from '../helpers/webhook-receiver';
import { FAULT_ENV, requireBuiltLib, ROOT } from './fault-helpers';

const ACCOUNTS = ['mu-0', 'mu-1', 'mu-2', 'mu-3'];
type Name = 'redis' | 'temporal' | 'worker' | 'api';

let dir: string;
let endpoint: WebhookReceiver;
let up: ChildProcess;
let upExit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
let out = '';
let api: string;
/** `Authorization: Bearer <the admin token make up wrote>`. */
let auth: { Authorization: string };
/** Every pid up.sh said it started, to prove none is left at the end (and to clean up if a test fails). */
const everyPid = new Set<number>();

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The pid up.sh last reported for each process (`[up] <name> started (pid N, ...)`). */
function pids(): Record<Name, number> {
  const now = {} as Record<Name, number>;
  for (const m of out.matchAll(/^\[up\] (\w+) started \(pid (\d+)/gm)) {
    now[m[1] as Name] = Number(m[2]);
    everyPid.add(Number(m[2]));
  }
  return now;
}

const until = <T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, ms = 30_000) =>
  waitUntil(what, check, { timeoutMs: ms, intervalMs: 100 }).catch((err: Error) => {
    throw new Error(`${err.message}\n--- up.sh output ---\n${out.slice(-4000)}`);
  });

async function publish(accountId: string, title: string): Promise<string> {
  const res = await fetch(`${api}/api/v1/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...auth },
    body: JSON.stringify({ platform: 'webhook', accountId, video: { path: 'clip.mp4' }, title }),
  });
  const body = (await res.json()) as { taskId: string };
  expect({ status: res.status, body }).toMatchObject({ status: 202, body: { taskId: expect.any(String) } });
  return body.taskId;
}

async function task(id: string): Promise<TaskDoc | undefined> {
  const res = await fetch(`${api}/api/v1/tasks/${encodeURIComponent(id)}`, { headers: auth });
  if (res.status !== 200 && res.status !== 404)
    throw new Error(`GET /tasks/${id} answered ${res.status}: ${await res.text()}`);
  return res.status === 200 ? ((await res.json()) as TaskDoc) : undefined;
}

/** Polls /readyz in the background; every answer that is not 200 (or no answer) is recorded. */
function watchApi() {
  const failures: string[] = [];
  let answered = 0;
  let on = true;
  const loop = (async () => {
    while (on) {
      try {
        const res = await fetch(`${api}/readyz`, { signal: AbortSignal.timeout(5000) });
        if (res.status === 200) answered++;
        else failures.push(`${res.status} ${await res.text()}`);
      } catch (err) {
        failures.push(String(err));
      }
      await sleep(250);
    }
  })();
  return {
    stop: async () => {
      on = false;
      await loop;
      return { answered, failures };
    },
  };
}

/** up.sh's environment: free ports, this data dir; the caller's PATH and friends, none of its pubflow, Temporal or
 * Redis settings (a REDIS_URL that answers would be used instead of up.sh's own Redis). */
async function upEnv(dataDir: string, over: Record<string, string>): Promise<NodeJS.ProcessEnv> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!/^(PUBFLOW_|TEMPORAL_|REDIS_|JEST_)/.test(k) && k !== 'NODE_OPTIONS') env[k] = v;
  const [temporalPort, uiPort, redisPort, apiPort, promPort, workerMetricsPort] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  return {
    ...env,
    ...FAULT_ENV,
    PUBFLOW_SHUTDOWN_GRACE: '2s',
    TEMPORAL_PORT: String(temporalPort),
    TEMPORAL_UI_PORT: String(uiPort),
    REDIS_PORT: String(redisPort),
    PUBFLOW_API_PORT: String(apiPort),
    PROMETHEUS_PORT: String(promPort),
    PUBFLOW_WORKER_METRICS_PORT: String(workerMetricsPort),
    PUBFLOW_API_HOST: '127.0.0.1',
    // The test polls every task every 100 ms, past the default 20/s of one key (the limiter: auth-routes.test.ts).
    PUBFLOW_API_RATE_LIMIT: '500/s',
    PUBFLOW_API_RATE_BURST: '1000',
    PUBFLOW_DATA_DIR: dataDir,
    ...over,
  };
}

beforeAll(async () => {
  requireBuiltLib();
  dir = tempDir('make-up');
  endpoint = await WebhookReceiver.start();
  const accountsFile = path.join(dir, 'accounts.json');
  writeFileSync(
    accountsFile,
    JSON.stringify(
      ACCOUNTS.map((id) => ({ id, platform: 'webhook', displayName: id, settings: { url: endpoint.url } })),
    ),
  );
  const media = path.join(dir, 'media');
  mkdirSync(media);
  writeFileSync(path.join(media, 'clip.mp4'), Buffer.alloc(32 * 1024, 7));
  const env = await upEnv(path.join(dir, 'data'), { PUBFLOW_ACCOUNTS_FILE: accountsFile, PUBFLOW_MEDIA_ROOT: media });
  api = `http://127.0.0.1:${env.PUBFLOW_API_PORT}`;
  up = spawn('bash', [path.join(ROOT, 'scripts/up.sh')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env });
  const keep = (b: Buffer) => {
    out += b.toString();
    if (process.env.PUBFLOW_TEST_DEBUG) process.stderr.write(b);
  };
  up.stdout!.on('data', keep);
  up.stderr!.on('data', keep);
  upExit = new Promise((resolve) => up.once('exit', (code, signal) => resolve({ code, signal })));
  await until(
    'make up to print "pubflow is up"',
    () => {
      if (up.exitCode !== null) throw new Error(`up.sh exited ${up.exitCode}`);
      return out.includes('pubflow is up');
    },
    120_000,
  );
  pids();
  const tokenFile = path.join(dir, 'data', 'admin.token');
  auth = { Authorization: `Bearer ${readFileSync(tokenFile, 'utf8').trim()}` };
}, 150_000);

test('make up is closed by default: it made an admin key, says where its token is, and the API wants it', async () => {
  const tokenFile = path.join(dir, 'data', 'admin.token');
  expect(out).toContain(`admin token in ${tokenFile}`);
  expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
  // The keys file holds the token's SHA-256 only.
  const keysFile = readFileSync(path.join(dir, 'data', 'api-keys.json'), 'utf8');
  expect(keysFile).not.toContain(auth.Authorization.slice('Bearer '.length));
  const without = await fetch(`${api}/api/v1/tasks/stats`);
  expect([without.status, without.headers.get('www-authenticate')]).toEqual([401, expect.stringMatching(/^Bearer/)]);
  const withToken = await fetch(`${api}/api/v1/tasks/stats`, { headers: auth });
  expect(withToken.status).toBe(200);
  expect((await fetch(`${api}/healthz`)).status).toBe(200);
});

afterAll(async () => {
  // Normally the last test has stopped the stack already; this only cleans up after a failure.
  if (up && up.exitCode === null && up.signalCode === null) {
    up.kill('SIGTERM');
    await Promise.race([upExit, sleep(60_000)]);
  }
  pids();
  for (const pid of everyPid) if (alive(pid)) process.kill(pid, 'SIGKILL');
  await endpoint?.close();
}, 90_000);

test('kill -9 of the worker under make up: it is back within seconds, the stack never stopped, in-flight uploads become Unconfirmed reviews, queued ones succeed, nothing is sent twice', async () => {
  // Arrange: one worker with 2 upload slots, 6 publishes over 4 accounts through the API. The endpoint holds every
  // upload: 2 are in flight, the other 4 queued (for a slot, or behind their account's upload).
  endpoint.behaviour = () => 'hold';
  const ids: string[] = [];
  for (let i = 0; i < 6; i++) ids.push(await publish(ACCOUNTS[i % ACCOUNTS.length]!, `make-up item ${i}`));
  await until('2 uploads held at the endpoint', () => endpoint.inFlight().length === 2, 60_000);
  await until('every task known to the API', async () => (await Promise.all(ids.map(task))).every(Boolean));
  await sleep(1000); // steady: no third upload starts (both slots are taken)
  const inFlightAtKill = endpoint.inFlight();
  expect(inFlightAtKill).toHaveLength(2);
  const sent = new Set(endpoint.requests.map((r) => r.taskId));
  const queued = ids.filter((id) => !sent.has(id));
  expect(queued).toHaveLength(4);
  const before = pids();
  const watch = watchApi();

  // Act: kill -9 the worker; nobody restarts anything.
  process.kill(before.worker, 'SIGKILL');
  const victims: ReceivedRequest[] = await until(
    'the killed worker’s uploads to be cut off',
    () => inFlightAtKill.every((r) => r.abortedAt !== undefined) && inFlightAtKill,
    10_000,
  );
  endpoint.behaviour = () => ({ status: 200, afterMs: 100 });

  // Assert: up.sh says so and starts a new worker within seconds (its first backoff is 1 s).
  const worker = await until(
    'a new worker',
    () => {
      const now = pids().worker;
      return now !== before.worker && alive(now) && now;
    },
    15_000,
  );
  expect(out).toMatch(/^\[up\] worker exited \(signal KILL\); restarting in 1 s \(restart #1\)$/m);
  // The in-flight uploads become Unconfirmed reviews; the queued ones are published by the new worker.
  const victimIds = victims.map((v) => v.taskId).sort();
  await until(
    'the killed uploads to be Unconfirmed reviews and the queued ones published',
    async () => {
      const docs = await Promise.all(ids.map(task));
      return docs.every((d) =>
        victimIds.includes(d!.task_id) ? d?.review?.open === true : d?.status === 'success' || d?.status === 'failed',
      );
    },
    90_000,
  );
  for (const id of ids) {
    const d = (await task(id))!;
    if (victimIds.includes(id)) {
      expect({ id, status: d.status, kind: d.error_kind, review: d.review?.kind }).toEqual({
        id,
        status: 'failed',
        kind: 'Unconfirmed',
        review: 'Unconfirmed',
      });
    } else {
      expect({ id, status: d.status, attempt: d.attempt, review: d.review }).toEqual({
        id,
        status: 'success',
        attempt: 1,
        review: null,
      });
    }
    expect({ id, requests: endpoint.requestsFor(id).length }).toEqual({ id, requests: 1 });
  }
  const reviews = (await (await fetch(`${api}/api/v1/reviews?kind=Unconfirmed`, { headers: auth })).json()) as {
    items: TaskDoc[];
  };
  expect(reviews.items.map((d) => d.task_id).sort()).toEqual(victimIds);
  expect(endpoint.duplicateKeys()).toEqual([]);
  // The stack never stopped: the API answered throughout, and only the worker was started again.
  const { answered, failures } = await watch.stop();
  expect(failures).toEqual([]);
  expect(answered).toBeGreaterThan(0);
  expect(pids()).toEqual({ ...before, worker });
  expect(up.exitCode).toBeNull();
  expect(out).not.toMatch(/stopping/);
}, 180_000);

test('a process that keeps dying is restarted with a growing delay, and Redis and Temporal come back on their data', async () => {
  // Arrange
  const before = pids();
  const watch = watchApi();

  // Act: kill the API, then its replacement as soon as it is up: the second delay is twice the first.
  process.kill(before.api, 'SIGKILL');
  const api2 = await until('a second API', () => pids().api !== before.api && pids().api);
  process.kill(api2, 'SIGKILL');
  await until('a third API', () => ![before.api, api2].includes(pids().api));
  // Then Redis and Temporal, one after the other, each with kill -9.
  process.kill(before.redis, 'SIGKILL');
  await until('Redis restarted', () => pids().redis !== before.redis);
  process.kill(before.temporal, 'SIGKILL');
  await until('Temporal restarted', () => pids().temporal !== before.temporal);
  await until(
    'the API ready again',
    async () => (await fetch(`${api}/readyz`).catch(() => undefined))?.status === 200,
    60_000,
  );

  // Assert: the log lines, the delays, and work done after the restarts on the same data.
  expect(out).toMatch(/^\[up\] api exited \(signal KILL\); restarting in 1 s \(restart #1\)$/m);
  expect(out).toMatch(/^\[up\] api exited \(signal KILL\); restarting in 2 s \(restart #2\)$/m);
  expect(out).toMatch(/^\[up\] redis exited \(signal KILL\); restarting in 1 s \(restart #1\)$/m);
  expect(out).toMatch(/^\[up\] temporal exited \(signal KILL\); restarting in 1 s \(restart #1\)$/m);
  await watch.stop();
  endpoint.behaviour = () => ({ status: 200 });
  const id = await until('a publish accepted', () =>
    publish(ACCOUNTS[0]!, 'after the restarts').catch(() => undefined),
  );
  const done = await until('it to succeed', async () => ((await task(id))?.status === 'success' ? true : undefined));
  expect(done).toBe(true);
  expect(endpoint.requestsFor(id)).toHaveLength(1);
  // The tasks of the first test are still there: Temporal's SQLite file and Redis's AOF were kept.
  const all = (await (await fetch(`${api}/api/v1/tasks/stats`, { headers: auth })).json()) as {
    total: number;
    success: number;
  };
  expect(all).toMatchObject({ total: 7, success: 5 });
  expect(up.exitCode).toBeNull();
}, 180_000);

test('SIGTERM to make up stops every process it started, and nothing else is left', async () => {
  const started = [...everyPid];
  up.kill('SIGTERM');
  const exit = await upExit;
  expect(exit).toEqual({ code: 0, signal: null });
  for (const name of ['api', 'worker', 'temporal', 'redis']) expect(out).toContain(`[up] ${name} stopped`);
  expect(started.filter(alive)).toEqual([]);
}, 120_000);

test('while it starts, a process that exits stops make up with a non-zero code, and nothing it started is left', async () => {
  // Arrange: a setting the worker and the API refuse.
  const media = path.join(dir, 'media');
  const env = await upEnv(path.join(dir, 'data-bad'), {
    PUBFLOW_MEDIA_ROOT: media,
    PUBFLOW_WORKER_CONCURRENCY: 'none',
  });

  // Act
  const bad = spawn('bash', [path.join(ROOT, 'scripts/up.sh')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env });
  let text = '';
  bad.stdout.on('data', (b: Buffer) => (text += b.toString()));
  bad.stderr.on('data', (b: Buffer) => (text += b.toString()));
  const code = await new Promise<number | null>((resolve) => bad.once('exit', (c) => resolve(c)));

  // Assert: it said which one and why, never restarted it, and stopped the rest.
  const started = [...text.matchAll(/^\[up\] (\w+) started \(pid (\d+)/gm)].map((m) => Number(m[2]));
  started.forEach((pid) => everyPid.add(pid));
  expect({ code, said: /^\[up\] (worker|api) exited; see its log/m.test(text) }).toEqual({ code: 1, said: true });
  expect(text).toContain('PUBFLOW_WORKER_CONCURRENCY');
  expect(text).not.toMatch(/restarting in/);
  expect(text).not.toContain('pubflow is up');
  expect(started.length).toBeGreaterThanOrEqual(3);
  expect(started.filter(alive)).toEqual([]);
}, 120_000);
