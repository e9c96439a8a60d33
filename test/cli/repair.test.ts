import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorDocumentSchema, FixDuplicatesResultSchema, MarkStaleResultSchema, RunsResultSchema, UndoResultSchema } from '../../src/index.js';
import { spawnSync } from 'node:child_process';
import { BIN, runCli } from '../helpers/cli.js';
import { createTestSchema, ENGINES, INCIDENT, seedIncident, type TestSchema } from '../helpers/pg.js';
import { createTestRedis } from '../helpers/redis.js';
import { DIGEST_GROUP, DIGEST_STREAM } from '../../src/core/contract.js';

let t: TestSchema;

const cli = (...args: string[]) => runCli([...t.cliArgs, ...args]);
const json = (...args: string[]) => runCli([...t.cliArgs, '--json', ...args]);

describe.each(ENGINES)('repair commands (%s)', (engine) => { // the whole file, on each engine (not reindented)
// another session holding the repair's advisory lock: the server only (test/helpers/engine.ts)
const serverIt = (engine === 'server' ? it : () => undefined) as typeof it;
const embeddedIt = (engine === 'embedded' ? it : () => undefined) as typeof it;
beforeEach(async () => {
  t = await createTestSchema({ engine });
  await seedIncident(t);
});
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
  await t.cleanup();
});
describe('fix-duplicates (the built binary)', () => {
  it('dry run exits 1 with the plan, --apply exits 0 with a run id, a second --apply exits 0 and says nothing changed', async () => {
    const dry = await json('fix-duplicates');
    expect(dry.code).toBe(1);
    const plan = FixDuplicatesResultSchema.parse(JSON.parse(dry.stdout));
    expect(plan).toMatchObject({ mode: 'dry-run', applied: null, plan: { groups: 1, rows: 1 } });

    const applied = await json('fix-duplicates', '--apply');
    expect(applied.code).toBe(0);
    const doc = FixDuplicatesResultSchema.parse(JSON.parse(applied.stdout));
    expect(doc.applied).toMatchObject({ status: 'done', rowsChanged: 1, runId: expect.stringMatching(/^[0-9a-f-]{36}$/) });

    const again = await cli('fix-duplicates', '--apply');
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/nothing to fix: no changes made/);
    const human = await cli('fix-duplicates');
    expect(human.code).toBe(0);
  });

  it('prints the plan as a table and the run id with the undo command', async () => {
    const res = await cli('fix-duplicates', '--keep', 'oldest', '--apply');
    expect(res.code).toBe(0);
    expect(res.stdout).toContain(INCIDENT.user);
    expect(res.stdout).toMatch(/keep the oldest, mark the rest 'failed'/);
    // the undo command carries this run's flags (issue 15), so it pastes as printed
    expect(res.stdout).toMatch(/undo with: digest-doctor .*--schema \S+ .*undo [0-9a-f-]{36}/);
    expect(res.stdout).not.toMatch(/\x1b\[/);
  });

  it('bad input exits 2 with one line and writes nothing', async () => {
    for (const args of [['--keep', 'middle'], ['--batch-size', '0'], ['--batch-size', '20000'], ['--user', 'nope'], ['--date', '2025-02-30'], ['--lock-timeout', 'soon']]) {
      const res = await cli('fix-duplicates', '--apply', ...args);
      expect(res.code, args.join(' ')).toBe(2);
    }
    const state = await t.client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [t.stateSchema]);
    expect(state.rowCount).toBe(0);
  });

  embeddedIt('exits 4 (busy) while another process has the embedded database open, and writes nothing', async () => {
    // the test's own handle is open (its last query): the subprocess must not open the directory too
    await t.client.query('SELECT 1');
    const child = spawnSync(process.execPath, [BIN, ...t.cliArgs, '--json', 'fix-duplicates', '--apply'], { env: { ...process.env, NO_COLOR: '1' }, encoding: 'utf8', timeout: 60_000 });
    expect(child.status).toBe(4);
    expect(ErrorDocumentSchema.parse(JSON.parse(child.stdout)).error.code).toBe('BUSY');
    expect(child.stderr).toContain(`the embedded database ${t.dataDir} is in use by another digest-doctor (pid ${process.pid})`);
    const failed = await t.client.query(`SELECT count(*)::int AS n FROM ${t.schema}.digest_history WHERE status = 'failed'`);
    expect(failed.rows[0].n).toBe(1); // the incident's one failed row, nothing more
  });

  serverIt('exits 4 (busy) while another run of the same repair holds the lock', async () => {
    const holder = new pg.Client({ connectionString: t.url });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock(hashtext($1), hashtext($2))', ['digest-doctor:repair:fix-duplicates', t.schema]);
      const res = await json('fix-duplicates', '--apply', '--lock-wait', '100ms');
      expect(res.code).toBe(4);
      expect(ErrorDocumentSchema.parse(JSON.parse(res.stdout)).error.code).toBe('BUSY');
      expect(res.stderr).toMatch(/another fix-duplicates is running/);
    } finally {
      await holder.end();
    }
  });

  it('exits 4 when the CHECK constraint allows no fitting status', async () => {
    await t.client.query(`ALTER TABLE ${t.schema}.digest_history DROP CONSTRAINT chk_digest_status`);
    await t.client.query(`ALTER TABLE ${t.schema}.digest_history ADD CONSTRAINT chk_digest_status CHECK (status IN ('pending', 'sent')) NOT VALID`);
    const res = await json('fix-duplicates', '--apply');
    expect(res.code).toBe(4);
    expect(ErrorDocumentSchema.parse(JSON.parse(res.stdout)).error).toMatchObject({ code: 'REFUSED', exitCode: 4 });
  });
});

describe('mark-stale, undo and runs (the built binary)', () => {
  it('mark-stale needs a valid --older-than (exit 2)', async () => {
    expect((await cli('mark-stale')).code).toBe(2);
    const bad = await cli('mark-stale', '--older-than', 'forever');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--older-than "forever" is not a duration/);
  });

  it('mark-stale dry run 1, apply 0; runs lists it; undo dry run 1, apply 0', async () => {
    // Redis as the service has it (the digest stream and its group under the test's prefix): the live check runs
    const r = await createTestRedis();
    cleanups.push(() => r.cleanup());
    await r.client.xgroup('CREATE', r.key(DIGEST_STREAM), DIGEST_GROUP, '$', 'MKSTREAM');
    const dry = await json(...r.cliArgs, 'mark-stale', '--older-than', '7d');
    expect(dry.code).toBe(1);
    const plan0 = MarkStaleResultSchema.parse(JSON.parse(dry.stdout));
    expect(plan0.plan.rows).toBe(3);
    expect(plan0.redis).toEqual({ checked: true, groupMissing: false, pendingSeen: 0 });

    const applied = await json(...r.cliArgs, 'mark-stale', '--older-than', '7d', '--apply');
    expect(applied.code).toBe(0);
    const runId = MarkStaleResultSchema.parse(JSON.parse(applied.stdout)).applied!.runId!;

    const runs = await json('runs');
    expect(runs.code).toBe(0);
    expect(RunsResultSchema.parse(JSON.parse(runs.stdout)).runs).toEqual([expect.objectContaining({ id: runId, command: 'mark-stale', status: 'done', rowsChanged: 3, by: 'postgres' })]);
    const table = await cli('runs');
    expect(table.stdout).toContain(runId);

    const undoDry = await json('undo', runId);
    expect(undoDry.code).toBe(1);
    // The incident day had two pending rows: only the newer goes back.
    const plan = UndoResultSchema.parse(JSON.parse(undoDry.stdout)).plan;
    expect(plan.restore).toHaveLength(2);
    expect(plan.skipped.map((s) => s.reason)).toEqual(['would-duplicate']);

    const undo = await json('undo', runId, '--apply');
    expect(undo.code).toBe(0);
    expect(UndoResultSchema.parse(JSON.parse(undo.stdout)).applied).toMatchObject({ rowsChanged: 2, status: 'done' });
    const undoAgain = await cli('undo', runId, '--apply');
    expect(undoAgain.code).toBe(0);
    expect(undoAgain.stdout).toMatch(/nothing to undo: no changes made/);
  });

  it('undo of a malformed or unknown run id exits 2; runs with nothing recorded exits 0', async () => {
    expect((await cli('undo', 'abc')).code).toBe(2);
    const unknown = await cli('undo', '00000000-0000-4000-8000-000000000000');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no repair run/);
    const runs = await json('runs');
    expect(runs.code).toBe(0);
    expect(RunsResultSchema.parse(JSON.parse(runs.stdout)).runs).toEqual([]);
  });
});
});
