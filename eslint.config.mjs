// ESLint flat config: typescript-eslint's type-checked recommended rules, with formatting left to Prettier.
import js from '@eslint/js';
import globals from 'globals';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'models/', 'bench/results/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  prettier,
  {
    languageOptions: {
      globals: globals.node,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  // plain JavaScript (the launcher's bin, the test runner, CI scripts) is outside the TypeScript project
  { files: ['**/*.mjs', '**/*.js', '**/*.cjs'], ...tseslint.configs.disableTypeChecked },
  // node:test's describe/it/hooks return promises that the runner itself awaits
  {
    files: ['**/*.spec.ts', '**/*.e2e-spec.ts'],
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            {
              from: 'package',
              package: 'node:test',
              name: ['describe', 'it', 'test', 'suite', 'before', 'after', 'beforeEach', 'afterEach'],
            },
          ],
        },
      ],
    },
  },
  // Boundaries: an app never imports another app's source, and a lib never imports an app. What two processes
  // share lives in a lib (@switchyard/config, @switchyard/protocol, ...). Tests and benchmarks may drive apps.
  boundary(
    'apps/api/**/*.ts',
    ['**/gpu-worker/**', '**/launcher/src/**', '**/apps/launcher/**'],
    'the API may not import another app: share through a lib',
  ),
  boundary(
    'apps/gpu-worker/**/*.ts',
    ['**/api/src/**', '**/apps/api/**', '**/launcher/src/**', '**/apps/launcher/**'],
    'the worker may not import another app: share through a lib',
  ),
  // the launcher runs the other apps as processes (by their compiled paths), never by importing them
  boundary(
    'apps/launcher/**/*.ts',
    ['**/api/src/**', '**/apps/api/**', '**/gpu-worker/**'],
    'the launcher may not import another app: spawn it, and share through a lib',
  ),
  boundary(
    'libs/**/*.ts',
    ['**/apps/**', '**/api/src/**', '**/gpu-worker/src/**', '**/launcher/src/**'],
    'a lib may not import an app',
  ),
);

function boundary(files, patterns, message) {
  return {
    files: [files],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ group: patterns, message }] }] },
  };
}
