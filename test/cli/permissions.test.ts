// Issue 12 §7: a privilege the role lacks is exit 4 with one line naming it and the GRANT that fixes
// it (checked in the catalog before reading, never a 42501 crash), and the GRANT, run as printed,
// fixes it. README's applying role repairs and undoes through the CLI, and its read-only role reads
// what the applying role wrote.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadSqlFile, renderSql } from '../../src/postgres/sql.js';
import { runCli } from '../helpers/cli.js';
import { createTestSchema, INCIDENT, seedIncident, type TestSchema } from '../helpers/pg.js';
import { dropRoles, readmeSqlBlock, renderReadmeSql, uniqueRole, urlAs } from '../helpers/roles.js';

let t: TestSchema;
let roles: { reader: string; repairer: string };

beforeEach(async () => {
  t = await createTestSchema();
  await seedIncident(t);
  roles = { reader: uniqueRole('reader'), repairer: uniqueRole('repairer') };
});
afterEach(async () => {
  await dropRoles(t.client, [roles.reader, roles.repairer]);
  await t.cleanup();
});

const names = () => ({ ...roles, database: new URL(t.url).pathname.slice(1), schema: t.schema, state: t.stateSchema });
const runReadme = (title: string) => t.client.query(renderReadmeSql(readmeSqlBlock(title), names()));
const as = (role: string, ...args: string[]) => runCli(['--database-url', urlAs(t.url, role), '--schema', t.schema, '--state-schema', t.stateSchema, ...args]);

/** The GRANT statements of a refusal line, to run as printed. */
const grantsIn = (stderr: string) => [...stderr.matchAll(/GRANT [^;]+;/g)].map((m) => m[0]);

async function expectRefusedThenFixed(role: string, args: string[], missing: string[], okCode: number): Promise<void> {
  const res = await as(role, ...args);
  expect(res.code, res.stderr).toBe(4);
  expect(res.stderr.trim().split('\n')).toHaveLength(1);
  expect(res.stderr).not.toContain('is this the service database');
  for (const m of missing) expect(res.stderr).toContain(m);
  const grants = grantsIn(res.stderr);
  expect(grants.length).toBe(missing.length);
  for (const g of grants) await t.client.query(g);
  const again = await as(role, ...args);
  expect(again.code, again.stderr).toBe(okCode);
}

describe('a missing privilege is named, with the GRANT that fixes it (exit 4)', () => {
  it('no USAGE on the service schema, then no SELECT on digest_history: inspect', async () => {
    await t.client.query(`CREATE ROLE ${roles.reader} LOGIN`);
    const res = await as(roles.reader, 'inspect');
    expect(res.code).toBe(4);
    expect(res.stderr).toContain(`no USAGE on schema ${t.schema}`);
    expect(res.stderr).toContain(`no SELECT on ${t.schema}.digest_history`);
    expect(grantsIn(res.stderr)).toEqual([`GRANT USAGE ON SCHEMA ${t.schema} TO ${roles.reader};`, `GRANT SELECT ON ${t.schema}.digest_history TO ${roles.reader};`]);
    for (const g of grantsIn(res.stderr)) await t.client.query(g);
    // the incident has a duplicate pair and a stuck row: findings
    expect((await as(roles.reader, 'inspect')).code).toBe(1);
  });

  it('no SELECT on users: replay (rows are read with their user)', async () => {
    await t.client.query(`CREATE ROLE ${roles.reader} LOGIN; GRANT USAGE ON SCHEMA ${t.schema} TO ${roles.reader}; GRANT SELECT ON ${t.schema}.digest_history TO ${roles.reader}`);
    // the incident's failed row of 2025-11-25 (its user has a pending pair: skipped, so nothing to publish)
    await expectRefusedThenFixed(roles.reader, ['--redis-url', 'redis://127.0.0.1:6379', '--key-prefix', `ddtest:${t.schema}:`, 'replay', '--failed', '--date', INCIDENT.day], [`no SELECT on ${t.schema}.users`], 0);
  });

  it('the state schema without USAGE, then its tables without SELECT: runs, undo and migrate status', async () => {
    await runReadme('read-only role');
    // the tool's own schema, created by an applying command of the owner
    const run = await runCli([...t.cliArgs, '--json', 'fix-duplicates', '--apply']);
    expect(run.code, run.stderr).toBe(0);
    const runId = JSON.parse(run.stdout).applied.runId as string;
    await t.client.query(renderSql(loadSqlFile('state/0003_schema_migrations.sql'), { schema: t.schema, state: t.stateSchema }));
    const usage = `no USAGE on schema ${t.stateSchema}`;
    for (const args of [['runs'], ['undo', runId], ['migrate', 'status']]) {
      const res = await as(roles.reader, ...args);
      expect(res.code, `${args.join(' ')}: ${res.stderr}`).toBe(4);
      expect(res.stderr).toContain(usage);
      expect(res.stderr).toContain(`GRANT USAGE ON SCHEMA ${t.stateSchema} TO ${roles.reader};`);
    }
    await t.client.query(`GRANT USAGE ON SCHEMA ${t.stateSchema} TO ${roles.reader}`);
    await expectRefusedThenFixed(roles.reader, ['runs'], [`no SELECT on ${t.stateSchema}.runs`], 0);
    // undo also reads the audit (the view audit and the table audit_batches behind it); the kept
    // row of the pair is still in flight, so nothing would go back: exit 0
    await expectRefusedThenFixed(roles.reader, ['undo', runId], [`no SELECT on ${t.stateSchema}.audit_batches`, `no SELECT on ${t.stateSchema}.audit`], 0);
    await expectRefusedThenFixed(roles.reader, ['migrate', 'status'], [`no SELECT on ${t.stateSchema}.schema_migrations`], 0);
  });
});

describe("README's applying role", () => {
  it('repairs and undoes through the CLI; the read-only role reads its runs', async () => {
    await runReadme('read-only role');
    await runReadme('applying role');
    const fix = await as(roles.repairer, '--json', 'fix-duplicates', '--apply');
    expect(fix.code, fix.stderr).toBe(0);
    const fixed = JSON.parse(fix.stdout).applied;
    // the incident's pair: one of the two pending rows marked failed
    expect(fixed.rowsChanged).toBe(1);
    // no digest stream for mark-stale's live check here: --include-live (the test is about the role's privileges)
    const stale = await as(roles.repairer, '--json', 'mark-stale', '--older-than', '1d', '--user', INCIDENT.stuckUser, '--apply', '--include-live');
    expect(stale.code, stale.stderr).toBe(0);
    expect(JSON.parse(stale.stdout).applied.rowsChanged).toBe(1);
    const runs = await as(roles.reader, '--json', 'runs');
    expect(runs.code, runs.stderr).toBe(0);
    expect(JSON.parse(runs.stdout).runs.map((r: { id: string; by: string }) => [r.id, r.by])).toEqual([
      [JSON.parse(stale.stdout).applied.runId, roles.repairer],
      [fixed.runId, roles.repairer],
    ]);
    // the stuck row goes back to pending (no other row of its day is in flight)
    const staleRun = JSON.parse(stale.stdout).applied.runId as string;
    const dry = await as(roles.reader, 'undo', staleRun);
    expect(dry.code, dry.stderr).toBe(1);
    const undo = await as(roles.repairer, '--json', 'undo', staleRun, '--apply');
    expect(undo.code, undo.stderr).toBe(0);
    expect(JSON.parse(undo.stdout).applied.rowsChanged).toBe(1);
    // the state schema is the applying role's, created by the admin block (no CREATE on the database needed)
    const owner = await t.client.query(`SELECT nspowner::regrole::text AS owner FROM pg_namespace WHERE nspname = $1`, [t.stateSchema]);
    expect(owner.rows).toEqual([{ owner: roles.repairer }]);
    const has = await t.client.query(`SELECT has_database_privilege($1, current_database(), 'CREATE') AS c`, [roles.repairer]);
    expect(has.rows).toEqual([{ c: false }]);
  });
});
