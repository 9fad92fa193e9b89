/**
 * The prebuilt bundles carry workflow interceptors (src/interceptors/workflow-log-context.ts in both, the
 * OpenTelemetry ones in the traced bundle). Interceptors must not change a workflow's commands: every recorded
 * history of test/replay/histories replays cleanly on both bundles as `npm run build` writes them to lib/.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Worker } from '@temporalio/worker';
import { prebuiltWorkflowBundle } from '../../src/prebuilt-workflows';
import { historyFromJSON } from '../replay/history-json';

const ROOT = path.resolve(__dirname, '../..');
const HISTORIES = path.join(ROOT, 'test/replay/histories');
const LIB = path.join(ROOT, 'lib');

const fixtures = readdirSync(HISTORIES, { recursive: true, encoding: 'utf8' })
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => {
    const history = historyFromJSON(JSON.parse(readFileSync(path.join(HISTORIES, f), 'utf8')));
    const workflowId = history.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowId ?? '';
    return { name: f, workflowId, history };
  });

beforeAll(() => {
  if (!existsSync(path.join(LIB, 'workflow-bundle.traced.js')))
    throw new Error('lib/ has no workflow bundles: run `npm run build` first (make test does)');
});

test.each([
  ['without tracing', false],
  ['with the OpenTelemetry interceptors', true],
])('every recorded history replays on the prebuilt bundle %s', async (_what, traced) => {
  expect(fixtures.length).toBeGreaterThanOrEqual(7);
  const workflowBundle = prebuiltWorkflowBundle(LIB, { traced });
  const failures: string[] = [];
  let replayed = 0;
  // The traced workflows export finished spans through this sink (none while replaying; it must exist all the same).
  const sinks = traced ? { exporter: { export: { fn: () => undefined } } } : undefined;
  for await (const r of Worker.runReplayHistories({ workflowBundle, ...(sinks ? { sinks } : {}) }, fixtures)) {
    replayed++;
    if (r.error) failures.push(`${r.workflowId}: ${r.error.name}: ${r.error.message}`);
  }
  expect(failures).toEqual([]);
  expect(replayed).toBe(fixtures.length);
});

test('only the traced bundle has OpenTelemetry in it; both have the log context', () => {
  const plain = readFileSync(prebuiltWorkflowBundle(LIB).codePath, 'utf8');
  const traced = readFileSync(prebuiltWorkflowBundle(LIB, { traced: true }).codePath, 'utf8');
  for (const code of [plain, traced]) expect(code).toContain('pubflow-request-id');
  expect(plain).not.toMatch(/OpenTelemetryInboundInterceptor|@opentelemetry/);
  expect(traced).toContain('OpenTelemetryInboundInterceptor');
});
