// The 3 a.m. operator (issue 15), through the built CLI: wording, hints that paste and target the
// same schema, a missing --history-id, parser errors as JSON, EPIPE, and what --help says.
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorDocumentSchema } from '../../src/cli/error-document.js';
import { COMMANDS } from '../../src/cli/commands/index.js';
import { BIN, runCli } from '../helpers/cli.js';
import { createDemoFixture, type DemoFixture } from '../helpers/demo-fixture.js';
import { printedCommands } from '../helpers/hints.js';
import { runOnPty } from '../helpers/pty.js';
import { createTestSchema, INCIDENT, seedIncident } from '../helpers/pg.js';

let f: DemoFixture;
beforeAll(async () => {
  f = await createDemoFixture();
}, 120_000);
afterAll(async () => {
  await f?.cleanup();
});

describe('wording', () => {
  it('singular counts, durations without zero parts, no "(s)"', async () => {
    const t = await createTestSchema();
    await seedIncident(t);
    const res = await runCli([...t.cliArgs, '--wide', 'inspect']).finally(() => t.cleanup());
    expect(res.code).toBe(1);
    // the incident: one (user, day) group with two in-flight rows, so one extra
    expect(res.stdout).toContain('1 (user, day) group with more than one in-flight row (1 extra row)');
    expect(res.stdout).toContain('total: 1 group, 2 in-flight rows');
    expect(res.stdout).not.toMatch(/\b1 (groups|entries|extra rows|rows)\b/);
    expect(res.stdout).not.toMatch(/\(s\)|\(es\)/);
    expect(res.stdout).not.toMatch(/\d[mhd] 0[smh]\b/);
    expect(res.stdout).toMatch(/older than 1h\n\s+fix: digest-doctor .*mark-stale --older-than 1h/);
  });
});

describe('hints that paste', () => {
  it('every command printed as advice (human and --json) carries this run\'s flags and runs against the same schema', async () => {
    const texts: string[] = [];
    for (const args of [['inspect'], ['inspect', '--user', INCIDENT.user, '--date', INCIDENT.day], ['streams', '--scan'], ['migrate']]) {
      const human = await runCli([...f.args, ...args]);
      const json = await runCli([...f.args, ...args, '--json']);
      const strings = (v: unknown): string[] => (typeof v === 'string' ? [v] : Array.isArray(v) ? v.flatMap(strings) : v && typeof v === 'object' ? Object.values(v).flatMap(strings) : []);
      texts.push(human.stdout, ...strings(JSON.parse(json.stdout)));
    }
    const hints = texts.flatMap(printedCommands);
    const distinct = [...new Map(hints.map((h) => [h.join(' '), h])).values()];
    // inspect's fix-duplicates and mark-stale, the user's, the scan's inspect --user, migrate's fix-duplicates
    expect(distinct.length).toBeGreaterThanOrEqual(4);
    expect(distinct.some((h) => h.includes('mark-stale') && h.includes('--older-than') && h[h.indexOf('--older-than') + 1] === '1h')).toBe(true);
    for (const h of distinct) {
      expect(h.join(' '), 'the schema flag').toContain(`--schema ${f.t.schema}`);
      expect(h.join(' ')).toContain(`--key-prefix ${f.r.prefix}`);
      expect(h.join(' ')).not.toMatch(/<[a-z-]+>/);
      // schema public of the test database has no digest_history: a hint without --schema exits 2 there
      const res = await runCli([...h, '--json']);
      expect(res.code, `${h.join(' ')}: ${res.stderr}`).toBeLessThanOrEqual(1);
      expect(JSON.parse(res.stdout).schemaVersion).toEqual(expect.any(Number));
    }
  }, 240_000);

  it('XGROUP DELCONSUMER names the stray consumer', async () => {
    const res = await runCli([...f.args, 'streams', '--wide']);
    expect(res.stdout).toContain(`XGROUP DELCONSUMER ${f.r.prefix}stream:digests:generate digest-workers ${f.facts.strayConsumer}`);
    expect(res.stdout).not.toContain('<consumer>');
  });
});

describe('replay --history-id of a row that does not exist', () => {
  it('says the id was not found, exit 1, and does not offer --force', async () => {
    const missing = '00000000-0000-4000-8000-000000000001';
    const res = await runCli([...f.args, 'replay', '--history-id', missing]);
    expect(res.code).toBe(1);
    expect(res.stdout.replace(/\n\s+/g, ' ')).toContain(`--history-id ${missing}: no digest_history row with this id`);
    expect(res.stdout).not.toContain('nothing to replay (');
    expect(res.stdout).not.toContain('--force includes');
    const forced = await runCli([...f.args, 'replay', '--history-id', missing, '--force', '--apply']);
    expect(forced.code).toBe(1);
    expect(forced.stdout).toContain('nothing replayed: 1 history_id not found');
  });
});

describe('errors and help', () => {
  for (const [what, args, text] of [
    ['unknown option', ['inspect', '--bogus'], "unknown option '--bogus'"],
    ['missing value', ['inspect', '--limit'], "option '--limit <n>' argument missing"],
    ['unknown command', ['nosuch'], "unknown command 'nosuch'"],
  ] as const) {
    it(`--json: the parser's ${what} is one BAD_INPUT document on stdout, exit 2`, async () => {
      const res = await runCli(['--json', ...args]);
      expect(res.code).toBe(2);
      const doc = ErrorDocumentSchema.parse(JSON.parse(res.stdout));
      expect(doc.error).toMatchObject({ code: 'BAD_INPUT', exitCode: 2, message: expect.stringContaining(text) });
      const plain = await runCli([...args]);
      expect(plain.stdout).toBe('');
      expect(plain.stderr.startsWith(`digest-doctor: ${text}`)).toBe(true);
    });
  }

  it('a reader that closes early: exit 0, nothing on stderr', async () => {
    for (let i = 0; i < 5; i++) {
      const res = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn('bash', ['-c', `"${process.execPath}" "${BIN}" --help | head -c 0; exit \${PIPESTATUS[0]}`], { stdio: ['ignore', 'pipe', 'pipe'] });
        let stderr = '';
        child.stderr.on('data', (d) => (stderr += d));
        child.on('close', (code) => resolve({ code, stderr }));
      });
      expect(res).toEqual({ code: 0, stderr: '' });
    }
  });

  it("each command's --help points to the global options and lists the exit codes", async () => {
    for (const name of Object.keys(COMMANDS)) {
      const res = await runCli([name, '--help']);
      expect(res.code).toBe(0);
      expect(res.stdout, name).toContain('Global options');
      expect(res.stdout, name).toContain('--schema');
      expect(res.stdout, name).toMatch(/Exit codes:[\s\S]*\b2 +usage or bad input[\s\S]*130 +interrupted/);
    }
  });
});

describe('progress', () => {
  it('on a terminal: done of total with the percentage (scan entries, repair rows); in a pipe: nothing', async () => {
    const env = { CI: '' };
    const scan = await runOnPty([...f.args, 'streams', '--scan'], { cols: 120, env });
    // the digest stream's length, as XLEN counts it, is the total
    const total = await f.r.client.xlen(`${f.r.prefix}stream:digests:generate`);
    expect(scan.output).toMatch(new RegExp(`scanning stream:digests:generate: \\d+ of ${total} entries \\(\\d+%\\)`));
    const piped = await runCli([...f.args, 'streams', '--scan'], { env });
    expect(piped.stderr).not.toContain('scanning');

    const t = await createTestSchema();
    try {
      await seedIncident(t);
      // the incident's in-flight rows older than a day: 3 (two duplicates and the stuck one)
      // no digest stream for the live check under this schema's run: --include-live (the test is about progress)
      const repair = await runOnPty([...t.cliArgs, 'mark-stale', '--older-than', '1d', '--apply', '--include-live', '--yes', '--batch-size', '1'], { cols: 120, env });
      expect(repair.code).toBe(0);
      expect(repair.output).toMatch(/rows changed: \d of 3 rows \(\d+%\)/);
    } finally {
      await t.cleanup();
    }
  });
});
