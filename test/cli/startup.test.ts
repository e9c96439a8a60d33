// Start-up (issue 16): the bundle's `--help` registers the command listing from data serialised at
// build time (src/cli/commands/summaries.ts, scripts/bundle.mjs) instead of importing every
// command's module. What the listing shows must be exactly what the commands' own registration
// shows: the tsc output, which registers the real commands, is the reference.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { runOnPty } from '../helpers/pty.js';
import { createTestSchema, type TestSchema } from '../helpers/pg.js';

const dist = (rel: string) => fileURLToPath(new URL(`../../dist/${rel}`, import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'dd-startup-'));
// the tsc output loaded directly (as bin/ does when there is no bundle): every command's module registered
const UNBUNDLED = join(dir, 'unbundled.mjs');
writeFileSync(UNBUNDLED, `import { runBinary } from ${JSON.stringify(pathToFileURL(dist('cli/main.js')).href)};\nrunBinary(process.argv);\n`);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the bundled command listing', () => {
  it('is what bin/ runs: the bundle is built and at least as new as the tsc output', () => {
    expect(statSync(dist('bundle/main.js')).mtimeMs).toBeGreaterThanOrEqual(statSync(dist('cli/main.js')).mtimeMs);
  });

  const cases: [string, string[]][] = [
    ['--help', ['--help']],
    ['no command (help on stderr, exit 2)', []],
    ['an unknown command (the suggestion)', ['inpsect']],
    ['an unknown command with --json (the BAD_INPUT document)', ['--json', 'inpsect']],
    ['help', ['help']],
  ];
  for (const [what, args] of cases) {
    it(`${what}: the same output and exit code as the commands' own registration`, async () => {
      const [bundled, own] = await Promise.all([runCli(args, { env: { COLUMNS: undefined } }), runCli(args, { env: { COLUMNS: undefined }, bin: UNBUNDLED })]);
      expect(own.stdout + own.stderr).toMatch(/inspect/);
      expect(bundled).toEqual(own);
    });
  }

  for (const cols of [60, 120]) {
    it(`--help on a ${cols}-column terminal: the same text, wrapped the same way`, async () => {
      const [bundled, own] = await Promise.all([runOnPty(['--help'], { cols }), runOnPty(['--help'], { cols, bin: UNBUNDLED })]);
      expect(own.output).toMatch(/fix-duplicates/);
      expect(bundled.code).toBe(0);
      expect(bundled.output).toBe(own.output);
    });
  }
});

// What a command loads: migrate's documents' zod schemas (src/ops/migrate-schema.ts) only for
// --json. Traced on the tsc output, where every package is its own specifier (the bundle inlines
// them): a module hook records each bare specifier the process resolves.
describe('what migrate loads', () => {
  const HOOKS = join(dir, 'trace-hooks.mjs');
  const TRACED = join(dir, 'traced.mjs');
  writeFileSync(
    HOOKS,
    `import { appendFileSync } from 'node:fs';\nlet file;\nexport function initialize(data) { file = data.file; }\n` +
      `export async function resolve(specifier, context, next) {\n  if (!/^(\\.|\\/|node:|file:)/.test(specifier)) appendFileSync(file, specifier + '\\n');\n  return next(specifier, context);\n}\n`,
  );
  writeFileSync(
    TRACED,
    `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(HOOKS).href)}, { data: { file: process.env.DD_TRACE_FILE } });\n` +
      `const { runBinary } = await import(${JSON.stringify(pathToFileURL(dist('cli/main.js')).href)});\nrunBinary(process.argv);\n`,
  );
  let t: TestSchema;
  beforeAll(async () => {
    t = await createTestSchema();
  });
  afterAll(async () => t?.cleanup());

  const traced = async (name: string, args: string[]) => {
    const file = join(dir, `${name}.trace`);
    writeFileSync(file, '');
    const res = await runCli([...t.cliArgs, ...args], { bin: TRACED, env: { DD_TRACE_FILE: file } });
    return { res, specifiers: new Set(readFileSync(file, 'utf8').split('\n').filter(Boolean)) };
  };

  it('migrate --apply, its dry run and migrate status without --json: no zod; with --json: zod', async () => {
    const plan = await traced('plan', ['migrate']);
    expect(plan.res.code, plan.res.stderr).toBe(0);
    // the hook works: the driver is seen
    expect(plan.specifiers.has('pg')).toBe(true);
    expect(plan.specifiers.has('zod')).toBe(false);
    const apply = await traced('apply', ['migrate', '--apply']);
    expect(apply.res.code, apply.res.stderr).toBe(0);
    expect(apply.res.stdout).toContain('applied');
    expect(apply.specifiers.has('zod')).toBe(false);
    const status = await traced('status', ['migrate', 'status']);
    expect(status.res.code, status.res.stderr).toBe(0);
    expect(status.specifiers.has('zod')).toBe(false);
    const json = await traced('json', ['--json', 'migrate', 'status']);
    expect(json.res.code, json.res.stderr).toBe(0);
    expect(json.specifiers.has('zod')).toBe(true);
  });
});
