// Lint: typescript-eslint's recommended rules that need no type information (fast: no program is
// built), plus the layer rules on imports. The direction of the layers between our own folders
// (core <- postgres/redis <- ops <- cli) and the absence of import cycles are checked by
// dependency-cruiser (.dependency-cruiser.cjs); this file keeps packages out of the layers that must
// not use them. See ARCHITECTURE.md.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Packages and Node modules that do I/O: none of them in src/core (pure logic, unit-tested). */
const IO_PACKAGES = [
  'pg', 'pg-*', 'ioredis', '@electric-sql/*',
  'node:fs', 'node:fs/*', 'fs', 'fs/*', 'node:net', 'net', 'node:tls', 'tls', 'node:dgram', 'node:dns', 'node:http', 'node:https', 'node:http2',
  'node:child_process', 'child_process', 'node:worker_threads', 'node:os', 'os', 'node:process', 'node:readline', 'node:tty',
];
/** The presenter's packages: only src/cli formats for a terminal or parses argv. */
const PRESENTER_PACKAGES = ['chalk', 'cli-table3', 'commander'];

const restrict = (packages, why) => ['error', { patterns: [{ group: packages, message: why }] }];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2023, sourceType: 'module', globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', queueMicrotask: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly', TextDecoder: 'readonly', TextEncoder: 'readonly', performance: 'readonly', structuredClone: 'readonly', fetch: 'readonly' } },
    rules: {
      // `_`-prefixed names are deliberately unused (a parameter kept for its position, a rest sibling).
      // The regexes that match control characters (ANSI escapes in output, NUL in identifiers) mean to.
      'no-control-regex': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
    },
  },
  { files: ['**/*.cjs'], languageOptions: { sourceType: 'commonjs', globals: { module: 'writable', require: 'readonly' } } },
  {
    // Rows read through pg are typed by pg's QueryResultRow (`any`-valued); the default row type
    // and the ledger's row mirror it. Typing each query's row where it is read is a change across
    // files being restructured now (src/postgres/migrator.ts); kept off here until then.
    files: ['src/postgres/**/*.ts', 'test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // zod as a namespace import: its named export `z` keeps every locale in the bundle (573 KB
    // against 145 KB tree-shaken), compiled at each start-up (bench/startup.mjs).
    files: ['src/**/*.ts'],
    rules: { 'no-restricted-syntax': ['error', { selector: "ImportDeclaration[source.value='zod'] > ImportSpecifier", message: "import * as z from 'zod': a named import keeps all of zod in the bundle (bench/startup.mjs)" }] },
  },
  {
    files: ['src/core/**/*.ts'],
    rules: { 'no-restricted-imports': restrict([...IO_PACKAGES, ...PRESENTER_PACKAGES], 'src/core is pure logic: no I/O and no presentation (ARCHITECTURE.md, Layers).') },
  },
  {
    files: ['src/ops/**/*.ts', 'src/postgres/**/*.ts', 'src/redis/**/*.ts', 'src/service/**/*.ts'],
    rules: { 'no-restricted-imports': restrict(PRESENTER_PACKAGES, 'only src/cli presents: an op returns data, the CLI renders it (ARCHITECTURE.md, Layers).') },
  },
);
