// Issue 15's siblings of "output that fits" and "hints that paste", found by a trial at 80 columns:
// on a pseudo-terminal 80 and 120 columns wide, stderr (the embedded engine's notice, errors), the
// confirmation prompt and every command's --help fit too; the progress line clears only what it
// drew; a run without the deployment's --key-prefix says where the digest stream is, with the
// command to rerun; and every hint the demo prints runs back against what the demo built.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMANDS } from '../../src/cli/commands/index.js';
import { DIGEST_GROUP, DIGEST_STREAM } from '../../src/core/contract.js';
import { DEMO_KEY_PREFIX, INCIDENT_DAY, INCIDENT_USER, seedDemoDatabase, seedDemoRedis } from '../../src/ops/demo.js';
import { connectPg } from '../../src/postgres/db.js';
import { closeRedis, connectRedis } from '../../src/redis/connect.js';
import { runCli } from '../helpers/cli.js';
import { createDemoFixture, type DemoFixture } from '../helpers/demo-fixture.js';
import { printedCommands } from '../helpers/hints.js';
import { createTestSchema, INCIDENT, seedIncident, type TestSchema } from '../helpers/pg.js';
import { runOnPty } from '../helpers/pty.js';
import { startRedisServer, type TestServer } from '../helpers/redis-server.js';

const COLS = [80, 120];
// a carriage return starts the row again (progress lines): each piece is a line of its own
const lines = (text: string) => stripVTControlCharacters(text).split(/\r|\n/);
const widest = (text: string) => lines(text).reduce((a, l) => (l.length > a.length ? l : a), '');
/** Wrapped lines joined again: a continuation line is indented under the line it continues. */
const unwrap = (text: string) => stripVTControlCharacters(text).replace(/ \\\n\s+/g, ' ').replace(/\n {2,}/g, ' ');

describe('every --help fits the terminal', () => {
  it('the program, each command and each subcommand, at 80 and 120 columns', async () => {
    // the subcommands as the commands' own help lists them (migrate status)
    const names: string[][] = [[], ...Object.keys(COMMANDS).map((c) => [c])];
    for (const c of Object.keys(COMMANDS)) {
      const help = (await runCli([c, '--help'])).stdout;
      const section = /\nCommands:\n([\s\S]*?)(?:\n\n|$)/.exec(help)?.[1] ?? '';
      for (const m of section.matchAll(/^ {2}(\S+)/gm)) if (m[1] !== 'help') names.push([c, m[1]!]);
    }
    expect(names).toContainEqual(['migrate', 'status']);
    for (const cols of COLS) {
      for (const name of names) {
        const res = await runOnPty([...name, '--help'], { cols });
        const label = `digest-doctor ${name.join(' ')} --help at ${cols} columns`;
        expect(res.code, label).toBe(0);
        expect(res.output, label).toContain('Usage: digest-doctor');
        const w = widest(res.output);
        expect(w.length, `${label}: ${w}`).toBeLessThanOrEqual(cols);
      }
    }
  }, 240_000);
});

describe('stderr fits the terminal', () => {
  it("the embedded engine's notice and the error after it wrap, and still say what they must", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dd-fit-'));
    try {
      const dataDir = join(dir, 'a-data-directory-with-a-long-name', 'db');
      for (const cols of COLS) {
        // a fresh embedded database has no digest_history in schema public: exit 2 after the notice
        const res = await runOnPty(['--data-dir', dataDir, 'inspect'], { cols });
        expect(res.code, res.output).toBe(2);
        const w = widest(res.output);
        expect(w.length, `${cols} columns: ${w}`).toBeLessThanOrEqual(cols);
        const text = unwrap(res.output);
        const notice = /digest-doctor: no --database-url or DATABASE_URL: (.*)/.exec(text)?.[1] ?? '';
        // what the notice must say: the engine, where its data lives, and what it cannot do
        for (const part of ['embedded database (PGlite)', dataDir, 'one process at a time', 'CONCURRENTLY', 'statement_timeout']) expect(notice, `${cols}: ${text}`).toContain(part);
        // longer than 80 as one line: the fit is tested, not assumed
        expect(notice.length + 'digest-doctor: '.length).toBeGreaterThan(80);
        expect(text).toMatch(/digest-doctor: schema "public" has no table digest_history/);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('the confirmation fits the terminal', () => {
  let t: TestSchema;
  beforeAll(async () => {
    t = await createTestSchema();
    await seedIncident(t);
  });
  afterAll(() => t?.cleanup());

  const pendingPair = async () =>
    (await t.client.query(`SELECT count(*)::int AS n FROM ${t.schema}.digest_history WHERE user_id = $1 AND digest_date = $2 AND status = 'pending'`, [INCIDENT.user, INCIDENT.day])).rows[0].n as number;

  for (const cols of COLS) {
    it(`${cols} columns: every line fits; after end of input the refusal starts a line of its own; n refuses too`, async () => {
      const eof = await runOnPty([...t.cliArgs, 'fix-duplicates', '--apply'], { cols, eof: true });
      expect(eof.asked).toBe(true);
      expect(eof.code, eof.output).toBe(4);
      const w = widest(eof.output);
      expect(w.length, w).toBeLessThanOrEqual(cols);
      const out = lines(eof.output);
      expect(out.filter((l) => l.includes('[y/N]') && l.includes('not confirmed'))).toEqual([]);
      expect(out.some((l) => l.startsWith('digest-doctor: not confirmed: nothing was written'))).toBe(true);
      // the summary still names the database and both schemas, however it wrapped
      expect(unwrap(eof.output)).toContain(`schema ${t.schema} (state schema ${t.stateSchema})`);

      const no = await runOnPty([...t.cliArgs, 'fix-duplicates', '--apply'], { cols, answer: 'n' });
      expect(no.code, no.output).toBe(4);
      expect(widest(no.output).length).toBeLessThanOrEqual(cols);
      // the incident's pair is untouched: two pending rows of one (user, day)
      expect(await pendingPair()).toBe(2);
    }, 60_000);
  }
});

describe('progress clears only what it drew', () => {
  let f: DemoFixture;
  beforeAll(async () => {
    f = await createDemoFixture();
  }, 120_000);
  afterAll(() => f?.cleanup());

  /** Each ESC[2K whose row shows nothing before it: a clear of a progress line that was never drawn. */
  const strayClears = (out: string): string[] => {
    const found: string[] = [];
    for (let i = out.indexOf('\x1b[2K'); i >= 0; i = out.indexOf('\x1b[2K', i + 1)) {
      const row = out.slice(out.lastIndexOf('\n', i) + 1, i);
      if (stripVTControlCharacters(row).replace(/\r/g, '').trim() === '') found.push(JSON.stringify(out.slice(Math.max(0, i - 60), i + 60)));
    }
    return found;
  };

  it('no clear without a progress line before it, on commands with and without progress', async () => {
    // progress is on for a terminal unless CI is set
    const env = { CI: undefined };
    let clears = 0;
    const runs: Array<[string, string[]]> = [
      ['streams', ['streams']],
      ['streams --scan', ['streams', '--scan']],
      ['migrate', ['migrate']],
      ['fix-duplicates', ['fix-duplicates']],
      ['mark-stale', ['mark-stale', '--older-than', '1d']],
      ['replay --failed', ['replay', '--failed', '--date', f.failedDay]],
      // writes in batches of one row: progress is drawn, then cleared
      ['fix-duplicates --apply', ['fix-duplicates', '--apply', '--yes', '--batch-size', '1']],
    ];
    for (const cols of COLS) {
      for (const [name, args] of runs) {
        const res = await runOnPty([...f.args, ...args], { cols, env });
        expect(res.code, `${name}: ${res.output}`).toBeLessThanOrEqual(1);
        expect(strayClears(res.output), `${name} at ${cols}`).toEqual([]);
        clears += res.output.split('\x1b[2K').length - 1;
      }
    }
    // some run drew a progress line and cleared it: the check above looked at real clears
    expect(clears).toBeGreaterThan(0);
  }, 240_000);
});

describe('a run without the key prefix the deployment uses', () => {
  const PREFIX = 'svc-prod:';
  let server: TestServer;
  let t: TestSchema;
  let args: string[];
  beforeAll(async () => {
    // a Redis of its own: the digest stream lives under PREFIX and under no other prefix
    server = await startRedisServer();
    t = await createTestSchema({ withTables: false });
    const db = await connectPg({ url: t.url, schema: t.schema, stateSchema: t.stateSchema, statementTimeoutMs: 30_000 });
    const redis = await connectRedis({ url: server.url(), cluster: false, keyPrefix: PREFIX });
    const raw = await connectRedis({ url: server.url(), cluster: false });
    try {
      await seedDemoDatabase(db, { force: true });
      await seedDemoRedis(redis, raw, PREFIX, db);
    } finally {
      await db.close();
      await closeRedis(redis);
      await closeRedis(raw);
    }
    args = [...t.cliArgs, '--redis-url', server.url()];
  }, 120_000);
  afterAll(async () => {
    await t?.cleanup();
    await server?.stop();
  });

  /** The printed command that carries --key-prefix, as argv. */
  const rerunOf = (text: string) => printedCommands(text).find((c) => c.includes('--key-prefix'));

  it('mark-stale says the stream is under another prefix (not just "group missing"), and its command runs with it', async () => {
    const res = await runCli([...args, 'mark-stale', '--older-than', '1d']);
    expect(res.code, res.stderr).toBe(1);
    const text = unwrap(res.stdout);
    expect(text).toContain(`no stream ${DIGEST_STREAM} without a key prefix (no --key-prefix given); it exists under key prefix '${PREFIX}'`);
    expect(text).not.toContain(`consumer group ${DIGEST_GROUP} is missing`);
    const rerun = rerunOf(text)!;
    expect(rerun).toEqual([...args, '--key-prefix', PREFIX, 'mark-stale', '--older-than', '1d']);
    const again = await runCli([...rerun, '--json']);
    expect(again.code, again.stderr).toBe(1);
    // under the prefix the group is there, so the live check ran
    expect(JSON.parse(again.stdout).redis).toMatchObject({ checked: true, groupMissing: false });
  });

  it('streams names the prefix in the missing stream finding; its fix reports the stream', async () => {
    const res = await runCli([...args, 'streams', '--json']);
    expect(res.code, res.stderr).toBe(1);
    const exists = JSON.parse(res.stdout).findings.find((x: { stream: string; check: string }) => x.stream === DIGEST_STREAM && x.check === 'exists');
    expect(exists.verdict).toBe('warn');
    expect(exists.message).toContain(`it exists under key prefix '${PREFIX}'`);
    const rerun = rerunOf(exists.fix)!;
    expect(rerun).toEqual([...args, '--key-prefix', PREFIX, 'streams']);
    const again = await runCli([...rerun, '--json']);
    expect(JSON.parse(again.stdout).streams.find((s: { key: string }) => s.key === DIGEST_STREAM).state).toBe('ok');
  });

  it('inspect and check say it too', async () => {
    const inspect = await runCli([...args, 'inspect']);
    expect(unwrap(inspect.stdout)).toContain(`[info] no stream ${DIGEST_STREAM} without a key prefix (no --key-prefix given); it exists under key prefix '${PREFIX}'`);
    expect(rerunOf(unwrap(inspect.stdout))).toEqual([...args, '--key-prefix', PREFIX, 'inspect']);
    // a user's view: "no stream entries" would be a lie by omission without the note
    const user = await runCli([...args, 'inspect', '--user', INCIDENT_USER, '--date', INCIDENT_DAY]);
    expect(unwrap(user.stdout)).toMatch(new RegExp(`Stream entries\\nnone between .*\\n\\[info\\] no stream ${DIGEST_STREAM} without a key prefix`));
    expect(rerunOf(unwrap(user.stdout))).toEqual([...args, '--key-prefix', PREFIX, 'inspect', '--user', INCIDENT_USER, '--date', INCIDENT_DAY]);
    const check = await runCli([...args, 'check', '--format', 'json']);
    const exists = JSON.parse(check.stdout).checks.find((c: { check: string; subject: string }) => c.check === 'exists' && c.subject === DIGEST_STREAM);
    expect(exists.message).toContain(`it exists under key prefix '${PREFIX}'`);
    expect(rerunOf(exists.fix)).toEqual([...args, '--key-prefix', PREFIX, 'check']);
  });
});

describe("the demo's hints", () => {
  let server: TestServer;
  let dir: string;
  beforeAll(async () => {
    server = await startRedisServer();
    dir = mkdtempSync(join(tmpdir(), 'dd-demo-hints-'));
  });
  afterAll(async () => {
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('every command the demo printed as advice carries its flags (the key prefix it chose too) and runs back', async () => {
    const dataDir = join(dir, 'db');
    // no --key-prefix: the demo puts its keys under its own, which every printed command must carry
    const demo = await runCli(['--data-dir', dataDir, '--redis-url', server.url(), '--schema', 'demo_hints', 'demo'], { timeoutMs: 180_000 });
    expect(demo.code, demo.stdout.slice(-2000) + demo.stderr).toBe(0);
    // the steps' own command lines ("$ ...") ran already; the advice is everything else
    const advice = demo.stdout.split('\n').filter((l) => !l.startsWith('$ ')).join('\n');
    const hints = [...new Map(printedCommands(advice).map((h) => [h.join(' '), h])).values()];
    // inspect's fixes, the repairs' undo commands, the DLQ's replay, the closing "try ... inspect"
    expect(hints.length).toBeGreaterThanOrEqual(5);
    // the steps' command lines and the advice carry the same global flags, in the same order
    const steps = printedCommands(demo.stdout.split('\n').filter((l) => l.startsWith('$ ')).join('\n'));
    const globalsOf = (h: string[]) => h.slice(0, h.findIndex((w) => w in COMMANDS)).join(' ');
    expect(steps.length).toBeGreaterThanOrEqual(10);
    expect(new Set([...steps, ...hints].map(globalsOf))).toEqual(new Set([globalsOf(steps[0]!)]));
    const valueOf = (h: string[], flag: string) => (h.includes(flag) ? h[h.indexOf(flag) + 1] : undefined);
    for (const h of hints) {
      const label = h.join(' ');
      expect(valueOf(h, '--key-prefix'), label).toBe(DEMO_KEY_PREFIX);
      expect(valueOf(h, '--schema'), label).toBe('demo_hints');
      expect(valueOf(h, '--data-dir'), label).toBe(dataDir);
      expect(valueOf(h, '--redis-url'), label).toBe(server.url());
      // run back as a dry run: it parses and finds the demo's table in that schema
      const res = await runCli([...h.filter((a) => a !== '--apply' && a !== '--yes'), '--json']);
      if (h.includes('check')) {
        // printed as what CI runs (with DATABASE_URL set): on the embedded database check refuses by design
        expect(res.code, label).toBe(2);
        expect(JSON.parse(res.stdout).error.message, label).toContain('check needs a database');
        continue;
      }
      expect(res.code, `${label}: ${res.stderr}`).toBeLessThanOrEqual(1);
      expect(JSON.parse(res.stdout).schemaVersion, label).toEqual(expect.any(Number));
    }
  }, 360_000);
});
