// ESLint flat config: typescript-eslint's recommended rules, with formatting left to Prettier.
import js from '@eslint/js';
import globals from 'globals';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'models/', 'bench/results/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  prettier,
  {
    languageOptions: { globals: globals.node },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  // Boundaries: an app never imports another app's source, and a lib never imports an app. What two processes
  // share lives in a lib (@switchyard/config, @switchyard/protocol, ...). Tests and benchmarks may drive apps.
  boundary('apps/api/**/*.ts', ['**/gpu-worker/**'], 'the API may not import the worker app: share through a lib'),
  boundary(
    'apps/gpu-worker/**/*.ts',
    ['**/api/src/**', '**/apps/api/**'],
    'the worker may not import the API app: share through a lib',
  ),
  boundary('libs/**/*.ts', ['**/apps/**', '**/api/src/**', '**/gpu-worker/src/**'], 'a lib may not import an app'),
);

function boundary(files, patterns, message) {
  return {
    files: [files],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ group: patterns, message }] }] },
  };
}
