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
/** What the bundle was built from (a hash of its inputs), so an unchanged build skips webpack. */
const INPUTS_FILE = 'workflow-bundle.inputs.json';

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

/** `{ codePath }` of the prebuilt bundle in `libDir`; throws, saying what to run, when it is missing. */
export function prebuiltWorkflowBundle(libDir: string = __dirname): { codePath: string } {
  const codePath = path.join(libDir, WORKFLOW_BUNDLE_FILE);
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
}): Promise<{ codePath: string; built: boolean }> {
  const codePath = path.join(opts.libDir, WORKFLOW_BUNDLE_FILE);
  const inputsPath = path.join(opts.libDir, INPUTS_FILE);
  const hash = workflowBundleInputsHash(opts.workflowsPath);
  if (!opts.force && existsSync(codePath) && existsSync(inputsPath)) {
    const last = JSON.parse(readFileSync(inputsPath, 'utf8')) as { hash?: string; bundle?: string };
    // The bundle itself must be the one written then, not a file put there since.
    if (last.hash === hash && last.bundle === sha256(readFileSync(codePath))) return { codePath, built: false };
  }
  // webpack's module list is noise in a build log; its warnings and errors still show.
  const { code } = await bundleWorkflowCode({ workflowsPath: opts.workflowsPath, logger: new DefaultLogger('WARN') });
  writeFileSync(codePath, code);
  writeFileSync(inputsPath, JSON.stringify({ hash, bundle: sha256(code) }) + '\n');
  return { codePath, built: true };
}
