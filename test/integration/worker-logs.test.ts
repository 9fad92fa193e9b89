/**
 * The worker process's log (issue 10 item 6): `node lib/worker.js`, started from the prebuilt workflow bundle, writes
 * one JSON format for its own lines, the SDK's activity logger and workflow `log` (through Runtime.install). Real
 * processes: dev server, redis-server, the worker; the platform is a local webhook endpoint.
 */
import { readFileSync } from 'node:fs';
import { publishRequest, startFaultStack, startSingle, type FaultStack } from './fault-helpers';

let stack: FaultStack;

beforeAll(async () => {
  stack = await startFaultStack({ name: 'logs', accounts: 2 });
}, 120_000);

afterAll(async () => {
  await stack?.close();
}, 60_000);

type Line = Record<string, unknown>;

function parseLines(text: string): { json: Line[]; other: string[] } {
  const json: Line[] = [];
  const other: string[] = [];
  for (const l of text.split('\n').filter((x) => x.trim() !== '')) {
    try {
      json.push(JSON.parse(l) as Line);
    } catch {
      other.push(l);
    }
  }
  return { json, other };
}

test('a worker started from the bundle logs its own, activity and workflow lines as one JSON format, with the run and the task on each', async () => {
  // Arrange: a worker; the endpoint answers 401, so the upload fails with AuthExpired, the task files a review and the
  // account's gate (a workflow) logs that the account needs a new login.
  const worker = await stack.startWorker('logs-w1', { PUBFLOW_LOG_LEVEL: 'info' });
  stack.endpoint.behaviour = () => ({ status: 401 });
  const taskId = `logs-single-${Date.now().toString(36)}`;

  // Act
  const handle = await startSingle(stack, {
    taskQueue: stack.taskQueue,
    request: publishRequest(stack, 0),
    workflowId: taskId,
  });
  const { runId } = await handle.describe();
  await worker.waitForLog('review filed');
  await worker.waitForLog('account needs a new login; its queue is held until it is reactivated');
  await worker.stop();

  // Assert: every line the process wrote, on stdout and stderr, is JSON.
  const { json, other } = parseLines(readFileSync(worker.logFile, 'utf8'));
  expect(other).toEqual([]);
  for (const l of json) {
    expect(l).toEqual(expect.objectContaining({ component: 'worker', msg: expect.any(String) }));
    expect(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).toContain(l.level);
    expect(Number.isNaN(Date.parse(String(l.ts)))).toBe(false);
    expect(l).not.toHaveProperty('taskToken');
  }
  const byMsg = (msg: string) => json.filter((l) => l.msg === msg);
  expect(byMsg('worker started')).toEqual([expect.objectContaining({ level: 'info', taskQueue: stack.taskQueue })]);
  // The SDK's activity logger: the workflow's id and run, the activity's attempt, and ours.
  expect(byMsg('upload started')).toEqual([
    expect.objectContaining({
      level: 'info',
      sdkComponent: 'activity',
      activityType: 'upload',
      workflowId: taskId,
      runId,
      attempt: 1,
      taskId,
      taskAttempt: 1,
    }),
  ]);
  expect(byMsg('upload failed')).toEqual([
    expect.objectContaining({ level: 'warn', workflowId: taskId, runId, taskId, kind: 'AuthExpired' }),
  ]);
  expect(byMsg('review filed')).toEqual([
    expect.objectContaining({ level: 'warn', sdkComponent: 'activity', workflowId: taskId, runId, taskId }),
  ]);
  // Workflow `log` through the SDK's logger sink: the gate's own workflow id and run, the task in the fields.
  const [held] = byMsg('account needs a new login; its queue is held until it is reactivated');
  expect(held).toEqual(
    expect.objectContaining({
      level: 'warn',
      sdkComponent: 'workflow',
      workflowType: 'accountGate',
      workflowId: expect.any(String),
      runId: expect.any(String),
      taskId,
    }),
  );
});
