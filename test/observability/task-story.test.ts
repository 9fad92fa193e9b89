/**
 * Issue 13 §4 and §5 against real processes: `node lib/api.js` and `node lib/worker.js` (dev server, redis-server,
 * a local webhook endpoint as the platform), one publish through the API each time.
 * - Logs: grepping the task id in both processes' logs gives its whole story, every line with the task id and the
 *   id of the API request that started it (the client's `X-Request-Id`).
 * - Traces: with OTEL_EXPORTER_OTLP_ENDPOINT set, an in-process OTLP/HTTP receiver gets one trace: the API's request
 *   span → StartWorkflow → RunWorkflow → StartActivity:upload → RunActivity:upload, each the parent of the next.
 */
import { readFileSync } from 'node:fs';
import { freePort } from '../helpers/servers';
import { startFaultStack, type FaultStack, type PubflowProcess } from '../integration/fault-helpers';
import { OtlpReceiver, type ReceivedSpan } from './otlp-receiver';

let stack: FaultStack;
let receiver: OtlpReceiver;

beforeAll(async () => {
  [stack, receiver] = await Promise.all([startFaultStack({ name: 'story', accounts: 2 }), OtlpReceiver.start()]);
}, 120_000);

afterAll(async () => {
  await Promise.all([stack?.close(), receiver?.close()]);
}, 60_000);

type Line = Record<string, unknown>;

/** `grep <needle> <file>`, each line parsed as JSON. */
function grep(p: PubflowProcess, needle: string): Line[] {
  return readFileSync(p.logFile, 'utf8')
    .split('\n')
    .filter((l) => l.includes(needle))
    .map((l) => JSON.parse(l) as Line);
}

/** The JSON lines of the whole log file whose `msg` is this. */
function linesWithMsg(p: PubflowProcess, msg: string): Line[] {
  return grep(p, `"msg":"${msg}"`);
}

async function publish(apiPort: number, i: number, headers: Record<string, string>) {
  const res = await fetch(`http://127.0.0.1:${apiPort}/api/v1/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...stack.keys.header('publisher'), ...headers },
    body: JSON.stringify({
      platform: 'webhook',
      accountId: stack.accountIds[i % stack.accountIds.length],
      video: { path: stack.media[0] },
      title: `story ${i}`,
    }),
  });
  const body = (await res.json()) as { taskId: string; status: string };
  return { res, body };
}

test('one task id grepped across the API and worker logs tells its story, each line with the task and the request id', async () => {
  // Arrange: tracing off (even if the environment running the tests sets an endpoint).
  const off = { OTEL_EXPORTER_OTLP_ENDPOINT: '' };
  const api = await stack.startApi('story-api', off);
  const worker = await stack.startWorker('story-worker', { ...off, PUBFLOW_LOG_LEVEL: 'info' });
  const requestId = `story-req-${Date.now().toString(36)}`;

  // Act
  const { res, body } = await publish(stack.apiPort, 0, { 'X-Request-Id': requestId });
  expect(res.status).toBe(202);
  expect(res.headers.get('x-request-id')).toBe(requestId);
  const { taskId } = body;
  await worker.waitForLog('workflow completed');
  const read = await fetch(`http://127.0.0.1:${stack.apiPort}/api/v1/tasks/${taskId}`, {
    headers: { ...stack.keys.header('viewer'), 'X-Request-Id': `${requestId}-read` },
  });
  expect(read.status).toBe(200);
  await Promise.all([api.stop(), worker.stop()]);

  // Assert: the API's lines for the requests name the task; the worker's lines follow it to the end.
  const apiLines = grep(api, taskId);
  expect(apiLines).toEqual([
    expect.objectContaining({
      component: 'api',
      msg: 'request',
      method: 'POST',
      path: '/api/v1/publish',
      status: 202,
      taskId,
      requestId,
    }),
    expect.objectContaining({
      msg: 'request',
      method: 'GET',
      path: `/api/v1/tasks/${taskId}`,
      status: 200,
      taskId,
      requestId: `${requestId}-read`,
    }),
  ]);
  const workerLines = grep(worker, taskId);
  const story = workerLines.map((l) => l.msg);
  for (const step of ['workflow started', 'upload started', 'upload succeeded', 'task projected', 'workflow completed'])
    expect(story).toContain(step);
  expect(story.indexOf('workflow started')).toBeLessThan(story.indexOf('upload started'));
  expect(story.indexOf('upload started')).toBeLessThan(story.indexOf('upload succeeded'));
  expect(story.lastIndexOf('workflow completed')).toBe(story.length - 1);
  expect(workerLines.filter((l) => l.msg === 'task projected').map((l) => l.status)).toEqual(
    expect.arrayContaining(['running', 'success']),
  );
  // Every line of the story: the task, the request, the run; activity lines also the activity's attempt.
  const { runId } = await stack.client.workflow.getHandle(taskId).describe();
  for (const l of workerLines) {
    expect(l).toEqual(expect.objectContaining({ component: 'worker', taskId, requestId, workflowId: taskId, runId }));
    if (l.sdkComponent === 'activity') expect(l).toEqual(expect.objectContaining({ attempt: 1 }));
  }
  // Tracing off: the worker ran the bundle without the OpenTelemetry interceptors.
  expect(linesWithMsg(worker, 'worker started')).toEqual([
    expect.objectContaining({
      traces: null,
      workflowBundle: expect.stringMatching(/[/\\]workflow-bundle\.js$/),
      // The operator sees the workflow knobs the process runs with (README: PUBFLOW_WORKFLOW_*).
      workflowTaskSlots: 40,
      workflowCache: 'sdk default',
    }),
  ]);
});

test('a retry from the review library carries its own request id into the new attempt; a batch passes its id to every child', async () => {
  // Arrange: the endpoint fails the first upload (5xx: Unconfirmed, a review), then succeeds.
  const off = { OTEL_EXPORTER_OTLP_ENDPOINT: '' };
  const api = await stack.startApi('story-api-retry', off);
  const worker = await stack.startWorker('story-worker-retry', off);
  let calls = 0;
  stack.endpoint.behaviour = () => (++calls === 1 ? { status: 500 } : { status: 200 });
  const stamp = Date.now().toString(36);
  const post = async (route: string, role: 'publisher' | 'operator', requestId: string, body: unknown) => {
    const res = await fetch(`http://127.0.0.1:${stack.apiPort}/api/v1${route}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...stack.keys.header(role), 'X-Request-Id': requestId },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  try {
    // Act 1: a publish that lands in review, then a person's retry.
    const first = await post('/publish', 'publisher', `pub-${stamp}`, {
      platform: 'webhook',
      accountId: stack.accountIds[0],
      video: { path: stack.media[0] },
      title: 'retried',
    });
    expect(first.status).toBe(202);
    const taskId = String(first.body.taskId);
    await stack.waitUntil('the review to be filed', () => grep(worker, taskId).some((l) => l.msg === 'review filed'));
    const retry = await post(`/reviews/${taskId}/retry`, 'operator', `retry-${stamp}`, { note: 'endpoint fixed' });
    expect(retry.status).toBe(200);
    await stack.waitUntil('the retried upload to succeed', () =>
      grep(worker, taskId).some((l) => l.msg === 'upload succeeded'),
    );

    // Act 2: a batch of two.
    stack.endpoint.behaviour = () => ({ status: 200 });
    const batch = await post('/publish/batch', 'publisher', `batch-${stamp}`, {
      defaults: { platform: 'webhook', video: { path: stack.media[1] } },
      items: [
        { accountId: stack.accountIds[0], title: 'b0' },
        { accountId: stack.accountIds[1], title: 'b1' },
      ],
    });
    expect(batch.status).toBe(202);
    const batchId = String(batch.body.taskId);
    const children = () => grep(worker, `"requestId":"batch-${stamp}"`).filter((l) => l.msg === 'upload succeeded');
    await stack.waitUntil('both children to upload', () => children().length === 2);

    // Assert: attempt 1's lines carry the publish's request id, attempt 2's the retry's.
    const uploads = grep(worker, taskId).filter((l) => l.msg === 'upload started');
    expect(uploads).toEqual([
      expect.objectContaining({ taskAttempt: 1, requestId: `pub-${stamp}` }),
      expect.objectContaining({ taskAttempt: 2, requestId: `retry-${stamp}` }),
    ]);
    // The API's lines of the retry: the person's decision (audit) and the request, both with its id.
    expect(grep(api, `"requestId":"retry-${stamp}"`)).toEqual([
      expect.objectContaining({ msg: 'audit', action: 'retry', taskId, note: 'endpoint fixed' }),
      expect.objectContaining({ msg: 'request', path: `/api/v1/reviews/${taskId}/retry`, status: 200, taskId }),
    ]);
    // Each child is its own task, with the batch's request id.
    const childIds = children().map((l) => String(l.taskId));
    expect(new Set(childIds).size).toBe(2);
    for (const id of childIds) expect(id.startsWith(batchId)).toBe(true);
  } finally {
    await Promise.all([api.stop(), worker.stop()]);
    stack.endpoint.behaviour = () => ({ status: 200 });
  }
});

test('an API request without a usable X-Request-Id gets a new one, in its answer and its log line', async () => {
  const api = await stack.startApi('story-api-ids', { OTEL_EXPORTER_OTLP_ENDPOINT: '' });
  const bad = await fetch(`http://127.0.0.1:${stack.apiPort}/api/v1/tasks/stats`, {
    headers: { ...stack.keys.header('viewer'), 'X-Request-Id': 'has spaces and "quotes"' },
  });
  const none = await fetch(`http://127.0.0.1:${stack.apiPort}/api/v1/tasks/stats`, {
    headers: stack.keys.header('viewer'),
  });
  await api.stop();
  const uuid = /^[0-9a-f-]{36}$/;
  expect(bad.headers.get('x-request-id')).toMatch(uuid);
  expect(none.headers.get('x-request-id')).toMatch(uuid);
  expect(bad.headers.get('x-request-id')).not.toBe(none.headers.get('x-request-id'));
  const lines = linesWithMsg(api, 'request').filter((l) => l.path === '/api/v1/tasks/stats');
  expect(lines).toEqual([
    expect.objectContaining({ status: 200, requestId: bad.headers.get('x-request-id'), requestIdRefused: true }),
    expect.objectContaining({ status: 200, requestId: none.headers.get('x-request-id') }),
  ]);
  expect(lines[1]).not.toHaveProperty('requestIdRefused');
});

test('with an OTLP endpoint set, one publish is one trace: API request, StartWorkflow, RunWorkflow, StartActivity and RunActivity of the upload', async () => {
  // Arrange: both processes export to the in-process receiver, as JSON, flushing every 200 ms.
  const tracing = {
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '200',
  };
  const apiPort = await freePort();
  const api = await stack.startApi('trace-api', { ...tracing, PUBFLOW_API_PORT: String(apiPort) });
  const worker = await stack.startWorker('trace-worker', tracing);
  // The caller's own trace context (W3C traceparent): the API's span joins it.
  const callerTrace = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
  const callerSpan = '0123456789abcdef';

  // Act
  const { res, body } = await publish(apiPort, 1, { traceparent: `00-${callerTrace}-${callerSpan}-01` });
  expect(res.status).toBe(202);
  const { taskId } = body;
  await worker.waitForLog('workflow completed');
  const named = (name: string, service: string) => (s: ReceivedSpan) => s.name === name && s.service === service;
  const wanted = {
    request: named('POST /api/v1/publish', 'pubflow-api'),
    start: named('StartWorkflow:publishSingle', 'pubflow-api'),
    run: named('RunWorkflow:publishSingle', 'pubflow-worker'),
    schedule: named('StartActivity:upload', 'pubflow-worker'),
    upload: named('RunActivity:upload', 'pubflow-worker'),
  };
  const inTrace = () => receiver.spans.filter((s) => s.traceId === callerTrace);
  await stack.waitUntil(
    `the receiver to hold the trace's spans (has ${receiver.spans.map((s) => `${s.service}:${s.name}`).join(', ')}; refused ${receiver.refused.join(', ')})`,
    () => Object.values(wanted).every((w) => inTrace().some(w)),
    { timeoutMs: 60_000 },
  );
  await Promise.all([api.stop(), worker.stop()]);

  // Assert: one span of each, in one trace, each the parent of the next.
  const one = (w: (s: ReceivedSpan) => boolean) => {
    const found = inTrace().filter(w);
    expect(found).toHaveLength(1);
    return found[0]!;
  };
  const request = one(wanted.request);
  const start = one(wanted.start);
  const run = one(wanted.run);
  const schedule = one(wanted.schedule);
  const upload = one(wanted.upload);
  expect(request.parentSpanId).toBe(callerSpan);
  expect(request.attributes).toEqual(
    expect.objectContaining({ 'http.route': '/api/v1/publish', 'http.response.status_code': 202 }),
  );
  expect(start.parentSpanId).toBe(request.spanId);
  expect(run.parentSpanId).toBe(start.spanId);
  expect(schedule.parentSpanId).toBe(run.spanId);
  expect(upload.parentSpanId).toBe(schedule.spanId);
  expect(receiver.refused).toEqual([]);
  // The traced worker ran the bundle with the OpenTelemetry workflow interceptors; its lines name the task as ever.
  expect(linesWithMsg(worker, 'worker started')).toEqual([
    expect.objectContaining({ workflowBundle: expect.stringMatching(/workflow-bundle\.traced\.js$/) }),
  ]);
  expect(linesWithMsg(worker, 'upload succeeded')).toEqual(
    expect.arrayContaining([expect.objectContaining({ taskId, workflowId: taskId })]),
  );
});
