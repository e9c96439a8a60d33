// Start-up (issue 16): the bundle's `--help` registers the command listing from data serialised at
// build time (src/cli/commands/summaries.ts, scripts/bundle.mjs) instead of importing every
// command's module. What the listing shows must be exactly what the commands' own registration
// shows: the tsc output, which registers the real commands, is the reference.
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { runOnPty } from '../helpers/pty.js';

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
