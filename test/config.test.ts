import { loadConfig, parseDuration } from '../src/config';

test('durations: the README formats, plain milliseconds and spelled-out units', () => {
  expect(parseDuration('500ms')).toBe(500);
  expect(parseDuration('30s')).toBe(30_000);
  expect(parseDuration(' 5m ')).toBe(300_000);
  expect(parseDuration('2h')).toBe(7_200_000);
  expect(parseDuration('7d')).toBe(604_800_000);
  expect(parseDuration('1.5h')).toBe(5_400_000);
  expect(parseDuration('250')).toBe(250);
  expect(parseDuration('5 minutes')).toBe(300_000);
});

test.each(['', 'soon', '-1h', '30x', 'Infinity'])('"%s" is not a duration', (v) => {
  expect(() => parseDuration(v)).toThrow(`not a duration: "${v}"`);
});

test('env durations reach the config in milliseconds', () => {
  const c = loadConfig({
    PUBFLOW_SHUTDOWN_GRACE: '5s',
    PUBFLOW_UPLOAD_TIMEOUTS: '{"webhook":"10m"}',
    PUBFLOW_STATUS_TTL: '2d',
  });
  expect(c.shutdownGraceMs).toBe(5000);
  expect(c.statusTtlSeconds).toBe(172_800);
  expect(c.policyFor('webhook').uploadTimeoutMs).toBe(600_000);
  expect(c.policyFor('local').uploadTimeoutMs).toBe(1_800_000);
  expect(c.policyFor('local').heartbeatTimeoutMs).toBe(30_000);
});

test('a bad duration or log level stops start-up with a message naming the variable', () => {
  expect(() => loadConfig({ PUBFLOW_HEARTBEAT_TIMEOUT: 'soon' })).toThrow(
    /PUBFLOW_HEARTBEAT_TIMEOUT: not a duration: "soon"/,
  );
  expect(() => loadConfig({ PUBFLOW_UPLOAD_TIMEOUTS: '{"webhook":"-5m"}' })).toThrow(
    /PUBFLOW_UPLOAD_TIMEOUTS: not a duration: "-5m"/,
  );
  expect(() => loadConfig({ PUBFLOW_LOG_LEVEL: 'loud' })).toThrow(/PUBFLOW_LOG_LEVEL/);
  expect(loadConfig({ PUBFLOW_LOG_LEVEL: 'DEBUG' }).logLevel).toBe('debug');
  expect(loadConfig({}).logLevel).toBe('info');
});

test('PUBFLOW_WORKFLOW_TASK_SLOTS: the SDK default of 40 unless set; under 2 stops start-up naming it', () => {
  expect(loadConfig({}).workflowTaskSlots).toBe(40);
  expect(loadConfig({ PUBFLOW_WORKFLOW_TASK_SLOTS: '8' }).workflowTaskSlots).toBe(8);
  expect(() => loadConfig({ PUBFLOW_WORKFLOW_TASK_SLOTS: '1' })).toThrow(/PUBFLOW_WORKFLOW_TASK_SLOTS/);
});

test('PUBFLOW_WORKFLOW_CACHE: the SDK default unless set; below the workflow-task slots stops start-up naming both', () => {
  expect(loadConfig({}).workflowCacheSize).toBeUndefined();
  expect(loadConfig({ PUBFLOW_WORKFLOW_CACHE: '' }).workflowCacheSize).toBeUndefined();
  expect(loadConfig({ PUBFLOW_WORKFLOW_CACHE: '500' }).workflowCacheSize).toBe(500);
  expect(() => loadConfig({ PUBFLOW_WORKFLOW_CACHE: '20' })).toThrow(
    /PUBFLOW_WORKFLOW_CACHE: 20 is below PUBFLOW_WORKFLOW_TASK_SLOTS \(40\)/,
  );
  expect(loadConfig({ PUBFLOW_WORKFLOW_CACHE: '20', PUBFLOW_WORKFLOW_TASK_SLOTS: '8' }).workflowCacheSize).toBe(20);
  expect(() => loadConfig({ PUBFLOW_WORKFLOW_CACHE: 'many' })).toThrow(/PUBFLOW_WORKFLOW_CACHE/);
});
