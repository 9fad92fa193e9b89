/**
 * Batch benchmark (issue 4, "Benchmarks"): one N-item batch against N singles on the same fresh servers.
 *
 * Starts its own Temporal dev server (SQLite in a temp dir), redis-server, one worker process (`node lib/worker.js`)
 * and the API process (`node lib/api.js`), all on 127.0.0.1 free ports; publishes with the built-in `demo` account
 * (platform `local`, copying a 1-byte file), then measures:
 *   (a) the wall time of one batch of N items (POST /api/v1/publish/batch) until the batch doc's counts.success == N;
 *   (b) the wall time of N singles (POST /api/v1/publish, client concurrency 50) until all are `success`;
 *   (c) the worker's peak RSS (VmHWM at the end; VmRSS sampled every second);
 *   (d) the largest history (events, bytes) of any run of the batch workflow, and whether any run hit a limit.
 * Prints one JSON line (prefixed `BENCH_RESULT `) and appends a row to docs/benchmarks.md.
 * Ctrl-C or SIGTERM (to this process or to scripts/bench.sh) stops the servers and processes it started, then exits.
 *
 * Run from the repository root after `npm run build` (lib/ must be current): `scripts/bench.sh` (or `make bench`).
 * Env: BENCH_N (1000), BENCH_BATCH_CONCURRENCY (200), BENCH_SINGLES_CONCURRENCY (50), BENCH_WORKER_CONCURRENCY (20),
 * BENCH_SKIP_SINGLES=1, BENCH_TIMEOUT_S (per phase; default max(1800, N)), BENCH_NO_RECORD=1 (do not touch docs).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection, type HistoryAndWorkflowId } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { temporal } from '@temporalio/proto';
import {
  freePort,
  startDevServer,
  startRedis,
  tempDir,
  type DevServer,
  type RedisServer,
} from '../test/helpers/servers';
import { addKey } from '../src/auth/keys-file';
import { CLIENT_CHANNEL_ARGS } from '../src/connections';
import { prebuiltWorkflowBundle } from '../src/prebuilt-workflows';
import { readToolEnv } from '../test/helpers/tools';

const ROOT = process.env.BENCH_ROOT ?? process.cwd();
const N = intEnv('BENCH_N', 1000);
const BATCH_CONCURRENCY = intEnv('BENCH_BATCH_CONCURRENCY', 200);
const SINGLES_CONCURRENCY = intEnv('BENCH_SINGLES_CONCURRENCY', 50);
const WORKER_CONCURRENCY = intEnv('BENCH_WORKER_CONCURRENCY', 20);
const SKIP_SINGLES = process.env.BENCH_SKIP_SINGLES === '1';
/** Which phases run, in this order: the batch, then the ceiling, then the singles (BENCH_PHASES=ceiling,singles). */
const PHASES = new Set(
  (process.env.BENCH_PHASES ?? 'batch,ceiling,singles')
    .split(',')
    .map((p) => p.trim())
    .filter((p) => !(SKIP_SINGLES && p === 'singles')),
);
/** Histories fetched whole per kind of workflow to count events by type (the totals come from visibility). */
const HISTORY_SAMPLE = intEnv('BENCH_HISTORY_SAMPLE', 100);
const CEILING_QUEUE = 'pubflow-bench-ceiling';
const PHASE_TIMEOUT_MS = intEnv('BENCH_TIMEOUT_S', Math.max(1800, N)) * 1000;
const TASK_QUEUE = 'pubflow-bench';
/**
 * 1 (default): every item goes to the built-in `demo` account. K > 1: an accounts file with K `local` accounts
 * (bench-0 .. bench-K-1), items spread round-robin. pubflow runs at most one upload at a time per account (the
 * queue gates), so with one account both phases measure that per-account serialization.
 */
const ACCOUNTS = intEnv('BENCH_ACCOUNTS', 1);
const accountFor = (i: number) => (ACCOUNTS === 1 ? 'demo' : `bench-${i % ACCOUNTS}`);

function intEnv(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got ${v}`);
  return n;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (msg: string) => console.error(`[bench ${new Date().toISOString()}] ${msg}`);

// ---------------------------------------------------------------------------------------------------------------
// processes

interface Proc {
  name: string;
  child: ChildProcess;
  logFile: string;
}
const procs: Proc[] = [];

function spawnNode(name: string, script: string, env: NodeJS.ProcessEnv, logDir: string): Proc {
  const logFile = path.join(logDir, `${name}.log`);
  const out = createWriteStream(logFile);
  // BENCH_NODE_ARGS: extra node flags for the processes the bench starts, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`
  // for the profiles of docs/benchmarks.md (node refuses --cpu-prof in NODE_OPTIONS).
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, path.isAbsolute(script) ? script : path.join(ROOT, script)], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(out, { end: false });
  child.stderr?.pipe(out, { end: false });
  const p = { name, child, logFile };
  procs.push(p);
  return p;
}

async function stopProc(p: Proc, graceMs = 15_000): Promise<void> {
  const { child } = p;
  if (child.exitCode !== null || child.signalCode !== null || !child.pid) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(t);
}

process.on('exit', () => {
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
});

function procStatus(pid: number, field: 'VmRSS' | 'VmHWM'): number | null {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** User + system CPU seconds a process has used so far (/proc/<pid>/stat, clock ticks of 1/100 s). */
function cpuSeconds(pid: number | undefined): number | null {
  if (!pid) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

/** CPU seconds per named process over a phase. */
function cpuMeter(pids: Record<string, number | undefined>): () => Record<string, number | null> {
  const start = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid)]));
  return () =>
    Object.fromEntries(
      Object.entries(pids).map(([k, pid]) => {
        const a = start[k];
        const b = cpuSeconds(pid);
        return [k, a === null || a === undefined || b === null ? null : Math.round((b - a) * 10) / 10];
      }),
    );
}

// ---------------------------------------------------------------------------------------------------------------
// history and visibility counts

const EventType = temporal.api.enums.v1.EventType;
const CLOSE_EVENTS = new Set<number>([
  EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
  EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
  EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
  EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
  EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
  EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
]);
/**
 * Events that make Temporal write the run's visibility record: its start, each search-attribute upsert, each memo
 * update (WorkflowPropertiesModified) and its close.
 */
const VISIBILITY_EVENTS = new Set<number>([
  EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
  EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
  EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED,
  ...CLOSE_EVENTS,
]);

interface HistoryStats {
  /** Runs that matched the visibility query. */
  runs: number;
  /** Sum of their history lengths (from visibility: exact, no history fetched). */
  events: number;
  /** Runs whose whole history was read. */
  sampled: number;
  /** Per sampled run: events by type (EVENT_TYPE_ prefix dropped) and visibility writes. */
  perRunByType: Record<string, number>;
  visibilityWritesPerRun: number;
  /**
   * The sampled histories replayed against lib/'s workflow bundle, as a worker replays a run it evicted: how many
   * failed (a nondeterminism the run may hit after any cache eviction or restart), with the first messages. Absent for
   * the ceiling's workflows (not in that bundle).
   */
  replay?: { replayed: number; failed: number; firstFailures: string[] };
}

async function replaySample(histories: HistoryAndWorkflowId[]): Promise<NonNullable<HistoryStats['replay']>> {
  const out = { replayed: 0, failed: 0, firstFailures: [] as string[] };
  const workflowBundle = prebuiltWorkflowBundle(path.join(ROOT, 'lib'));
  for await (const r of Worker.runReplayHistories({ workflowBundle }, histories)) {
    out.replayed++;
    if (!r.error) continue;
    out.failed++;
    if (out.firstFailures.length < 3) out.firstFailures.push(`${r.workflowId}: ${r.error.message.slice(0, 300)}`);
  }
  return out;
}

async function historyStats(client: Client, query: string, opts: { replay?: boolean } = {}): Promise<HistoryStats> {
  const runs: Array<{ workflowId: string; runId: string }> = [];
  let events = 0;
  for await (const w of client.workflow.list({ query })) {
    runs.push({ workflowId: w.workflowId, runId: w.runId });
    events += w.historyLength;
  }
  // An even spread over the runs, not the first ones (visibility lists newest first).
  const step = Math.max(1, Math.floor(runs.length / HISTORY_SAMPLE));
  const sample = runs.filter((_, i) => i % step === 0).slice(0, HISTORY_SAMPLE);
  const byType: Record<string, number> = {};
  let visibility = 0;
  const histories: HistoryAndWorkflowId[] = [];
  await mapBounded(sample.length, 8, async (i) => {
    const r = sample[i]!;
    const h = await client.workflow.getHandle(r.workflowId, r.runId).fetchHistory();
    if (opts.replay !== false) histories.push({ workflowId: r.workflowId, history: h });
    for (const e of h.events ?? []) {
      const t = Number(e.eventType ?? 0);
      const name = (EventType[t] ?? String(t)).replace(/^EVENT_TYPE_/, '');
      byType[name] = (byType[name] ?? 0) + 1;
      if (VISIBILITY_EVENTS.has(t)) visibility++;
    }
  });
  const n = Math.max(1, sample.length);
  const perRunByType = Object.fromEntries(
    Object.entries(byType)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => [k, Math.round((v / n) * 100) / 100]),
  );
  return {
    runs: runs.length,
    events,
    sampled: sample.length,
    perRunByType,
    visibilityWritesPerRun: Math.round((visibility / n) * 100) / 100,
    ...(opts.replay !== false ? { replay: await replaySample(histories) } : {}),
  };
}

/** What one publish costs Temporal: its own runs, plus its share of the gate runs (and the batch's own runs). */
interface PublishCost {
  perPublish: { events: number; visibilityWrites: number };
  parts: Record<string, HistoryStats>;
}

/** One line per phase: how many sampled histories replayed, and any that did not (a finding, not a bench failure). */
function logReplays(phase: string, cost: PublishCost) {
  for (const [part, st] of Object.entries(cost.parts)) {
    if (!st.replay) continue;
    const { replayed, failed, firstFailures } = st.replay;
    log(
      `${phase} replay ${part}: ${replayed} sampled histories replayed, ${failed} failed${failed ? `: ${firstFailures.join(' | ')}` : ''}`,
    );
  }
}

function costOf(n: number, parts: Record<string, HistoryStats>): PublishCost {
  let events = 0;
  let vis = 0;
  for (const p of Object.values(parts)) {
    events += p.events;
    vis += p.visibilityWritesPerRun * p.runs;
  }
  return {
    perPublish: { events: Math.round((events / n) * 10) / 10, visibilityWrites: Math.round((vis / n) * 100) / 100 },
    parts,
  };
}

const since = (from: Date, to?: Date) =>
  `StartTime >= '${from.toISOString()}'${to ? ` AND StartTime < '${to.toISOString()}'` : ''}`;

// ---------------------------------------------------------------------------------------------------------------
// HTTP

let API = '';
/** The benchmark's own publisher key (the API lets nobody in without one). */
let AUTH: { Authorization: string } = { Authorization: '' };

/** The few response fields the benchmark reads (batch doc, stats, publish answers). */
interface ApiBody {
  taskId?: string;
  status?: string;
  success?: number;
  failed?: number;
  counts?: Record<string, number>;
}

async function http(method: string, p: string, body?: unknown): Promise<{ status: number; json: ApiBody | null }> {
  const res = await fetch(`${API}${p}`, {
    method,
    headers: body === undefined ? { ...AUTH } : { 'content-type': 'application/json', ...AUTH },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json: ApiBody | null = null;
  try {
    json = text ? (JSON.parse(text) as ApiBody) : null;
  } catch {
    json = { status: text.slice(0, 200) };
  }
  return { status: res.status, json };
}

async function waitUntil(what: string, timeoutMs: number, check: () => Promise<boolean>, everyMs = 250) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    for (const p of procs)
      if (p.child.exitCode !== null) throw new Error(`${p.name} exited with ${p.child.exitCode} (log ${p.logFile})`);
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

async function mapBounded<T>(n: number, limit: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(n);
  let next = 0;
  const lane = async () => {
    while (next < n) {
      const i = next++;
      out[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, lane));
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// the benchmark

const ITEM = { platform: 'local', accountId: 'demo', video: { path: 'b.mp4' } };

interface BatchResult {
  batchId: string;
  submitMs: number;
  wallMs: number;
  /** When Temporal visibility first showed all N children completed (polled every 2 s; null: not seen first). */
  childrenDoneMs: number | null;
  counts: unknown;
  status: string;
  closeStatus: string | null;
  runs: number;
  maxHistoryEvents: number;
  maxHistoryBytes: number;
  runStatuses: Record<string, number>;
  workflowTaskFailures: number;
  workflowTaskTimeouts: number;
  workflowTaskFailureCauses: string[];
  terminated: string[];
  childrenNotCompleted: number | null;
}

async function runBatch(client: Client): Promise<BatchResult> {
  const items = Array.from({ length: N }, (_, i) =>
    ACCOUNTS === 1 ? { title: `bench ${i}` } : { title: `bench ${i}`, accountId: accountFor(i) },
  );
  const t0 = Date.now();
  const sub = await http('POST', '/api/v1/publish/batch', {
    items,
    defaults: ITEM,
    concurrency: BATCH_CONCURRENCY,
  });
  const submitMs = Date.now() - t0;
  if (sub.status !== 202) throw new Error(`batch submit answered ${sub.status}: ${JSON.stringify(sub.json)}`);
  const batchId = String(sub.json?.taskId);
  log(`batch ${batchId} accepted in ${submitMs} ms; waiting for counts.success == ${N}`);
  let doc: ApiBody = {};
  let lastLog = 0;
  // Secondary clock, from Temporal rather than the projection: when every child workflow has completed.
  let childrenDoneMs: number | null = null;
  let lastChildCount = 0;
  const childQuery = `WorkflowId STARTS_WITH '${batchId}-' AND ExecutionStatus = 'Completed'`;
  await waitUntil(
    `batch ${batchId} counts.success == ${N}`,
    PHASE_TIMEOUT_MS,
    async () => {
      const r = await http('GET', `/api/v1/tasks/${batchId}`);
      if (r.status !== 200) return false;
      doc = r.json ?? {};
      if (childrenDoneMs === null && Date.now() - lastChildCount > 2000) {
        lastChildCount = Date.now();
        const c = await client.workflow.count(childQuery).catch(() => null);
        if (c && c.count >= N) childrenDoneMs = Date.now() - t0;
      }
      if (Date.now() - lastLog > 10_000) {
        lastLog = Date.now();
        log(`batch counts ${JSON.stringify(doc.counts)} status ${doc.status}`);
      }
      if (doc.status === 'failed' || doc.status === 'cancelled')
        throw new Error(`batch ended ${doc.status}: ${JSON.stringify(doc.counts)}`);
      return doc.counts?.success === N;
    },
    500,
  );
  const wallMs = Date.now() - t0;
  log(`batch done in ${wallMs} ms: ${JSON.stringify(doc.counts)}`);

  // Let the parent close (it stays open until every child is terminally settled), then inspect every run.
  const handle = client.workflow.getHandle(batchId);
  let closeStatus: string | null = null;
  await waitUntil(
    `batch workflow ${batchId} to close`,
    60_000,
    async () => {
      const d = await handle.describe();
      closeStatus = d.status.name;
      return d.status.name !== 'RUNNING';
    },
    500,
  ).catch((err: Error) => log(`note: ${err.message}`));
  // Visibility is eventually consistent: wait until the closed run shows there too.
  await waitUntil(
    'visibility of the closed batch run',
    30_000,
    async () => {
      for await (const w of client.workflow.list({
        query: `WorkflowId = '${batchId}' AND ExecutionStatus != 'Running'`,
      }))
        if (w.status.name !== 'CONTINUED_AS_NEW') return true;
      return false;
    },
    1000,
  ).catch((err: Error) => log(`note: ${err.message}`));

  let runs = 0;
  let maxHistoryEvents = 0;
  let maxHistoryBytes = 0;
  const runStatuses: Record<string, number> = {};
  const terminated: string[] = [];
  const causes = new Set<string>();
  let workflowTaskFailures = 0;
  let workflowTaskTimeouts = 0;
  for await (const w of client.workflow.list({ query: `WorkflowId = '${batchId}'` })) {
    runs++;
    runStatuses[w.status.name] = (runStatuses[w.status.name] ?? 0) + 1;
    maxHistoryEvents = Math.max(maxHistoryEvents, w.historyLength);
    maxHistoryBytes = Math.max(maxHistoryBytes, w.historySize ?? 0);
    // Look inside each run for failed workflow tasks and terminations (where limit errors show up).
    const history = await client.workflow.getHandle(batchId, w.runId).fetchHistory();
    for (const e of history.events ?? []) {
      if (e.workflowTaskFailedEventAttributes) {
        workflowTaskFailures++;
        const a = e.workflowTaskFailedEventAttributes;
        causes.add(`${String(a.cause)}: ${(a.failure?.message ?? '').slice(0, 200)}`);
      }
      // Sticky-queue schedule-to-start timeouts: the worker was too busy; the task then replays the whole history.
      if (e.workflowTaskTimedOutEventAttributes) workflowTaskTimeouts++;
      if (e.workflowExecutionTerminatedEventAttributes)
        terminated.push(`${w.runId}: ${e.workflowExecutionTerminatedEventAttributes.reason ?? ''}`);
      if (e.workflowExecutionFailedEventAttributes)
        terminated.push(`${w.runId} failed: ${e.workflowExecutionFailedEventAttributes.failure?.message ?? ''}`);
    }
  }
  let childrenNotCompleted: number | null = null;
  try {
    const c = await client.workflow.count(`WorkflowId STARTS_WITH '${batchId}-' AND ExecutionStatus != 'Completed'`);
    childrenNotCompleted = c.count;
  } catch (err) {
    log(`note: counting children failed: ${(err as Error).message}`);
  }
  return {
    batchId,
    submitMs,
    wallMs,
    childrenDoneMs,
    counts: doc.counts,
    status: doc.status ?? '?',
    closeStatus,
    runs,
    maxHistoryEvents,
    maxHistoryBytes,
    runStatuses,
    workflowTaskFailures,
    workflowTaskTimeouts,
    workflowTaskFailureCauses: [...causes],
    terminated,
    childrenNotCompleted,
  };
}

interface CeilingResult {
  submitMs: number;
  wallMs: number;
  workerPeakRssMiB: number | null;
  cpuS: Record<string, number | null>;
}

/**
 * The ceiling: N starts of an empty workflow running one no-op activity (bench/ceiling-workflow.ts), from
 * SINGLES_CONCURRENCY concurrent clients as the singles, on the same server, served by one worker process of its own
 * (bench/ceiling-worker.ts) with the same number of activity slots. Straight to Temporal: no API, no Redis.
 */
async function runCeiling(client: Client, env: NodeJS.ProcessEnv, logDir: string, serverPid: number) {
  const worker = spawnNode(
    'ceiling-worker',
    path.join(__dirname, 'ceiling-worker.js'),
    {
      ...env,
      BENCH_CEILING_QUEUE: CEILING_QUEUE,
      BENCH_WORKER_CONCURRENCY: String(WORKER_CONCURRENCY),
      BENCH_ROOT: ROOT,
    },
    logDir,
  );
  await waitUntil('the ceiling worker', 120_000, async () =>
    readFileSync(worker.logFile, 'utf8').includes('worker started'),
  );
  const stamp = Date.now().toString(36);
  const cpu = cpuMeter({ server: serverPid, worker: worker.child.pid });
  const t0 = Date.now();
  const startedAt = new Date(t0 - 1000);
  await mapBounded(N, SINGLES_CONCURRENCY, async (i) => {
    await client.workflow.start('ceiling', { taskQueue: CEILING_QUEUE, workflowId: `ceiling-${stamp}-${i}`, args: [] });
  });
  const submitMs = Date.now() - t0;
  const query = `WorkflowType = 'ceiling' AND WorkflowId STARTS_WITH 'ceiling-${stamp}-'`;
  await waitUntil(
    `${N} ceiling workflows to complete`,
    PHASE_TIMEOUT_MS,
    async () => (await client.workflow.count(`${query} AND ExecutionStatus = 'Completed'`)).count >= N,
    500,
  );
  const wallMs = Date.now() - t0;
  const cpuS = cpu();
  const workerPeakRssMiB = mib(procStatus(worker.child.pid!, 'VmHWM'));
  await stopProc(worker);
  procs.splice(procs.indexOf(worker), 1); // stopped on purpose: later waits must not take it for a crash
  log(`ceiling: ${N} in ${wallMs} ms (${Math.round((N / wallMs) * 10000) / 10}/s)`);
  const cost = costOf(N, {
    ceiling: await historyStats(client, `${query} AND ${since(startedAt)}`, { replay: false }),
  });
  return { result: { submitMs, wallMs, workerPeakRssMiB, cpuS } satisfies CeilingResult, cost };
}

interface SinglesResult {
  submitMs: number;
  wallMs: number;
  submitErrors: number;
  successSeen: number;
  /** Singles that ended failed (in review) rather than success. */
  failedSeen: number;
}

async function runSingles(): Promise<SinglesResult> {
  const base = await http('GET', '/api/v1/tasks/stats');
  const baseline = Number(base.json?.success ?? 0);
  const baseFailed = Number(base.json?.failed ?? 0);
  let failedSeen = 0;
  let submitErrors = 0;
  let firstError = '';
  const t0 = Date.now();
  await mapBounded(N, SINGLES_CONCURRENCY, async (i) => {
    const r = await http('POST', '/api/v1/publish', { ...ITEM, accountId: accountFor(i), title: `single ${i}` }).catch(
      (err: Error) => ({
        status: 0,
        json: { status: err.message },
      }),
    );
    if (r.status !== 202 && r.status !== 200 && r.status !== 201) {
      submitErrors++;
      firstError ||= `${r.status} ${JSON.stringify(r.json)}`;
    }
  });
  const submitMs = Date.now() - t0;
  log(`${N} singles submitted in ${submitMs} ms (${submitErrors} errors${firstError ? `, first: ${firstError}` : ''})`);
  if (submitErrors === N) throw new Error(`every single publish was refused: ${firstError}`);
  let successSeen = 0;
  let lastLog = 0;
  await waitUntil(
    `${N - submitErrors} singles to succeed`,
    PHASE_TIMEOUT_MS,
    async () => {
      const r = await http('GET', '/api/v1/tasks/stats');
      successSeen = Number(r.json?.success ?? 0) - baseline;
      // A single may end in review (an upload that timed out under load is Unconfirmed): settled, counted apart.
      failedSeen = Number(r.json?.failed ?? 0) - baseFailed;
      if (Date.now() - lastLog > 10_000) {
        lastLog = Date.now();
        log(`singles: ${successSeen} succeeded; stats ${JSON.stringify(r.json)}`);
      }
      return successSeen + failedSeen >= N - submitErrors;
    },
    500,
  );
  const wallMs = Date.now() - t0;
  log(`singles done in ${wallMs} ms`);
  return { submitMs, wallMs, submitErrors, successSeen, failedSeen };
}

function scanLog(file: string): { warn: number; error: number; samples: string[] } {
  const out = { warn: 0, error: 0, samples: [] as string[] };
  if (!existsSync(file)) return out;
  const seen = new Set<string>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    let level = '';
    let msg = line;
    try {
      const j = JSON.parse(line) as { level?: string; msg?: string; error?: string };
      level = j.level ?? '';
      msg = `${j.msg ?? ''} ${j.error ?? ''}`.trim();
    } catch {
      if (/\b(ERROR|WARN)\b/.test(line)) level = /\bERROR\b/.test(line) ? 'error' : 'warn';
    }
    if (level === 'warn') out.warn++;
    else if (level === 'error') out.error++;
    else continue;
    const key = msg.slice(0, 160);
    if (!seen.has(key) && out.samples.length < 8) {
      seen.add(key);
      out.samples.push(`${level}: ${key}`);
    }
  }
  return out;
}

const mib = (b: number | null) => (b === null ? null : Math.round((b / 1048576) * 10) / 10);
const sec = (ms: number) => Math.round(ms / 100) / 10;

const DOC_HEADER = `# Benchmarks

Numbers from \`bench/batch.ts\` (issue 4, "Benchmarks"). Each row is one run, appended by the benchmark itself.

## Method

- **What runs.** On one machine, all on 127.0.0.1 and all started fresh by the benchmark: a Temporal dev server
  (\`temporal server start-dev\`, SQLite file in a temp dir, default dynamic config, so the default history limits
  apply: 51,200 events / 50 MB error), \`redis-server\` (no persistence), **one** worker process (\`node lib/worker.js\`,
  \`PUBFLOW_WORKER_CONCURRENCY\` upload slots, shown in the table) and the API process (\`node lib/api.js\`).
- **What is published.** The built-in \`demo\` account, platform \`local\`: every item copies a 1-byte file into a temp
  \`PUBFLOW_PUBLISHED_DIR\`, so the upload itself costs almost nothing and the numbers measure pubflow + Temporal.
- **Accounts.** \`BENCH_ACCOUNTS\` (column "accounts"): 1 = the built-in \`demo\` account for every item; K > 1 = an
  accounts file with K \`local\` accounts, items assigned round-robin. pubflow runs **at most one upload at a time
  per account** (the queue gates of "Queue semantics"), so with one account both phases measure that
  serialization (one gate turn per item), not the batch machinery.
- **Batch.** One \`POST /api/v1/publish/batch\` with N items (\`defaults\` carries platform, account and video; each
  item sets only its title) and \`concurrency\` = the batch window. Wall time runs from just before the POST until
  \`GET /api/v1/tasks/<batchId>\` (the Redis projection) shows \`counts.success == N\` (polled every 0.5 s). The notes
  also give when Temporal visibility first counted all N children \`Completed\` (polled every 2 s), which shows how
  far the batch document lags behind the children.
- **Singles.** N \`POST /api/v1/publish\` calls from 50 concurrent clients, on the same servers right after the batch.
  Wall time runs from the first POST until \`GET /api/v1/tasks/stats\` shows N more \`success\` than before.
- **Worker peak RSS.** \`VmHWM\` of the worker process at the end of the run (both phases), from \`/proc/<pid>/status\`;
  \`VmRSS\` is also sampled every second.
- **Largest batch history.** Every run of the batch's workflow id (it continues-as-new), listed with
  \`client.workflow.list({query: "WorkflowId = '<batchId>'"})\`; the table shows the largest \`historyLength\` (events)
  and \`historySize\` (bytes) of any run. Each run's history is also scanned for failed workflow tasks and for
  terminations/failures ("limit errors" column: failed workflow tasks / terminated-or-failed runs).
- **Caveat.** One worker process on a small machine: absolute numbers say more about the machine than about pubflow;
  compare rows from the same machine.

## How to run

\`\`\`bash
make bench                           # N = 1000 (builds lib/ first)
BENCH_N=10000 make bench             # the issue's 10,000-item batch against 10,000 singles
BENCH_N=10000 BENCH_SKIP_SINGLES=1 make bench   # the batch only
\`\`\`

Other knobs: \`BENCH_BATCH_CONCURRENCY\` (batch window, 200), \`BENCH_WORKER_CONCURRENCY\` (upload slots, 20),
\`BENCH_SINGLES_CONCURRENCY\` (50), \`BENCH_TIMEOUT_S\` (per phase), \`BENCH_NO_RECORD=1\` (don't append a row),
\`BENCH_KEEP=1\` (keep the temp dir with the worker and API logs). \`scripts/bench.sh\` compiles \`bench/\` with \`tsc\`
into a temp dir and runs it with \`node\`; the worker and API run from \`lib/\`, so build first (\`make bench\` does).

## Results

| date (UTC) | machine | N | accounts | batch window | upload slots | batch wall (s) | batch items/s | singles wall (s) | singles/s | worker peak RSS (MiB) | max batch history: events | bytes | batch runs | limit errors | notes |
| ---------- | ------- | - | -------- | ------------ | ------------ | -------------- | ------------- | ---------------- | --------- | --------------------- | ------------------------- | ----- | ---------- | ------------ | ----- |
`;

function record(row: string) {
  const file = path.join(ROOT, 'docs', 'benchmarks.md');
  if (!existsSync(file)) {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, DOC_HEADER);
  }
  appendFileSync(file, row + '\n');
  log(`appended a row to ${file}`);
}

async function main() {
  // The server helpers find binaries through env vars or .tools/env relative to their own file; the compiled copy
  // lives elsewhere, so hand them the repository's .tools/env.
  const toolEnv = readToolEnv(ROOT);
  for (const k of ['PUBFLOW_TEMPORAL_CLI', 'PUBFLOW_REDIS_SERVER', 'PUBFLOW_TEST_SERVER'])
    if (process.env[k] === undefined && toolEnv[k]) process.env[k] = toolEnv[k];
  for (const f of ['lib/worker.js', 'lib/api.js'])
    if (!existsSync(path.join(ROOT, f))) throw new Error(`${f} is missing: run npm run build first`);

  const work = tempDir('bench');
  const media = path.join(work, 'media');
  const published = path.join(work, 'published');
  mkdirSync(media);
  mkdirSync(published);
  writeFileSync(path.join(media, 'b.mp4'), 'x');
  let dev: DevServer | undefined;
  let redis: RedisServer | undefined;
  let rssTimer: NodeJS.Timeout | undefined;
  let connection: Connection | undefined;
  let failed: Error | undefined;
  let stopping: Promise<void> | undefined;
  // Interrupted (Ctrl-C, or SIGTERM from scripts/bench.sh): the dev server, Redis, the worker and the API stop too,
  // instead of running on without their parent.
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.once(sig, () => {
      log(`${sig}: stopping what the bench started`);
      void stopEverything().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
    });
  const started = new Date();
  try {
    log(
      `N=${N}, accounts ${ACCOUNTS}, batch window ${BATCH_CONCURRENCY}, upload slots ${WORKER_CONCURRENCY}; temp dir ${work}`,
    );
    [dev, redis] = await Promise.all([startDevServer(), startRedis()]);
    log(`temporal ${dev.address} (pid ${dev.pid}), redis ${redis.url} (pid ${redis.pid})`);
    const apiPort = await freePort();
    API = `http://127.0.0.1:${apiPort}`;
    const keysFile = path.join(work, 'api-keys.json');
    AUTH = { Authorization: `Bearer ${addKey(keysFile, { name: 'bench', role: 'publisher' }).token}` };
    const env = {
      TEMPORAL_ADDRESS: dev.address,
      REDIS_URL: redis.url,
      PUBFLOW_API_KEYS_FILE: keysFile,
      // Measures pubflow, not the per-key limit (20/s by default) a client would be held to.
      PUBFLOW_API_RATE_LIMIT: 'off',
      PUBFLOW_TASK_QUEUE: TASK_QUEUE,
      PUBFLOW_MEDIA_ROOT: media,
      PUBFLOW_PUBLISHED_DIR: published,
      PUBFLOW_WORKER_CONCURRENCY: String(WORKER_CONCURRENCY),
      PUBFLOW_API_HOST: '127.0.0.1',
      PUBFLOW_API_PORT: String(apiPort),
      PUBFLOW_ACCOUNTS_FILE: '',
    };
    if (ACCOUNTS > 1) {
      const file = path.join(work, 'accounts.json');
      writeFileSync(
        file,
        JSON.stringify(Array.from({ length: ACCOUNTS }, (_, i) => ({ id: `bench-${i}`, platform: 'local' }))),
      );
      env.PUBFLOW_ACCOUNTS_FILE = file;
    }
    const worker = spawnNode('worker', 'lib/worker.js', env, work);
    const api = spawnNode('api', 'lib/api.js', env, work);
    const workerPid = worker.child.pid!;
    log(`worker pid ${workerPid}, api pid ${api.child.pid} on ${API}`);
    await waitUntil('the API', 60_000, async () => (await http('GET', '/api/v1/tasks/stats')).status === 200);
    await waitUntil('the worker', 120_000, async () => readFileSync(worker.logFile, 'utf8').includes('worker started'));

    let rssMax = 0;
    const rssSamples: number[] = [];
    rssTimer = setInterval(() => {
      const v = procStatus(workerPid, 'VmRSS');
      if (v !== null) {
        rssSamples.push(v);
        rssMax = Math.max(rssMax, v);
      }
    }, 1000);
    const rssAfterStart = procStatus(workerPid, 'VmRSS');

    connection = await Connection.connect({ address: dev.address, channelArgs: CLIENT_CHANNEL_ARGS });
    const client = new Client({ connection, namespace: 'default' });

    const pids = { server: dev.pid, worker: workerPid, api: api.child.pid, redis: redis.pid };
    const gateQuery = (from: Date, to?: Date) => `WorkflowType = 'accountGate' AND ${since(from, to)}`;

    let batch: BatchResult | null = null;
    let batchCost: PublishCost | null = null;
    let batchCpu: Record<string, number | null> | null = null;
    let rssAfterBatchHWM: number | null = null;
    if (PHASES.has('batch')) {
      const from = new Date(Date.now() - 1000);
      const cpu = cpuMeter(pids);
      batch = await runBatch(client);
      batchCpu = cpu();
      const to = new Date();
      rssAfterBatchHWM = procStatus(workerPid, 'VmHWM');
      batchCost = costOf(N, {
        batch: await historyStats(client, `WorkflowId = '${batch.batchId}'`),
        children: await historyStats(
          client,
          `WorkflowType = 'publishSingle' AND WorkflowId STARTS_WITH '${batch.batchId}-'`,
        ),
        gates: await historyStats(client, gateQuery(from, to)),
      });
      logReplays('batch', batchCost);
      // The batch's numbers on their own line too, so a failure in a later phase does not lose them.
      log(
        `batch result ${JSON.stringify({ ...batch, cpuS: batchCpu, cost: batchCost, workerPeakRssMiB: mib(rssAfterBatchHWM) })}`,
      );
    }

    let ceiling: CeilingResult | null = null;
    let ceilingCost: PublishCost | null = null;
    if (PHASES.has('ceiling')) {
      const c = await runCeiling(client, env, work, dev.pid!);
      ceiling = c.result;
      ceilingCost = c.cost;
      log(`ceiling result ${JSON.stringify(c)}`);
    }

    let singles: SinglesResult | null = null;
    let singlesCost: PublishCost | null = null;
    let singlesCpu: Record<string, number | null> | null = null;
    if (PHASES.has('singles')) {
      const from = new Date(Date.now() - 1000);
      const cpu = cpuMeter(pids);
      singles = await runSingles();
      singlesCpu = cpu();
      // Let the gates that served the last singles end, so their runs are complete when counted.
      await sleep(2000);
      singlesCost = costOf(N, {
        singles: await historyStats(
          client,
          `WorkflowType = 'publishSingle' AND WorkflowId STARTS_WITH 'pub-' AND ${since(from)}`,
        ),
        gates: await historyStats(client, gateQuery(from)),
      });
      logReplays('singles', singlesCost);
      log(`singles result ${JSON.stringify({ ...singles, cpuS: singlesCpu, cost: singlesCost })}`);
    }
    const hwm = procStatus(workerPid, 'VmHWM');
    clearInterval(rssTimer);
    const workerLog = scanLog(worker.logFile);
    const apiLog = scanLog(api.logFile);

    const rate = (ms: number | undefined) => (ms === undefined ? null : Math.round((N / ms) * 1000 * 10) / 10);
    const ceilingPerS = rate(ceiling?.wallMs);
    const singlesPerS = rate(singles?.wallMs);
    const batchPerS = rate(batch?.wallMs);
    const ratio = (a: number | null | undefined, b: number | null | undefined) =>
      a === null || a === undefined || !b ? null : Math.round((a / b) * 100) / 100;
    const result = {
      date: started.toISOString(),
      machine: `${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.platform()} ${os.release()}`,
      node: process.version,
      temporalCli: toolEnv.PUBFLOW_TEMPORAL_CLI_VERSION ?? null,
      n: N,
      accounts: ACCOUNTS,
      batchConcurrency: BATCH_CONCURRENCY,
      workerConcurrency: WORKER_CONCURRENCY,
      ceiling: ceiling && { ...ceiling, wallS: sec(ceiling.wallMs), perS: ceilingPerS, cost: ceilingCost },
      batch: batch && {
        ...batch,
        wallS: sec(batch.wallMs),
        itemsPerS: batchPerS,
        cpuS: batchCpu,
        cost: batchCost,
      },
      singles: singles && {
        ...singles,
        wallS: sec(singles.wallMs),
        perS: singlesPerS,
        cpuS: singlesCpu,
        cost: singlesCost,
      },
      ratios: {
        singlesToCeiling: ratio(singlesPerS, ceilingPerS),
        batchToCeiling: ratio(batchPerS, ceilingPerS),
        batchWallToSinglesWall: ratio(batch?.wallMs, singles?.wallMs),
      },
      worker: {
        peakRssMiB: mib(hwm),
        peakRssAfterBatchMiB: mib(rssAfterBatchHWM),
        rssAfterStartMiB: mib(rssAfterStart),
        sampledMaxRssMiB: mib(rssMax),
        samples: rssSamples.length,
      },
      logs: { worker: workerLog, api: apiLog },
    };
    console.log(`BENCH_RESULT ${JSON.stringify(result)}`);

    const dash = (v: unknown) => (v === null || v === undefined ? '-' : String(v));
    const cpuCell = (c: Record<string, number | null> | null) => (c ? `${dash(c.server)} / ${dash(c.worker)}` : '-');
    const notes = [
      batch
        ? `batch: ${batch.runs} runs (max ${batch.maxHistoryEvents} events, ${batch.maxHistoryBytes} bytes), ` +
          `limit errors ${batch.workflowTaskFailures} / ${batch.terminated.length}, ` +
          `workflow-task timeouts ${batch.workflowTaskTimeouts}, children not completed ${batch.childrenNotCompleted ?? '?'}`
        : '',
      batchCost
        ? `batch item events: ${Math.round((batchCost.parts.children!.events / N) * 10) / 10} child + ` +
          `${Math.round((batchCost.parts.batch!.events / N) * 10) / 10} batch + ` +
          `${Math.round((batchCost.parts.gates!.events / N) * 10) / 10} gate`
        : '',
      singlesCost
        ? `single events: ${Math.round((singlesCost.parts.singles!.events / N) * 10) / 10} own + ` +
          `${Math.round((singlesCost.parts.gates!.events / N) * 10) / 10} gate (${singlesCost.parts.gates!.runs} gate runs)`
        : '',
      `worker log: ${workerLog.error} errors, ${workerLog.warn} warnings`,
      singles && singles.submitErrors ? `${singles.submitErrors} singles refused` : '',
      singles && singles.failedSeen ? `${singles.failedSeen} singles ended in review` : '',
    ]
      .filter(Boolean)
      .join('; ');
    const row = [
      started.toISOString().slice(0, 16).replace('T', ' '),
      `${os.cpus().length} vCPU, Node ${process.version}, Temporal CLI ${toolEnv.PUBFLOW_TEMPORAL_CLI_VERSION ?? '?'}`,
      String(N),
      ACCOUNTS === 1 ? '1 (demo)' : String(ACCOUNTS),
      `${BATCH_CONCURRENCY} / ${WORKER_CONCURRENCY}`,
      dash(ceilingPerS),
      dash(singlesPerS),
      dash(result.ratios.singlesToCeiling),
      dash(batchPerS),
      dash(result.ratios.batchWallToSinglesWall),
      `${dash(ceilingCost?.perPublish.events)} / ${dash(singlesCost?.perPublish.events)} / ${dash(batchCost?.perPublish.events)}`,
      `${dash(ceilingCost?.perPublish.visibilityWrites)} / ${dash(singlesCost?.perPublish.visibilityWrites)} / ${dash(batchCost?.perPublish.visibilityWrites)}`,
      `${dash(mib(rssAfterBatchHWM))} / ${dash(mib(hwm))}`,
      `${dash(ceiling?.cpuS.server)} / ${dash(ceiling?.cpuS.worker)}`,
      cpuCell(singlesCpu),
      cpuCell(batchCpu),
      notes,
    ];
    if (process.env.BENCH_NO_RECORD !== '1') record(`| ${row.join(' | ')} |`);
  } catch (err) {
    failed = err as Error;
    // Interrupted: what failed is only the run being stopped under it.
    if (stopping) log(`interrupted (${failed.message})`);
    else log(`FAILED: ${failed.stack ?? failed.message}`);
    for (const p of procs) {
      const s = scanLog(p.logFile);
      log(`${p.name} log: ${s.error} errors, ${s.warn} warnings ${JSON.stringify(s.samples)}`);
    }
  } finally {
    await stopEverything();
  }
  if (failed) process.exit(1);
  process.exit(0);

  /** Stops what the bench started, in reverse order; once, whether the run ended or was interrupted. */
  async function stopEverything() {
    stopping ??= (async () => {
      if (rssTimer) clearInterval(rssTimer);
      await connection?.close().catch(() => undefined);
      for (const p of [...procs].reverse()) await stopProc(p);
      await dev?.destroy().catch((e: Error) => log(`stopping temporal: ${e.message}`));
      await redis?.destroy().catch((e: Error) => log(`stopping redis: ${e.message}`));
      if (process.env.BENCH_KEEP === '1') log(`kept ${work}`);
      else rmSync(work, { recursive: true, force: true });
    })();
    return stopping;
  }
}

void main();
