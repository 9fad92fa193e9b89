import { Writable } from 'node:stream';
import { runInRequestContext } from '../src/interceptors/request-context';
import { createLogger, fromTemporalLogger, logLevelFromEnv, toTemporalLogger, type LogLevel } from '../src/log';

/** A destination that keeps the lines pino writes. */
function capture(level: LogLevel = 'info') {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n').filter(Boolean))
        lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { lines, log: createLogger('test', { level, destination: stream }) };
}

test('a line is JSON with level, ISO time, component, fields and msg; below the level nothing is written', () => {
  const { lines, log } = capture('info');
  log.debug('not written');
  log.info('hello', { taskId: 'pub-1', n: 2 });
  log.warn('careful');
  expect(lines).toEqual([
    expect.objectContaining({ level: 'info', component: 'test', msg: 'hello', taskId: 'pub-1', n: 2 }),
    expect.objectContaining({ level: 'warn', component: 'test', msg: 'careful' }),
  ]);
  expect(new Date(String(lines[0]!.ts)).toISOString()).toBe(lines[0]!.ts);
});

test('a child logger adds its bindings to every line and keeps the component', () => {
  const { lines, log } = capture();
  log.child({ taskId: 'pub-2' }).error('failed', { kind: 'Unconfirmed' });
  expect(lines).toEqual([
    expect.objectContaining({ level: 'error', component: 'test', taskId: 'pub-2', kind: 'Unconfirmed', msg: 'failed' }),
  ]);
});

test('PUBFLOW_LOG_LEVEL sets the level; a missing or unknown value means info', () => {
  expect(logLevelFromEnv({ PUBFLOW_LOG_LEVEL: 'debug' })).toBe('debug');
  expect(logLevelFromEnv({ PUBFLOW_LOG_LEVEL: ' WARN ' })).toBe('warn');
  expect(logLevelFromEnv({})).toBe('info');
  expect(logLevelFromEnv({ PUBFLOW_LOG_LEVEL: 'loud' })).toBe('info');
});

test("the SDK's lines come out as ours: levels mapped, an activity's workflowRunId as runId, no task token", () => {
  const { lines, log } = capture('debug');
  const sdk = toTemporalLogger(log);
  sdk.trace('dropped below debug');
  sdk.log('WARN', 'upload failed', {
    sdkComponent: 'activity',
    workflowId: 'pub-3',
    workflowRunId: 'run-3',
    attempt: 1,
    taskToken: 'c2VjcmV0',
    [Symbol.for('log_timestamp')]: 1n,
  });
  sdk.debug('Workflow started', { sdkComponent: 'worker', workflowId: 'pub-3', runId: 'run-3' });
  expect(lines).toHaveLength(2);
  expect(lines[0]).toEqual(
    expect.objectContaining({ level: 'warn', msg: 'upload failed', workflowId: 'pub-3', runId: 'run-3', attempt: 1 }),
  );
  expect(lines[0]).not.toHaveProperty('taskToken');
  expect(lines[0]).not.toHaveProperty('workflowRunId');
  expect(lines[1]).toEqual(expect.objectContaining({ level: 'debug', msg: 'Workflow started', runId: 'run-3' }));
});

test("ours over the SDK's activity logger keeps the bindings and the SDK adds its own", () => {
  const { lines, log } = capture();
  // What Context.current().log does: the activity's attributes, then the caller's.
  const activityLog = toTemporalLogger(log.child({ workflowId: 'pub-4', attempt: 2 }));
  fromTemporalLogger(activityLog, { taskId: 'pub-4' }).child({ stage: 'reconcile' }).info('reconcile done', { n: 1 });
  expect(lines).toEqual([
    expect.objectContaining({
      msg: 'reconcile done',
      workflowId: 'pub-4',
      attempt: 2,
      taskId: 'pub-4',
      stage: 'reconcile',
      n: 1,
    }),
  ]);
});

test('a line logged while a request is served carries its id, also after an await; its own requestId wins', async () => {
  const { lines, log } = capture();
  log.info('before');
  await runInRequestContext({ requestId: 'req-1', taskIds: new Set() }, async () => {
    log.info('inside');
    await new Promise((resolve) => setTimeout(resolve, 1));
    log.child({ taskId: 'pub-3' }).warn('later');
    log.info('explicit', { requestId: 'req-2' });
  });
  log.info('after');
  expect(lines.map((l) => [l.msg, l.requestId])).toEqual([
    ['before', undefined],
    ['inside', 'req-1'],
    ['later', 'req-1'],
    ['explicit', 'req-2'],
    ['after', undefined],
  ]);
});
