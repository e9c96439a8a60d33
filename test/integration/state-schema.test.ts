// The tool's own schema is versioned (sql/state/NNNN_*.sql, recorded in state_migrations): a fresh
// install runs every file once, a rerun runs none, a state schema made by the earlier DO-block
// releases is adopted (recorded, nothing re-run), and two applying runs at once apply each file once.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ensureState } from '../../src/postgres/state.js';
import { SQL_DIR, renderSql } from '../../src/postgres/sql.js';
import { runCli } from '../helpers/cli.js';
import { createTestSchema, seedIncident, type TestSchema } from '../helpers/pg.js';
import { openRepairDb } from '../helpers/repair.js';

let t: TestSchema;
beforeEach(async () => {
  t = await createTestSchema();
  // a duplicate pair and a stuck row: fix-duplicates and mark-stale each have a change to apply
  await seedIncident(t);
});
afterEach(async () => {
  await t.cleanup();
});

/** The shipped state files as the test reads them: version from the 4-digit prefix, sha256 of the bytes. */
const shipped = readdirSync(SQL_DIR + 'state')
  .filter((f) => /^\d{4}_.*\.sql$/.test(f))
  .sort()
  .map((f) => ({ version: Number(f.slice(0, 4)), name: f.slice(5, -4), checksum: createHash('sha256').update(readFileSync(SQL_DIR + 'state/' + f)).digest('hex') }));

const recorded = async () =>
  (await t.client.query(`SELECT version, name, checksum, how, applied_at FROM ${t.stateSchema}.state_migrations ORDER BY version`)).rows;

/** Each relation of the state schema with its kind and oid (a relation re-created gets a new oid). */
const relations = async () =>
  (await t.client.query(`SELECT c.relname, c.relkind, c.oid::int AS oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                          WHERE n.nspname = $1 AND c.relkind IN ('r', 'v') ORDER BY c.relname`, [t.stateSchema])).rows;

const fixApply = () => runCli([...t.cliArgs, '--json', 'fix-duplicates', '--apply']);
// no digest stream for mark-stale's live check here: marked without it on purpose (the tests are about the state schema)
const staleApply = () => runCli([...t.cliArgs, '--json', 'mark-stale', '--older-than', '1d', '--apply', '--include-live']);

const oldRelease = (part: string) =>
  t.client.query(renderSql(readFileSync(new URL(`../fixtures/state-before-versions/${part}.sql`, import.meta.url), 'utf8'), { schema: t.schema, state: t.stateSchema }));

describe('state schema versions', () => {
  it('the files are numbered 1..n without a gap', () => {
    expect(shipped.map((f) => f.version)).toEqual(shipped.map((_, i) => i + 1));
    expect(shipped.length).toBeGreaterThanOrEqual(3);
  });

  it('a fresh install runs every file once and records it; a rerun writes nothing', async () => {
    const first = await fixApply();
    expect(first.code, first.stderr).toBe(0);
    const rows = await recorded();
    expect(rows.map(({ version, name, checksum, how }) => ({ version, name, checksum, how }))).toEqual(shipped.map((f) => ({ ...f, how: 'applied' })));
    expect((await relations()).map((r) => [r.relname, r.relkind])).toEqual([
      ['audit', 'v'], ['audit_batches', 'r'], ['runs', 'r'], ['schema_migrations', 'r'], ['state_migrations', 'r'],
    ]);
    const before = await relations();
    // another applying command, in a new process: the versions are recorded, nothing runs
    const again = await staleApply();
    expect(again.code, again.stderr).toBe(0);
    expect(await recorded()).toEqual(rows);
    expect(await relations()).toEqual(before);
  });

  it('adopts the layout of the earlier DO-block release: recorded as adopted, nothing re-run, the data kept', async () => {
    await t.client.query(`CREATE SCHEMA ${t.stateSchema}`);
    await oldRelease('audit');
    await oldRelease('ledger');
    const runId = '9d0c6f1e-2b3a-4c5d-8e7f-0a1b2c3d4e5f';
    await t.client.query(`INSERT INTO ${t.stateSchema}.runs (id, command, table_schema) VALUES ($1, 'mark-stale', $2)`, [runId, t.schema]);
    await t.client.query(`INSERT INTO ${t.stateSchema}.audit_batches (run_id, command, table_schema, row_ids, befores, changes)
                          VALUES ($1, 'mark-stale', $2, ARRAY['5b1c3f0e-8d2a-4c61-9e7f-2a3b4c5d6e7f']::uuid[], ARRAY['{"status":"pending"}']::json[], ARRAY['{"status":"failed"}']::json[])`, [runId, t.schema]);
    const before = await relations();
    const res = await fixApply();
    expect(res.code, res.stderr).toBe(0);
    // that release's layout is version 3; the later files run (4 adds undo's typed keys to audit_batches)
    expect((await recorded()).map(({ version, how }) => ({ version, how }))).toEqual(shipped.map((f) => ({ version: f.version, how: f.version <= 3 ? 'adopted' : 'applied' })));
    // the same relations (same oids: none dropped and re-created), plus the record
    expect((await relations()).filter((r) => r.relname !== 'state_migrations')).toEqual(before);
    const audit = await t.client.query(`SELECT row_id::text, before, after FROM ${t.stateSchema}.audit WHERE run_id = $1`, [runId]);
    expect(audit.rows).toEqual([{ row_id: '5b1c3f0e-8d2a-4c61-9e7f-2a3b4c5d6e7f', before: { status: 'pending' }, after: { status: 'failed' } }]);
  });

  it('adopts an earlier audit without the ledger: versions 1 and 2 adopted, 3 and 4 applied', async () => {
    await t.client.query(`CREATE SCHEMA ${t.stateSchema}`);
    await oldRelease('audit');
    const res = await fixApply();
    expect(res.code, res.stderr).toBe(0);
    expect((await recorded()).map(({ version, how }) => ({ version, how }))).toEqual([
      { version: 1, how: 'adopted' }, { version: 2, how: 'adopted' }, { version: 3, how: 'applied' }, { version: 4, how: 'applied' },
    ]);
    expect((await relations()).map((r) => r.relname)).toContain('schema_migrations');
  });

  it('an earlier ledger alone (migrate --apply of a DO-block release): every version applied, the ledger kept', async () => {
    await t.client.query(`CREATE SCHEMA ${t.stateSchema}`);
    await oldRelease('ledger');
    const [ledger] = (await relations()).filter((r) => r.relname === 'schema_migrations');
    const res = await fixApply();
    expect(res.code, res.stderr).toBe(0);
    expect((await recorded()).map(({ version, how }) => ({ version, how }))).toEqual(shipped.map((f) => ({ version: f.version, how: 'applied' })));
    expect((await relations()).find((r) => r.relname === 'schema_migrations')).toEqual(ledger);
  });

  it('two applying runs at once on a fresh schema: one applies, the other waits and finds it done', async () => {
    const dbs = await Promise.all([openRepairDb(t), openRepairDb(t)]);
    try {
      await Promise.all(dbs.map((db) => ensureState(db)));
    } finally {
      await Promise.all(dbs.map((db) => db.close()));
    }
    // the primary key on version would have refused a second record of any file
    expect((await recorded()).map(({ version, how }) => ({ version, how }))).toEqual(shipped.map((f) => ({ version: f.version, how: 'applied' })));
    // and two CLI runs at once: both succeed (the repair lock may make one busy, exit 4, never a failure of the state)
    await t.client.query(`DROP SCHEMA ${t.stateSchema} CASCADE`);
    const both = await Promise.all([fixApply(), staleApply()]);
    for (const r of both) expect([0, 4], r.stderr).toContain(r.code);
    expect(both.map((r) => r.code)).toContain(0);
    expect((await recorded()).map(({ version, how }) => ({ version, how }))).toEqual(shipped.map((f) => ({ version: f.version, how: 'applied' })));
  });
});
