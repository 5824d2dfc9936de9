import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import reactHooks from 'eslint-plugin-react-hooks';

export default tseslint.config(
  // test/fixtures/lint/: files that must fail a rule (test/lint.test.ts lints them on purpose).
  { ignores: ['dist/', 'node_modules/', 'coverage/', 'bin/', 'test/fixtures/lint/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    // ui/ (the dashboard, .tsx) is checked by its own tsconfig, which the project service finds.
    files: ['**/*.ts', '**/*.tsx'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { 'import-x': importX },
    // `./x.js` in TypeScript sources names `./x.ts`: without this resolver import-x cannot
    // follow such imports, and no-cycle would pass any cycle.
    settings: {
      'import-x/resolver-next': [createTypeScriptImportResolver()],
      // …and to look inside the files it resolves to, it must know they are TypeScript.
      'import-x/extensions': ['.ts', '.tsx', '.js', '.mjs'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts', '.tsx'] },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      'import-x/no-cycle': 'error',
    },
  },
  {
    // The dashboard's components: hooks called unconditionally, with the dependencies they read.
    files: ['ui/**/*.tsx', 'ui/**/*.ts'],
    plugins: { 'react-hooks': reactHooks },
    rules: {
      'react-hooks/rules-of-hooks': 'error',
      'react-hooks/exhaustive-deps': 'error',
    },
  },
  {
    // Plain Node scripts (example helpers).
    files: ['**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly' } },
  },
  {
    // The interpreter is pure: no I/O, clock or randomness (DESIGN.md, asl/).
    files: ['src/asl/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: ['node:*', 'fs', 'child_process', 'net', 'http', 'https', 'os', 'crypto'] },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: 'inject a clock' },
        { object: 'Math', property: 'random', message: 'inject randomness' },
      ],
      'no-restricted-globals': ['error', 'process', 'setTimeout', 'setInterval', 'fetch'],
    },
  },
);
