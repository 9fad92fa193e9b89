/**
 * The layering rule in eslint.config.mjs holds: the API and the service never import workflow modules. Runs the
 * project's ESLint (a child process: jest's VM cannot load the ESM config) on real files of the project with one
 * import added, so the test fails if the rule is dropped or stops matching.
 */
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const ROOT = path.resolve(__dirname, '../..');
const ESLINT = path.join(ROOT, 'node_modules/.bin/eslint');

/**
 * `ruleId: message` of every problem ESLint finds in `file` with `extraImport` prepended. The text is linted as a
 * probe file beside the real one (typed linting reads files from disk, so `--stdin` would lint the unchanged file),
 * removed afterwards.
 */
async function lintWith(file: string, extraImport: string): Promise<string[]> {
  const probe = path.join(path.dirname(file), `__layering-probe-${process.pid}.ts`);
  writeFileSync(path.join(ROOT, probe), `${extraImport}\n${readFileSync(path.join(ROOT, file), 'utf8')}`);
  try {
    // Exit code 1 means problems were found: the report is on stdout either way.
    const { stdout } = await promisify(execFile)(ESLINT, ['--format', 'json', '--no-ignore', probe], {
      cwd: ROOT,
    }).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '[]' }));
    const [result] = JSON.parse(stdout) as { messages: { ruleId: string; message: string }[] }[];
    return (result?.messages ?? []).map((m) => `${m.ruleId}: ${m.message}`);
  } finally {
    rmSync(path.join(ROOT, probe), { force: true });
  }
}

test.each([
  ['src/api/app.ts', "import type { publishSingle } from '../workflows';"],
  ['src/api/batch.ts', "import type { PublishBatchInput } from '../workflows/publish-batch';"],
  ['src/service/publish.ts', "import { publishSingle } from '../workflows/publish-single';"],
])(
  '%s may not import workflow code (%s)',
  async (file, line) => {
    const problems = await lintWith(file, line);
    expect(problems.filter((p) => p.startsWith('no-restricted-imports'))).toEqual([
      expect.stringContaining('import workflow contracts from src/shared/, never src/workflows/'),
    ]);
  },
  60_000,
);

test('importing the contracts from shared/ is allowed', async () => {
  const problems = await lintWith('src/api/app.ts', "import '../shared/workflow-contracts';");
  expect(problems.filter((p) => p.startsWith('no-restricted-imports'))).toEqual([]);
}, 60_000);
