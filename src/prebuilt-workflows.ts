/**
 * The prebuilt workflow bundle: `npm run build` compiles src/ to lib/ and then bundles lib/workflows once into
 * lib/workflow-bundle.js (src/tools/build-workflow-bundle.ts). A worker process loads that file instead of running
 * webpack at every start; tests may still hand the worker `workflowsPath` or their own bundle.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';

export const WORKFLOW_BUNDLE_FILE = 'workflow-bundle.js';
/** The same workflows with the OpenTelemetry workflow interceptors, loaded only when tracing is on. */
export const TRACED_WORKFLOW_BUNDLE_FILE = 'workflow-bundle.traced.js';
/** What a bundle was built from (a hash of its inputs), so an unchanged build skips webpack. */
const inputsFileOf = (bundleFile: string) => bundleFile.replace(/\.js$/, '.inputs.json');

/**
 * Workflow interceptor modules in every bundle: the log context (task id, request id) of src/interceptors. `libDir`
 * is the compiled tree (lib/).
 */
export function workflowInterceptorModules(libDir: string, opts: { traced?: boolean } = {}): string[] {
  const modules = [require.resolve(path.join(libDir, 'interceptors', 'workflow-log-context'))];
  if (opts.traced) modules.push(require.resolve('@temporalio/interceptors-opentelemetry/lib/workflow-interceptors'));
  return modules;
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

/**
 * `{ codePath }` of the prebuilt bundle in `libDir` (the traced one with `traced`); throws, saying what to run, when
 * it is missing.
 */
export function prebuiltWorkflowBundle(
  libDir: string = __dirname,
  opts: { traced?: boolean } = {},
): { codePath: string } {
  const codePath = path.join(libDir, opts.traced ? TRACED_WORKFLOW_BUNDLE_FILE : WORKFLOW_BUNDLE_FILE);
  if (!existsSync(codePath))
    throw new Error(
      `the workflow bundle ${codePath} is missing: run \`npm run build\` (it compiles with tsc and then bundles ` +
        `the workflows; tsc alone does not)`,
    );
  return { codePath };
}

/**
 * The files the bundle is made of: lib/workflows/index.js and every relative require reachable from it, plus the
 * name and version of each package they require (webpack bundles those too). A change to any of them changes the hash.
 */
export function workflowBundleInputsHash(entry: string): string {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    const code = readFileSync(file, 'utf8');
    for (const m of code.matchAll(/require\(["']([^"']+)["']\)/g)) {
      const spec = m[1]!;
      if (spec.startsWith('.')) visit(require.resolve(path.resolve(path.dirname(file), spec)));
      else packages.add(packageVersion(spec, file));
    }
  };
  visit(require.resolve(entry));
  const hash = createHash('sha256');
  const root = path.dirname(require.resolve(entry));
  for (const f of [...files].sort()) hash.update(`${path.relative(root, f)}\0`).update(readFileSync(f));
  for (const p of [...packages].sort()) hash.update(`${p}\0`);
  return hash.digest('hex');
}

function packageVersion(spec: string, from: string): string {
  const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
  try {
    const pkg = require.resolve(`${name}/package.json`, { paths: [path.dirname(from)] });
    return `${name}@${(JSON.parse(readFileSync(pkg, 'utf8')) as { version?: string }).version ?? '?'}`;
  } catch {
    return name; // a Node built-in, or a package without an exported package.json
  }
}

/**
 * Bundles `workflowsPath` into `libDir/workflow-bundle.js`, unless the inputs are the same as at the last build.
 * Returns whether it bundled.
 */
export async function buildWorkflowBundle(opts: {
  workflowsPath: string;
  libDir: string;
  force?: boolean;
  /** Workflow interceptor modules bundled with the workflows. */
  interceptorModules?: string[];
  /** Default {@link WORKFLOW_BUNDLE_FILE}. */
  bundleFile?: string;
}): Promise<{ codePath: string; built: boolean }> {
  const bundleFile = opts.bundleFile ?? WORKFLOW_BUNDLE_FILE;
  const codePath = path.join(opts.libDir, bundleFile);
  const inputsPath = path.join(opts.libDir, inputsFileOf(bundleFile));
  const modules = opts.interceptorModules ?? [];
  const hash = [opts.workflowsPath, ...modules].map((entry) => workflowBundleInputsHash(entry)).join(':');
  if (!opts.force && existsSync(codePath) && existsSync(inputsPath)) {
    const last = JSON.parse(readFileSync(inputsPath, 'utf8')) as { hash?: string; bundle?: string };
    // The bundle itself must be the one written then, not a file put there since.
    if (last.hash === hash && last.bundle === sha256(readFileSync(codePath))) return { codePath, built: false };
  }
  // webpack's module list is noise in a build log; its warnings and errors still show.
  const { code } = await bundleWorkflowCode({
    workflowsPath: opts.workflowsPath,
    workflowInterceptorModules: modules,
    logger: new DefaultLogger('WARN'),
  });
  writeFileSync(codePath, code);
  writeFileSync(inputsPath, JSON.stringify({ hash, bundle: sha256(code) }) + '\n');
  return { codePath, built: true };
}
