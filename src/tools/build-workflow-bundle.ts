/**
 * The second step of `npm run build` (after tsc): bundles lib/workflows into lib/workflow-bundle.js, which the worker
 * process loads. Skips webpack when the workflow code has not changed; `--force` bundles anyway.
 */
import path from 'node:path';
import { buildWorkflowBundle } from '../prebuilt-workflows';

async function run(): Promise<void> {
  const libDir = path.resolve(__dirname, '..');
  const { codePath, built } = await buildWorkflowBundle({
    workflowsPath: path.join(libDir, 'workflows'),
    libDir,
    force: process.argv.includes('--force'),
  });
  process.stderr.write(
    `workflow bundle ${built ? 'written' : 'up to date'}: ${path.relative(process.cwd(), codePath)}\n`,
  );
}

run().catch((err) => {
  process.stderr.write(`building the workflow bundle failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
