// Human output fits the terminal: every line of each command's output on the demo's incident, on a
// pseudo-terminal 80 and 120 columns wide; --wide shows whole ids; a pipe gets 80 unless COLUMNS.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stripVTControlCharacters } from 'node:util';
import { runCli } from '../helpers/cli.js';
import { createDemoFixture, type DemoFixture } from '../helpers/demo-fixture.js';
import { INCIDENT } from '../helpers/pg.js';
import { runOnPty } from '../helpers/pty.js';

let f: DemoFixture;
let runId: string;
beforeAll(async () => {
  f = await createDemoFixture();
  // a run to undo (its dry run, undo without --apply, writes nothing)
  const fix = await runCli([...f.args, 'fix-duplicates', '--apply', '--json']);
  expect(fix.code).toBe(0);
  runId = JSON.parse(fix.stdout).applied.runId;
  // the duplicates again, for fix-duplicates' own table
  await f.t.client.query(`UPDATE ${f.t.schema}.digest_history SET status = 'pending' WHERE user_id = $1 AND digest_date = $2 AND status = 'failed' AND id <> $3`, [INCIDENT.user, INCIDENT.day, INCIDENT.digestId]);
}, 120_000);
afterAll(async () => {
  await f?.cleanup();
});

// a carriage return starts the row again (progress lines): each piece is a line of its own
const longest = (text: string) => Math.max(...stripVTControlCharacters(text).split(/\r|\n/).map((l) => l.length));

const commands = (): Array<[string, string[]]> => [
  ['inspect', ['inspect']],
  ['inspect --user', ['inspect', '--user', INCIDENT.user, '--date', INCIDENT.day]],
  ['streams', ['streams']],
  ['streams --scan', ['streams', '--scan']],
  ['migrate', ['migrate']],
  ['fix-duplicates', ['fix-duplicates']],
  ['mark-stale', ['mark-stale', '--older-than', '1d']],
  ['undo', ['undo', runId]],
  ['replay --failed', ['replay', '--failed', '--date', f.failedDay]],
  ['runs', ['runs']],
];

describe('every line fits the terminal', () => {
  for (const cols of [80, 120]) {
    it(`${cols} columns: no line of any command is wider`, async () => {
      const report: Record<string, number> = {};
      const widest: Record<string, string> = {};
      for (const [name, args] of commands()) {
        const res = await runOnPty([...f.args, ...args], { cols });
        expect(res.code, `${name}: ${res.output}`).toBeLessThanOrEqual(1);
        report[name] = longest(res.output);
        widest[name] = stripVTControlCharacters(res.output).split(/\r|\n/).reduce((a, l) => (l.length > a.length ? l : a), '');
        expect(res.output.trim().length, name).toBeGreaterThan(0);
      }
      for (const [name, width] of Object.entries(report)) expect(width, `${name} is ${width} wide at ${cols} columns: ${widest[name]}`).toBeLessThanOrEqual(cols);
    }, 240_000);
  }

  it('shortens ids to their first 8 characters at 80 columns; --wide shows them whole', async () => {
    const narrow = await runOnPty([...f.args, 'inspect'], { cols: 80 });
    expect(narrow.output).toMatch(new RegExp(`\\b${INCIDENT.user.slice(0, 8)}\\b(?!-)`));
    const tableLines = narrow.output.split('\n').filter((l) => l.startsWith('│'));
    expect(tableLines.join('\n')).toContain(INCIDENT.user.slice(0, 8));
    expect(tableLines.join('\n')).not.toContain(INCIDENT.user);
    const wide = await runOnPty([...f.args, '--wide', 'inspect'], { cols: 80 });
    expect(wide.output).toContain(INCIDENT.user);
    expect(longest(wide.output)).toBeGreaterThan(80);
  });

  it('in a pipe: 80 columns unless COLUMNS asks for more; --json is untouched', async () => {
    const piped = await runCli([...f.args, 'inspect', '--user', INCIDENT.user, '--date', INCIDENT.day], { env: { COLUMNS: undefined } });
    expect(longest(piped.stdout)).toBeLessThanOrEqual(80);
    const wider = await runCli([...f.args, 'inspect', '--user', INCIDENT.user, '--date', INCIDENT.day], { env: { COLUMNS: '250' } });
    expect(wider.stdout).toContain(INCIDENT.user);
    expect(longest(wider.stdout)).toBeGreaterThan(80);
    const json = await runCli([...f.args, 'inspect', '--json'], { env: { COLUMNS: undefined } });
    expect(JSON.parse(json.stdout).duplicates.groups[0].userId).toBe(INCIDENT.user);
  });
});

describe('a table cell is wrapped at spaces only', () => {
  // runs after the tests above (it applies an undo and the migration, which they do not expect)
  it('the index name, a timestamp and a run id are whole (or an id shortened) at 80 and 120 columns', async () => {
    // the duplicates as fix-duplicates left them; a mark-stale run and its undo, for runs' "undo <id>"
    await f.t.client.query(`UPDATE ${f.t.schema}.digest_history SET status = 'failed' WHERE user_id = $1 AND digest_date = $2 AND status IN ('pending', 'processing') AND id <> $3`, [INCIDENT.user, INCIDENT.day, INCIDENT.digestId]);
    const stale = await runCli([...f.args, 'mark-stale', '--older-than', '1d', '--apply', '--json']);
    expect(stale.code, stale.stderr).toBe(0);
    const staleRunId = JSON.parse(stale.stdout).applied.runId as string;
    const undo = await runCli([...f.args, 'undo', staleRunId, '--apply', '--json']);
    expect(undo.code, undo.stderr).toBe(0);
    const undoRunId = JSON.parse(undo.stdout).applied.runId as string;
    expect(undoRunId).toMatch(/^[0-9a-f-]{36}$/);
    const migrate = await runCli([...f.args, 'migrate', '--apply']);
    expect(migrate.code, migrate.stdout + migrate.stderr).toBe(0);
    const words = (text: string) => stripVTControlCharacters(text).split(/[\s│|─┼┤├┌┐└┘┬┴]+/);
    for (const cols of [80, 120]) {
      const status = await runOnPty([...f.args, 'migrate', 'status'], { cols });
      expect(status.code, status.output).toBe(0);
      // the index name and the ledger's timestamp: each one word, never two halves
      expect(words(status.output), `${cols}: ${status.output}`).toContain('ux_digest_history_user_date');
      expect(words(status.output).filter((w) => /^\d{4}-\d\d-\d\dT/.test(w)).every((w) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(w)), status.output).toBe(true);
      const runs = await runOnPty([...f.args, 'runs'], { cols });
      expect(runs.code, runs.output).toBe(0);
      // every piece of a run id is the whole id or its first 8 characters
      for (const id of [runId, staleRunId, undoRunId]) {
        const pieces = words(runs.output).filter((w) => w.length >= 4 && id.includes(w));
        expect(pieces.length, `${cols}: ${runs.output}`).toBeGreaterThan(0);
        for (const w of pieces) expect([id, id.slice(0, 8)], `${cols}: ${runs.output}`).toContain(w);
      }
    }
  }, 120_000);
});
