import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { prebuiltWorkflowBundle, workflowBundleInputsHash } from '../src/prebuilt-workflows';
import { tempDir } from './helpers/servers';

test('a missing bundle is an error that says to run npm run build', () => {
  const dir = tempDir('no-bundle');
  expect(() => prebuiltWorkflowBundle(dir)).toThrow(/workflow-bundle\.js is missing: run `npm run build`/);
  writeFileSync(path.join(dir, 'workflow-bundle.js'), '// bundle');
  expect(prebuiltWorkflowBundle(dir)).toEqual({ codePath: path.join(dir, 'workflow-bundle.js') });
});

test('the bundle inputs hash changes with a file the workflows require, and not with one they do not', () => {
  const dir = tempDir('bundle-inputs');
  mkdirSync(path.join(dir, 'workflows'));
  mkdirSync(path.join(dir, 'shared'));
  const entry = path.join(dir, 'workflows');
  writeFileSync(path.join(entry, 'index.js'), 'const a = require("./a");\nrequire("@temporalio/workflow");\n');
  writeFileSync(path.join(entry, 'a.js'), 'require("../shared/b");\n');
  writeFileSync(path.join(dir, 'shared', 'b.js'), 'exports.b = 1;\n');
  writeFileSync(path.join(dir, 'api.js'), 'exports.api = 1;\n');
  const before = workflowBundleInputsHash(entry);

  writeFileSync(path.join(dir, 'api.js'), 'exports.api = 2;\n');
  expect(workflowBundleInputsHash(entry)).toBe(before);

  writeFileSync(path.join(dir, 'shared', 'b.js'), 'exports.b = 2;\n');
  expect(workflowBundleInputsHash(entry)).not.toBe(before);
});
