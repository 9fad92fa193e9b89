/**
 * Replay safety: every recorded history in test/replay/histories/ must replay against today's workflow code. A change
 * to a workflow's commands that is not behind `patched()` fails here (see CONTRIBUTING.md, "Changing a workflow").
 * No server is needed: `Worker.runReplayHistories` replays in the worker alone.
 */
import { cpSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { HistoryAndWorkflowId } from '@temporalio/client';
import { bundleWorkflowCode, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { workflowBundle } from '../helpers/harness';
import { tempDir } from '../helpers/servers';
import { GATE_PROTOCOL, TASK_PROTOCOL } from '../../src/shared/workflow-contracts';
import { historyFromJSON, type History } from './history-json';

const ROOT = path.resolve(__dirname, '../..');
const HISTORIES = path.join(__dirname, 'histories');

interface Fixture extends HistoryAndWorkflowId {
  /** The file name, without `.json`. */
  name: string;
  workflowType: string;
  history: History;
}

function loadFixtures(): Fixture[] {
  // Subfolders too: histories kept for a patch's old branch live in `before-<patch id>/` (CONTRIBUTING.md).
  return readdirSync(HISTORIES, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => {
      const history = historyFromJSON(JSON.parse(readFileSync(path.join(HISTORIES, f), 'utf8')));
      const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
      // The recorded id: the workflows derive ids from their own (children, gate tickets, signal targets).
      const workflowId = started?.workflowId;
      if (!started || !workflowId) throw new Error(`${f}: not a history from its first event`);
      return { name: f.slice(0, -'.json'.length), workflowId, workflowType: started.workflowType?.name ?? '', history };
    });
}

/** Replays the fixtures on `bundle`: fixture name -> its replay error (undefined: it replayed cleanly). */
async function replay(bundle: WorkflowBundleWithSourceMap, fixtures: Fixture[]) {
  const out = new Map<string, Error | undefined>();
  // One history at a time, results in input order (runReplayHistories waits for each replay before the next).
  let k = 0;
  for await (const result of Worker.runReplayHistories({ workflowBundle: bundle }, fixtures)) {
    const fixture = fixtures[k++]!;
    expect(result.workflowId).toBe(fixture.workflowId);
    out.set(fixture.name, result.error);
  }
  return out;
}

const fixtures = loadFixtures();

test('the fixtures cover every representative history, for every protocol a run may carry', () => {
  const representative = [
    'single-success',
    'single-review-retry-success',
    'single-cancel-running',
    'batch-run-1',
    'batch-run-2',
    'batch-child',
    'gate-account-several-tasks',
  ];
  // Unversioned (before protocol 2) at the top, then one folder per protocol up to today's (record-histories.ts).
  const sets = ['', ...Array.from({ length: TASK_PROTOCOL - 1 }, (_, k) => `protocol-${k + 2}/`)];
  expect(fixtures.map((f) => f.name)).toEqual(
    expect.arrayContaining(sets.flatMap((dir) => representative.map((name) => `${dir}${name}`))),
  );
  // Gates carry their own protocol: today's gate code has its set (record-histories.ts, `gate protocol N`).
  expect(fixtures.map((f) => f.name)).toContain(`gate-protocol-${GATE_PROTOCOL}/gate-account-needs-login`);
  // Each set's runs carry the protocol its folder names (a batch's child carries the protocol of the code that
  // started it, whatever its batch's).
  const started = fixtures.filter((x) => ['publishSingle', 'publishBatch'].includes(x.workflowType));
  for (const f of started.filter((x) => !x.name.endsWith('batch-child'))) {
    const input = f.history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]?.data;
    const protocol = (JSON.parse(Buffer.from(input ?? []).toString('utf8')) as { protocol?: number }).protocol;
    const folder = /^protocol-(\d+)\//.exec(f.name)?.[1];
    if (!f.name.startsWith('before-'))
      expect([f.name, protocol]).toEqual([f.name, folder ? Number(folder) : undefined]);
  }
  // The batch fixtures include a run that continued as new.
  const continued = fixtures.filter((f) =>
    f.history.events?.some((e) => e.workflowExecutionContinuedAsNewEventAttributes),
  );
  expect(continued.map((f) => f.workflowType)).toContain('publishBatch');
});

test('every recorded history replays against the current workflow code', async () => {
  const results = await replay(await workflowBundle(), fixtures);
  expect(results.size).toBe(fixtures.length);
  const failures = [...results].filter(([, err]) => err).map(([name, err]) => `${name}: ${err!.name}: ${err!.message}`);
  expect(failures).toEqual([]);
});

test('a workflow change that breaks determinism fails the replay (an added sleep at the start of publishSingle)', async () => {
  // A copy of src/ with one timer added before everything publishSingle does; its packages resolve from ours.
  const dir = tempDir('replay-mutant');
  cpSync(path.join(ROOT, 'src'), path.join(dir, 'src'), { recursive: true });
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  const file = path.join(dir, 'src/workflows/publish-single.ts');
  const source = readFileSync(file, 'utf8');
  const start = /export async function publishSingle\([^)]*\)[^{]*\{/;
  expect(source).toMatch(start);
  writeFileSync(
    file,
    `import { sleep as addedSleep } from '@temporalio/workflow';\n` +
      source.replace(start, (head) => `${head}\n  await addedSleep(1);`),
  );
  const mutant = await bundleWorkflowCode({
    workflowsPath: path.join(dir, 'src/workflows'),
    logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} },
  });

  const results = await replay(mutant, fixtures);

  const singles = fixtures.filter((f) => f.workflowType === 'publishSingle').map((f) => f.name);
  expect(singles.length).toBeGreaterThanOrEqual(3);
  for (const name of singles) expect(results.get(name)).toBeInstanceOf(DeterminismViolationError);
  // The other workflows did not change, and still replay.
  const others = fixtures.filter((f) => f.workflowType !== 'publishSingle').map((f) => f.name);
  for (const name of others) expect(results.get(name)).toBeUndefined();
});
