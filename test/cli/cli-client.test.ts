/**
 * The built `pubflow` command's side of the HTTP conversation: which token it sends, and what it says and exits with
 * when the API refuses the token (401/403, as the lead's access-control design answers), cannot be reached, or the
 * command is misused. The far side here is a local HTTP server on 127.0.0.1 that records each request and answers
 * as told; the live stack is exercised in cli-live.test.ts.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../helpers/servers';
import { requireBuiltCli, runCli, shown, type CliRun } from './run-cli';

interface Seen {
  method: string;
  url: string;
  authorization: string | undefined;
}

let server: http.Server;
let url: string;
let dir: string;
const seen: Seen[] = [];
type Answer = { status: number; body: unknown; headers?: Record<string, string> };
const STATS: Answer = {
  status: 200,
  body: { pending: 0, running: 0, success: 1, failed: 0, retry: 0, cancelled: 0, total: 1 },
};
let answer: (req: http.IncomingMessage) => Answer = () => STATS;

requireBuiltCli();
beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pubflow-cli-client-'));
  server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization });
    req.resume();
    req.on('end', () => {
      const a = answer(req);
      res.writeHead(a.status, { 'content-type': 'application/json', ...a.headers });
      res.end(JSON.stringify(a.body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  seen.length = 0;
  answer = () => STATS;
});

const outcome = (r: CliRun) => ({ code: r.code, output: shown(r) });
/** An empty data dir: no admin.token to fall back on unless the test writes one. */
const emptyDataDir = () => mkdtempSync(path.join(dir, 'data-'));

test('PUBFLOW_TOKEN is sent as a Bearer token on every request', async () => {
  const r = await runCli(['stats'], { env: { PUBFLOW_URL: url, PUBFLOW_TOKEN: 'pf_from_env' }, cwd: dir });
  expect(outcome(r)).toMatchObject({ code: 0 });
  expect(seen).toEqual([{ method: 'GET', url: '/api/v1/tasks/stats', authorization: 'Bearer pf_from_env' }]);
  expect(r.stdout).toMatch(/^STATUS\s+TASKS\n/);
  expect(r.stdout).toMatch(/^success\s+1$/m);
});

test('without PUBFLOW_TOKEN the token in data/admin.token is used (PUBFLOW_DATA_DIR moves it, as for make up)', async () => {
  const work = mkdtempSync(path.join(dir, 'cwd-'));
  mkdirSync(path.join(work, 'data'));
  writeFileSync(path.join(work, 'data', 'admin.token'), 'pf_admin_here\n', { mode: 0o600 });
  const here = await runCli(['stats', '--json'], { env: { PUBFLOW_URL: url }, cwd: work });
  expect(outcome(here)).toMatchObject({ code: 0 });

  const moved = emptyDataDir();
  writeFileSync(path.join(moved, 'admin.token'), 'pf_admin_moved\n', { mode: 0o600 });
  const there = await runCli(['stats', '--json'], { env: { PUBFLOW_URL: url, PUBFLOW_DATA_DIR: moved }, cwd: work });
  expect(outcome(there)).toMatchObject({ code: 0 });

  expect(seen.map((s) => s.authorization)).toEqual(['Bearer pf_admin_here', 'Bearer pf_admin_moved']);
});

test('a refused token (401) is exit 3 with a message naming where the token came from, never the token', async () => {
  answer = () => ({
    status: 401,
    headers: { 'www-authenticate': 'Bearer' },
    body: { error: { code: 'unauthorized', message: 'a valid API key is required', details: null } },
  });
  const fromEnv = await runCli(['tasks'], { env: { PUBFLOW_URL: url, PUBFLOW_TOKEN: 'pf_wrong_secret' }, cwd: dir });
  expect(outcome(fromEnv)).toMatchObject({ code: 3 });
  expect(fromEnv.stderr).toContain('the API refused the token (401');
  expect(fromEnv.stderr).toContain('Token used: PUBFLOW_TOKEN.');
  expect(fromEnv.stdout + fromEnv.stderr).not.toContain('pf_wrong_secret');

  const data = emptyDataDir();
  writeFileSync(path.join(data, 'admin.token'), 'pf_stale_admin\n');
  const fromFile = await runCli(['tasks'], { env: { PUBFLOW_URL: url, PUBFLOW_DATA_DIR: data }, cwd: dir });
  expect(outcome(fromFile)).toMatchObject({ code: 3 });
  // Shown relative to the working directory when inside it.
  expect(fromFile.stderr).toContain(`Token used: ${path.relative(dir, path.join(data, 'admin.token'))}.`);
  expect(fromFile.stdout + fromFile.stderr).not.toContain('pf_stale_admin');

  const none = await runCli(['tasks'], { env: { PUBFLOW_URL: url, PUBFLOW_DATA_DIR: emptyDataDir() }, cwd: dir });
  expect(outcome(none)).toMatchObject({ code: 3 });
  expect(none.stderr).toMatch(/Token used: no token \(PUBFLOW_TOKEN is not set and there is no .*admin\.token\)/);
  expect(seen.at(-1)?.authorization).toBeUndefined();
});

test('a token whose role is too low (403) is exit 3 naming the role needed and the role held', async () => {
  answer = () => ({
    status: 403,
    body: { error: { code: 'forbidden', message: 'forbidden', details: { required: 'operator', role: 'viewer' } } },
  });
  const r = await runCli(['retry', 'pub-1'], { env: { PUBFLOW_URL: url, PUBFLOW_TOKEN: 'pf_viewer_token' }, cwd: dir });
  expect(outcome(r)).toMatchObject({ code: 3 });
  expect(r.stderr).toContain("POST /api/v1/reviews/pub-1/retry needs role operator; the token's role is viewer (403)");
  expect(r.stderr).toContain('Token used: PUBFLOW_TOKEN.');
  expect(r.stderr).not.toContain('pf_viewer_token');
  expect(seen).toHaveLength(1); // a refused POST is not sent again
});

test('an API that cannot be reached is exit 3, saying where it looked', async () => {
  const port = await freePort();
  const r = await runCli(['stats'], { env: { PUBFLOW_URL: `http://127.0.0.1:${port}`, PUBFLOW_TOKEN: 'x' }, cwd: dir });
  expect(outcome(r)).toMatchObject({ code: 3 });
  expect(r.stderr).toContain(`cannot reach the pubflow API at http://127.0.0.1:${port} (ECONNREFUSED)`);
});

test('usage errors are exit 2 and send nothing; --help is exit 0 and lists the commands', async () => {
  const env = { PUBFLOW_URL: url, PUBFLOW_TOKEN: 'x' };
  const cases = [
    ['frobnicate'],
    ['publish', '--platform', 'local'],
    ['tasks', '--status', 'weird'],
    ['tasks', '--limit', 'lots'],
    ['retry-all'],
    ['watch', 'pub-1', '--interval', 'often'],
    ['keys', 'create', '--name', 'x', '--role', 'superuser'],
  ];
  for (const args of cases) {
    const r = await runCli(args, { env, cwd: dir });
    expect({ args, ...outcome(r) }).toMatchObject({ args, code: 2 });
  }
  expect(seen).toEqual([]);

  const help = await runCli(['--help'], { env, cwd: dir });
  expect(outcome(help)).toMatchObject({ code: 0 });
  for (const cmd of [
    'publish',
    'batch',
    'status',
    'watch',
    'tasks',
    'reviews',
    'retry',
    'resolve',
    'discard',
    'retry-all',
    'cancel',
    'reschedule',
    'accounts',
    'reactivate',
    'stats',
    'keys',
  ])
    expect(help.stdout).toMatch(new RegExp(`^  ${cmd} `, 'm'));
});

test('keys create prints a new token once on stdout and stores only its hash', async () => {
  const file = path.join(dir, 'keys.json');
  const r = await runCli(['keys', 'create', '--name', 'ci-bot', '--role', 'publisher', '--file', file], { cwd: dir });
  expect(outcome(r)).toMatchObject({ code: 0 });
  const token = r.stdout.trim();
  expect(token).toMatch(/^pf_[A-Za-z0-9_-]{43}$/);
  expect(r.stderr).toContain('created key "ci-bot" (role publisher)');
  const list = await runCli(['keys', 'list', '--file', file, '--json'], { cwd: dir });
  expect(JSON.parse(list.stdout)).toEqual([{ name: 'ci-bot', role: 'publisher', createdAt: expect.any(String) }]);
  expect(list.stdout).not.toContain(token);
  const dup = await runCli(['keys', 'create', '--name', 'ci-bot', '--role', 'viewer', '--file', file], { cwd: dir });
  expect(outcome(dup)).toMatchObject({ code: 2 });
});
