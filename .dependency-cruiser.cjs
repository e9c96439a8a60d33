// The import graph of src/: no cycles, and the layers point one way (ARCHITECTURE.md, Layers):
// core <- postgres, redis <- ops <- cli (service, the library's reference client, sits beside ops).
// Run by `npm run lint` (and so by `npm test` and .ci/run). Packages kept out of a layer are
// ESLint's job (eslint.config.js, no-restricted-imports).
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    // Every import counts: static, type-only and dynamic import() alike (the command modules are
    // loaded with import(); what they share with main.ts and run.ts is in src/cli/command-list.ts, and
    // demo runs its steps through a function main.ts hands it, not by importing main.ts).
    { name: 'no-circular', severity: 'error', comment: 'An import cycle: break it by moving the shared part down a layer.', from: {}, to: { circular: true } },
    { name: 'core-is-pure', severity: 'error', comment: 'src/core is pure logic and imports only core (and src/errors.ts).', from: { path: '^src/core/' }, to: { path: '^src/(postgres|redis|ops|cli|service)/' } },
    { name: 'adapters-below-ops', severity: 'error', comment: 'The Postgres and Redis adapters know nothing of the ops or the CLI.', from: { path: '^src/(postgres|redis)/' }, to: { path: '^src/(ops|cli|service)/' } },
    { name: 'ops-below-cli', severity: 'error', comment: 'An op returns data; only the CLI presents it.', from: { path: '^src/(ops|service)/' }, to: { path: '^src/cli/' } },
    { name: 'errors-is-a-leaf', severity: 'error', comment: 'src/errors.ts is imported by every layer and imports none.', from: { path: '^src/errors\\.ts$' }, to: { path: '^src/' } },
    { name: 'not-to-unresolvable', severity: 'error', comment: 'An import that resolves to nothing.', from: {}, to: { couldNotResolve: true } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
