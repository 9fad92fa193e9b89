import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importPlugin from 'eslint-plugin-import';
import { builtinModules } from 'node:module';

const nodeBuiltins = builtinModules.flatMap((m) => [m, `node:${m}`]);

export default tseslint.config(
  { ignores: ['lib/**', 'node_modules/**', '.tools/**', 'data/**', 'coverage/**', '*.js', '*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { project: ['./tsconfig.json'], tsconfigRootDir: import.meta.dirname },
    },
    plugins: { import: importPlugin },
    settings: { 'import/resolver': { node: { extensions: ['.ts', '.js'] } } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'import/no-cycle': 'error',
    },
  },
  {
    // Workflow code is replayed deterministically inside the worker's sandbox: no I/O, no Node built-ins.
    files: ['src/workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            ...nodeBuiltins.map((name) => ({ name, message: 'Workflow code must not use Node built-ins.' })),
            ...[
              'ioredis',
              'express',
              'axios',
              'undici',
              '@temporalio/activity',
              '@temporalio/client',
              '@temporalio/worker',
            ].map((name) => ({ name, message: 'Workflow code must not do I/O; use an activity.' })),
          ],
          patterns: [
            {
              group: ['../activities/*', '../platforms/*', '../projection/*', '../api/*'],
              message: 'Workflows import activities as types only, via ../activities.',
            },
          ],
        },
      ],
    },
  },
  {
    // The client side (API, service, the reconcile command) talks to workflows through their contracts in
    // src/shared/ only: loading workflow modules there would run workflow code outside the sandbox and blur the layers.
    files: ['src/api/**/*.ts', 'src/service/**/*.ts', 'src/api.ts', 'src/reconcile.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '(^|/)workflows(/|$)',
              message: 'The API and the service import workflow contracts from src/shared/, never src/workflows/.',
            },
          ],
        },
      ],
    },
  },
);
