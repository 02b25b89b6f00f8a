// ESLint flat config: typescript-eslint's type-checked recommended rules, with formatting left to Prettier.
import js from '@eslint/js';
import globals from 'globals';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

/** How an import may name each app's source. */
const APP_SOURCES = {
  api: ['**/apps/api/**', '**/api/src/**'],
  'gpu-worker': ['**/apps/gpu-worker/**', '**/gpu-worker/src/**'],
  launcher: ['**/apps/launcher/**', '**/launcher/src/**'],
};

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
  // Boundaries: an app never imports another app's source (the launcher runs the others as processes, by their
  // compiled paths), and a lib never imports an app. What two processes share lives in a lib. Tests and benchmarks
  // may drive apps.
  ...Object.keys(APP_SOURCES).map((app) =>
    boundary(
      `apps/${app}/**/*.ts`,
      Object.entries(APP_SOURCES).flatMap(([other, patterns]) => (other === app ? [] : patterns)),
      `the ${app} app may not import another app: share through a lib`,
    ),
  ),
  boundary('libs/**/*.ts', Object.values(APP_SOURCES).flat(), 'a lib may not import an app'),
);

function boundary(files, patterns, message) {
  return {
    files: [files],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ group: patterns, message }] }] },
  };
}
