/**
 * The metrics of a running stack (issue 13 §1 and §3): `node lib/worker.js` and `node lib/api.js` against a dev
 * server and redis-server started here, publishing through the API to a local webhook endpoint that fails the
 * uploads. After two failed publishes (HTTP 500: Unconfirmed; HTTP 401: AuthExpired) the worker's endpoint has the
 * SDK's `temporal_*` series and pubflow's upload, gate-wait and projection series, and the API's has the reviews,
 * the tasks, the account needing a login and its HTTP requests by route. Every metric name the alert rules (and the
 * Grafana dashboard) use is in one of the two scrapes. The worker runs with PUBFLOW_WORKFLOW_TASK_SLOTS=7, and the SDK's
 * slots gauge shows it took the setting.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { addKey } from '../../src/auth/keys-file';
import { freePort } from '../helpers/servers';
import { useFaultStack, type FaultStack } from '../integration/fault-helpers';
import { PROMETHEUS_DIR } from './promtool';

let stack: FaultStack;
let workerMetricsUrl: string;
let apiUrl: string;
let viewerToken: string;
let publisherToken: string;

useFaultStack({ name: 'metrics', accounts: 2 }, async (s) => {
  stack = s;
  const keysFile = path.join(s.dir, 'api-keys.json');
  viewerToken = addKey(keysFile, { name: 'prometheus', role: 'viewer' }).token;
  publisherToken = addKey(keysFile, { name: 'metrics-test', role: 'publisher' }).token;
  const port = await freePort();
  workerMetricsUrl = `http://127.0.0.1:${port}/metrics`;
  apiUrl = `http://127.0.0.1:${s.apiPort}`;
  await Promise.all([
    // Not the SDK's default (40 here), so the slots gauge shows whether the setting reached the worker.
    s.startWorker('metrics-w1', { PUBFLOW_WORKER_METRICS_PORT: String(port), PUBFLOW_WORKFLOW_TASK_SLOTS: '7' }),
    s.startApi('metrics-api', { PUBFLOW_API_KEYS_FILE: keysFile }),
  ]);
});

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text format: every sample, and every family named by a TYPE line. */
function parseExposition(text: string): { samples: Sample[]; families: Set<string> } {
  const samples: Sample[] = [];
  const families = new Set<string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) /.exec(line);
    if (type?.[1]) families.add(type[1]);
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!m?.[1]) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return { samples, families };
}

async function scrape(url: string, token?: string) {
  const res = await fetch(url, token ? { headers: { Authorization: `Bearer ${token}` } } : {});
  const text = await res.text();
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${text.slice(0, 300)}`);
  return { text, contentType: res.headers.get('content-type') ?? '', ...parseExposition(text) };
}
const scrapeWorker = () => scrape(workerMetricsUrl);
const scrapeApi = () => scrape(`${apiUrl}/metrics`, viewerToken);

/** The value of the one sample of `name` whose labels include `labels` (undefined when none matches). */
function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const hits = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (hits.length > 1) throw new Error(`${hits.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return hits[0]?.value;
}

/** Metric names an expression or dashboard query refers to (`up` is Prometheus's own, per target). */
function metricNamesIn(text: string): string[] {
  return [...new Set(text.match(/\b(?:pubflow|temporal|nodejs|process)_[a-z0-9_]+/g) ?? [])];
}

/** A name as a query writes it (`x_bucket`, `x_count`, `x_sum` of a histogram x) is served when its family is. */
function served(name: string, scrapes: Array<{ samples: Sample[]; families: Set<string> }>): boolean {
  const family = name.replace(/_(bucket|count|sum)$/, '');
  return scrapes.some((s) => s.families.has(name) || s.families.has(family) || s.samples.some((x) => x.name === name));
}

async function publish(accountId: string, title: string): Promise<string> {
  const res = await fetch(`${apiUrl}/api/v1/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', Authorization: `Bearer ${publisherToken}` },
    body: JSON.stringify({ platform: 'webhook', accountId, video: { path: stack.media[0] }, title }),
  });
  const body = (await res.json()) as { taskId: string };
  expect(res.status).toBe(202);
  return body.taskId;
}

test('after failed publishes the worker and the API serve their series, and every name the rules use is in a scrape', async () => {
  // Arrange: the endpoint answers 500 for the first account (Unconfirmed) and 401 for the second (AuthExpired).
  const [unconfirmedAccount, loggedOutAccount] = stack.accountIds as [string, string];
  stack.endpoint.behaviour = (r) => ({ status: r.metadata.accountId === loggedOutAccount ? 401 : 500 });
  const before = await scrapeApi();
  expect(valueOf(before.samples, 'pubflow_reviews_open', { kind: 'Unconfirmed', platform: 'webhook' })).toBe(0);
  expect(valueOf(before.samples, 'pubflow_accounts_needing_login')).toBe(0);

  // Act: two publishes through the API; both fail and land in review. And two requests that fail in the API itself.
  const refused = await fetch(`${apiUrl}/api/v1/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', Authorization: `Bearer ${publisherToken}` },
    body: JSON.stringify({ platform: 'webhook' }),
  });
  expect(refused.status).toBe(400);
  const nowhere = await fetch(`${apiUrl}/api/v1/nowhere/pub-123`, {
    headers: { Authorization: `Bearer ${viewerToken}` },
  });
  expect(nowhere.status).toBe(404);
  const ids = [await publish(unconfirmedAccount, 'metrics 500'), await publish(loggedOutAccount, 'metrics 401')];
  await stack.waitUntil('both tasks to have an open review', async () => {
    const docs = await Promise.all(
      ids.map(async (id) => {
        const res = await fetch(`${apiUrl}/api/v1/tasks/${id}`, {
          headers: { Authorization: `Bearer ${viewerToken}` },
        });
        return res.status === 200 ? ((await res.json()) as { review: { open: boolean } | null }) : null;
      }),
    );
    return docs.every((d) => d?.review?.open === true);
  });
  // The gate's login state reaches the API through Temporal's visibility, which is eventually consistent.
  const api = await stack.waitUntil('the API to count the account that needs a login', async () => {
    const s = await scrapeApi();
    return valueOf(s.samples, 'pubflow_accounts_needing_login') === 1 ? s : undefined;
  });
  const worker = await scrapeWorker();

  // Assert: the worker's endpoint has the SDK's series and pubflow's, labelled by platform and outcome.
  expect(worker.samples.some((s) => s.name.startsWith('temporal_'))).toBe(true);
  expect(valueOf(worker.samples, 'pubflow_uploads_total', { platform: 'webhook', outcome: 'Unconfirmed' })).toBe(1);
  expect(valueOf(worker.samples, 'pubflow_uploads_total', { platform: 'webhook', outcome: 'AuthExpired' })).toBe(1);
  expect(valueOf(worker.samples, 'pubflow_upload_duration_seconds_count', { platform: 'webhook' })).toBe(2);
  expect(valueOf(worker.samples, 'pubflow_gate_wait_seconds_count', { platform: 'webhook' })).toBe(2);
  expect(valueOf(worker.samples, 'pubflow_projection_write_errors_total', { write: 'task' })).toBe(0);

  // The API's: the two reviews by kind and platform, the failed tasks, the account, the oldest review's age.
  expect(api.contentType).toMatch(/^text\/plain/);
  expect(valueOf(api.samples, 'pubflow_reviews_open', { kind: 'Unconfirmed', platform: 'webhook' })).toBe(1);
  expect(valueOf(api.samples, 'pubflow_reviews_open', { kind: 'AuthExpired', platform: 'webhook' })).toBe(1);
  expect(valueOf(api.samples, 'pubflow_reviews_open', { kind: 'Unconfirmed', platform: 'local' })).toBe(0);
  expect(valueOf(api.samples, 'pubflow_tasks', { status: 'failed' })).toBe(2);
  expect(valueOf(api.samples, 'pubflow_tasks', { status: 'success' })).toBe(0);
  expect(valueOf(api.samples, 'pubflow_review_oldest_age_seconds')).toBeGreaterThan(0);
  // HTTP requests by route pattern (never the URL with a task id in it) and status.
  expect(
    valueOf(api.samples, 'pubflow_http_requests_total', { method: 'POST', route: '/api/v1/publish', code: '202' }),
  ).toBe(2);
  expect(
    valueOf(api.samples, 'pubflow_http_requests_total', { method: 'GET', route: '/api/v1/tasks/:id', code: '200' }),
  ).toBeGreaterThanOrEqual(2);
  expect(
    valueOf(api.samples, 'pubflow_http_request_duration_seconds_count', {
      method: 'POST',
      route: '/api/v1/publish',
      code: '202',
    }),
  ).toBe(2);
  // A request refused by its route keeps the route's pattern (the error leaves the router, which resets baseUrl);
  // one no route matches is `unmatched`, whatever its URL.
  expect(
    valueOf(api.samples, 'pubflow_http_requests_total', { method: 'POST', route: '/api/v1/publish', code: '400' }),
  ).toBe(1);
  expect(valueOf(api.samples, 'pubflow_http_requests_total', { route: 'unmatched', code: '404' })).toBe(1);
  expect(api.text).not.toContain('nowhere');
  // Bounded labels: no task id, title or account id anywhere in either scrape.
  for (const needle of [...ids, 'metrics 500', unconfirmedAccount, loggedOutAccount]) {
    expect({ needle, inWorker: worker.text.includes(needle), inApi: api.text.includes(needle) }).toEqual({
      needle,
      inWorker: false,
      inApi: false,
    });
  }

  // Every metric the rules (and the dashboard) use is served by one of the two processes.
  const sources = [
    path.join(PROMETHEUS_DIR, 'alerts.yml'),
    path.resolve(__dirname, '../../deploy/grafana/pubflow.json'),
  ];
  const names = sources.filter((f) => existsSync(f)).flatMap((f) => metricNamesIn(readFileSync(f, 'utf8')));
  expect(names).toEqual(expect.arrayContaining(['pubflow_uploads_total', 'pubflow_accounts_needing_login']));
  expect(names.filter((n) => !served(n, [worker, api]))).toEqual([]);
});

test('PUBFLOW_WORKFLOW_TASK_SLOTS reaches the worker: its workflow worker offers that many slots', async () => {
  // The SDK's own gauge, per worker: slots free now. Idle, that is all of them; never more than configured.
  const slots = async () =>
    (await scrapeWorker()).samples.filter(
      (x) => x.name === 'temporal_worker_task_slots_available' && x.labels.worker_type === 'WorkflowWorker',
    );
  const idle = await stack.waitUntil('the workflow worker to be idle', async () => {
    const s = await slots();
    return s.length > 0 && s.some((x) => x.value === 7) ? s : undefined;
  });
  expect(Math.max(...idle.map((x) => x.value))).toBe(7);
});
