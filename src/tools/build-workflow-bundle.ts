/**
 * The second step of `npm run build` (after tsc): bundles lib/workflows into lib/workflow-bundle.js, which the worker
 * process loads, and the same with the OpenTelemetry workflow interceptors into lib/workflow-bundle.traced.js (loaded
 * only when OTEL_EXPORTER_OTLP_ENDPOINT is set). Skips webpack when a bundle's inputs have not changed; `--force`
 * bundles anyway.
 */
import path from 'node:path';
import {
  buildWorkflowBundle,
  TRACED_WORKFLOW_BUNDLE_FILE,
  WORKFLOW_BUNDLE_FILE,
  workflowInterceptorModules,
} from '../prebuilt-workflows';

async function run(): Promise<void> {
  const libDir = path.resolve(__dirname, '..');
  for (const traced of [false, true]) {
    const { codePath, built } = await buildWorkflowBundle({
      workflowsPath: path.join(libDir, 'workflows'),
      libDir,
      force: process.argv.includes('--force'),
      interceptorModules: workflowInterceptorModules(libDir, { traced }),
      bundleFile: traced ? TRACED_WORKFLOW_BUNDLE_FILE : WORKFLOW_BUNDLE_FILE,
    });
    process.stderr.write(
      `workflow bundle ${built ? 'written' : 'up to date'}: ${path.relative(process.cwd(), codePath)}\n`,
    );
  }
}

run().catch((err) => {
  process.stderr.write(`building the workflow bundle failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
