/**
 * "The spec is the behaviour" (issue #11 §4): Schemathesis fuzzes the live stack from its own /openapi.json, with an
 * admin key, and finds no 5xx, no response that breaks its schema, no undocumented status code or content type, and
 * no invalid request accepted. The stack is what `make up` runs: a Temporal dev server, redis-server, `node
 * lib/worker.js` and `node lib/api.js` (test/integration/fault-helpers.ts), with a local webhook endpoint as the
 * platform. The run is bounded: a fixed number of examples per operation and a wall-clock budget.
 *
 * Alone: `npx jest test/contract/schemathesis.test.ts`. PUBFLOW_SCHEMATHESIS_SEED=<n> replays another seed,
 * PUBFLOW_SCHEMATHESIS_MAX_EXAMPLES=<n> runs more examples; on a failure Schemathesis's report (with a curl line
 * for each failing case) is printed.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { addKey } from '../../src/auth/keys-file';
import { ROOT, startFaultStack, type FaultStack } from '../integration/fault-helpers';

/** Where scripts/provision.sh installs it (.tools/env names it; PUBFLOW_SCHEMATHESIS overrides). */
function schemathesisBinary(): string {
  const bin = process.env.PUBFLOW_SCHEMATHESIS || path.join(ROOT, '.tools', 'schemathesis', 'bin', 'schemathesis');
  try {
    accessSync(bin, constants.X_OK);
  } catch {
    throw new Error(
      `Schemathesis is not installed (no executable at ${bin}): run \`make tools\` (scripts/provision.sh installs ` +
        'the pinned version from PyPI into .tools/schemathesis)',
    );
  }
  return bin;
}

const SEED = Number(process.env.PUBFLOW_SCHEMATHESIS_SEED ?? 20261202);
const MAX_EXAMPLES = Number(process.env.PUBFLOW_SCHEMATHESIS_MAX_EXAMPLES ?? 20);
/** Schemathesis's own budget for the whole run; the test kills it past HARD_LIMIT_MS. */
const MAX_TIME_S = 120;
const HARD_LIMIT_MS = (MAX_TIME_S + 60) * 1000;

/**
 * Every check but two: `positive_data_acceptance` (a schema-valid publish for an account or file that does not exist
 * is rightly a 400). `ignored_auth` and `missing_required_header` run: every /api/v1 route declares the bearer
 * scheme, and the API must refuse a request without the key.
 */
const EXCLUDED_CHECKS = ['positive_data_acceptance'];

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
  ms: number;
}

function runSchemathesis(bin: string, args: string[], cwd: string): Promise<RunResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, {
      cwd,
      env: { ...process.env, NO_COLOR: '1', COLUMNS: '160' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr.on('data', (b: Buffer) => (output += b.toString()));
    const timer = setTimeout(() => child.pid && process.kill(child.pid, 'SIGKILL'), HARD_LIMIT_MS);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output, ms: Date.now() - started });
    });
  });
}

async function api(stack: FaultStack, token: string, method: string, route: string, body?: unknown) {
  const res = await fetch(`http://127.0.0.1:${stack.apiPort}${route}`, {
    method,
    headers: {
      Authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = (await res.json()) as Record<string, unknown>;
  if (res.status >= 300) throw new Error(`${method} ${route} answered ${res.status}: ${JSON.stringify(json)}`);
  return json;
}

/** A few tasks in every state the routes read (done, in review, scheduled, a batch), so lists have documents. */
async function seed(stack: FaultStack, token: string): Promise<string[]> {
  const [ok, bad] = stack.accountIds as [string, string];
  stack.endpoint.behaviour = (r) => (r.accountId === bad ? { status: 500 } : { status: 200 });
  const video = { path: stack.media[0] };
  const done = await api(stack, token, 'POST', '/api/v1/publish', {
    platform: 'webhook',
    accountId: ok,
    video,
    title: 'seed ok',
  });
  const review = await api(stack, token, 'POST', '/api/v1/publish', {
    platform: 'webhook',
    accountId: bad,
    video,
    title: 'seed review',
  });
  const scheduled = await api(stack, token, 'POST', '/api/v1/publish', {
    platform: 'webhook',
    accountId: ok,
    video,
    title: 'seed scheduled',
    publishAt: new Date(Date.now() + 3_600_000).toISOString(),
  });
  const batch = await api(stack, token, 'POST', '/api/v1/publish/batch', {
    defaults: { platform: 'webhook', accountId: ok, video },
    items: [{ title: 'seed batch 1' }, { title: 'seed batch 2' }],
  });
  await stack.waitUntil('the seed tasks to settle', async () => {
    const a = await api(stack, token, 'GET', `/api/v1/tasks/${String(done.taskId)}`);
    const b = await api(stack, token, 'GET', `/api/v1/tasks/${String(review.taskId)}`);
    return a.status === 'success' && (b.review as { open?: boolean } | null)?.open === true;
  });
  return [done, review, scheduled, batch].map((t) => String(t.taskId));
}

/**
 * Schemathesis's config: dictionaries of real values that it mixes into generated requests (half the task ids, most
 * of the accounts, platforms and media paths), so its requests reach past "unknown task" and "unknown account" to the
 * workflows themselves: publishes that upload, cancels, deletes and decisions on real tasks.
 */
function configToml(stack: FaultStack, taskIds: string[]): string {
  const list = (values: string[]) => `[${values.map((v) => JSON.stringify(v)).join(', ')}]`;
  const use = (dictionary: string, probability: number) =>
    `{ dictionary = "${dictionary}", probability = ${probability} }`;
  return [
    `[dictionaries.tasks]\nvalues = ${list(taskIds)}`,
    `[dictionaries.accounts]\nvalues = ${list(stack.accountIds)}`,
    `[dictionaries.platforms]\nvalues = ["webhook"]`,
    `[dictionaries.media]\nvalues = ${list(stack.media)}`,
    '[parameters]',
    `"path.id" = ${use('tasks', 0.5)}`,
    `"path.taskId" = ${use('tasks', 0.5)}`,
    `"body.accountId" = ${use('accounts', 0.8)}`,
    `"body.platform" = ${use('platforms', 0.8)}`,
    `"body.video.path" = ${use('media', 0.8)}`,
    '[[operations]]',
    'include-path = "/api/v1/accounts/{id}/reactivate"',
    `parameters = { "path.id" = ${use('accounts', 0.5)} }`,
    '',
  ].join('\n');
}

describe('Schemathesis against the live stack', () => {
  it(
    'finds no 5xx, no response off its schema and no undocumented status code or content type',
    async () => {
      // Arrange
      const bin = schemathesisBinary();
      const stack = await startFaultStack({ name: 'schemathesis', accounts: 2 });
      try {
        const keysFile = path.join(stack.dir, 'api-keys.json');
        const { token } = addKey(keysFile, { name: 'schemathesis', role: 'admin' });
        await stack.startWorker('worker');
        // The per-key rate limit would answer most of the run with 429 (documented, but it would test nothing else).
        await stack.startApi('api', { PUBFLOW_API_KEYS_FILE: keysFile, PUBFLOW_API_RATE_LIMIT: 'off' });
        const taskIds = await seed(stack, token);
        const reportDir = path.join(stack.dir, 'schemathesis-report');
        const configFile = path.join(stack.dir, 'schemathesis.toml');
        writeFileSync(configFile, configToml(stack, taskIds));

        // Act
        const run = await runSchemathesis(
          bin,
          [
            '--config-file',
            configFile,
            'run',
            `http://127.0.0.1:${stack.apiPort}/openapi.json`,
            '--header',
            `Authorization: Bearer ${token}`,
            '--checks',
            'all',
            '--exclude-checks',
            EXCLUDED_CHECKS.join(','),
            '--phases',
            'examples,coverage,fuzzing',
            '--max-examples',
            String(MAX_EXAMPLES),
            '--max-time',
            String(MAX_TIME_S),
            '--seed',
            String(SEED),
            '--workers',
            '1',
            '--request-timeout',
            '20',
            '--generation-database',
            'none',
            '--suppress-health-check',
            'too_slow',
            '--report',
            'junit',
            '--report-dir',
            reportDir,
          ],
          stack.dir,
        );

        // Assert
        const summary = run.output.split('\n').filter((l) => /test cases|operations|seed|passed|failed|error/i.test(l));
        console.log(
          `schemathesis: exit ${run.code} in ${(run.ms / 1000).toFixed(1)} s (seed ${SEED}, max ${MAX_EXAMPLES} ` +
            `examples per operation)\n${summary.slice(-12).join('\n')}`,
        );
        if (run.code !== 0) {
          let junit = '';
          try {
            junit = readFileSync(path.join(reportDir, 'junit.xml'), 'utf8').slice(0, 4000);
          } catch {
            /* the run may have stopped before writing it */
          }
          throw new Error(
            `Schemathesis exited ${run.code ?? run.signal} after ${(run.ms / 1000).toFixed(1)} s:\n${run.output}` +
              (junit ? `\n--- junit ---\n${junit}` : '') +
              `\n--- stack ---\n${stack.diagnostics()}`,
          );
        }
        expect(run.code).toBe(0);
      } finally {
        await stack.close();
      }
    },
    HARD_LIMIT_MS + 180_000,
  );
});
