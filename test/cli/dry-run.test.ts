// Issue 12 §6 and §7: a dry run writes nothing (DDL included), whoever runs it, and a role that may
// only read (README's read-only GRANTs) can run every command that reads. "Nothing written" is the
// catalog rows and the contents (with xmin) of the test's schemas, and every key (DUMP) under the
// test's Redis prefix, compared before and after each command. On both engines; the read-only role
// runs on the server only (roles and GRANTs: PGlite runs as its one superuser, test/helpers/engine.ts).
import { Redis } from 'ioredis';
import type pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadSqlFile, renderSql } from '../../src/postgres/sql.js';
import { runCli } from '../helpers/cli.js';
import { createTestSchema, ENGINES, INCIDENT, seedIncident, type TestSchema } from '../helpers/pg.js';
import { redisUrl } from '../helpers/redis.js';
import { DAY, seedReplayScene, type ReplayScene } from '../helpers/replay-fixtures.js';
import { dropRoles, readmeSqlBlock, renderReadmeSql, uniqueRole, urlAs } from '../helpers/roles.js';
import { pgSnapshot, redisSnapshot } from '../helpers/snapshot.js';

let t: TestSchema;
let redis: Redis;
let prefix: string;
let scene: ReplayScene;
let roles: { reader: string; repairer: string };
let database: string;

const names = () => ({ ...roles, database, schema: t.schema, state: t.stateSchema });
const runReadme = (title: string) => t.client.query(renderReadmeSql(readmeSqlBlock(title), names()));
/** The test's database: as `url` (a role's URL on the server), else the test schema's own (the embedded data dir). */
const databaseFlags = (url?: string) => (url ? ['--database-url', url] : t.dataDir ? ['--data-dir', t.dataDir] : ['--database-url', t.url]);
const cliAs = (url: string | undefined, ...args: string[]) =>
  runCli([...databaseFlags(url), '--schema', t.schema, '--state-schema', t.stateSchema, '--redis-url', redisUrl(), '--key-prefix', prefix, ...args]);

// The audit as an earlier version kept it: a table with a row per changed row and whole jsonb images.
async function downgradeAudit(): Promise<void> {
  const s = t.stateSchema;
  await t.client.query(`
    CREATE TABLE ${s}.audit_v1 AS
      SELECT run_id, command, table_schema, row_id, before, after, db_user, client_addr, client_host, application_name, at FROM ${s}.audit;
    DROP VIEW ${s}.audit;
    DROP TABLE ${s}.audit_batches;
    ALTER TABLE ${s}.audit_v1 RENAME TO audit;
    ALTER TABLE ${s}.audit ADD PRIMARY KEY (run_id, row_id);
    DROP TABLE ${s}.state_migrations; -- an earlier release recorded no state versions`);
}

/** A mark-stale run on the stuck row only (the duplicate pair stays for fix-duplicates), audited by an earlier version. */
async function oldVersionAudit(): Promise<string> {
  // no digest stream for the live check here: marked without it on purpose (the test is about what the dry runs write)
  const run = await cliAs(undefined, '--json', 'mark-stale', '--older-than', '1d', '--user', INCIDENT.stuckUser, '--apply', '--include-live');
  expect(run.code, run.stderr).toBe(0);
  const runId = JSON.parse(run.stdout).applied.runId as string;
  await downgradeAudit();
  // and a ledger, so migrate status has a state table to read
  await t.client.query(renderSql(loadSqlFile('state/0003_schema_migrations.sql'), { schema: t.schema, state: t.stateSchema }));
  return runId;
}

/**
 * Every command's dry run, with the exit code worked out from the scene: the incident's duplicate
 * pair (6af5e7d3..., 2025-11-25, two pending) and stuck row (pending since 2025-11-20), the replay
 * scene's failed rows and DLQ entries; `runId` the old-version run (undo has something to put back)
 * or null (no state schema: undo's run is unknown, exit 2).
 */
function dryRuns(runId: string | null, readOnly: boolean): Array<{ args: string[]; code: number }> {
  return [
    { args: ['inspect'], code: 1 }, // duplicates and stuck rows
    { args: ['inspect', '--user', INCIDENT.user, '--date', INCIDENT.day], code: 1 }, // that user's duplicate pair
    { args: ['streams'], code: 1 }, // the digest stream is missing, the DLQ holds entries: warnings
    { args: ['streams', '--scan'], code: 1 },
    { args: ['migrate'], code: 1 }, // the duplicates check fails
    // no index: nothing to remove; a read-only role's preflight fails privileges (as --apply would): 1
    { args: ['migrate', '--down'], code: readOnly ? 1 : 0 },
    { args: ['migrate', 'status'], code: 0 }, // pending, no drift
    { args: ['fix-duplicates'], code: 1 }, // one group to fix
    { args: ['mark-stale', '--older-than', '1d'], code: 1 }, // the pair (and the stuck row, unless marked) are days old
    { args: ['undo', runId ?? '5b1c3f0e-8d2a-4c61-9e7f-2a3b4c5d6e7f'], code: runId ? 1 : 2 },
    { args: ['runs'], code: 0 },
    { args: ['replay', '--from-dlq', '--failed', '--date', DAY, '--history-id', scene.pending], code: 1 }, // failed rows to publish
  ];
}

/**
 * Runs every dry run and compares the snapshots: after each command on the server; on the embedded
 * engine once, after the whole sequence (reading the data directory means opening it again after
 * each CLI run, ~1-3 s each; a write leaves new xmins and catalog rows that no later dry run can put
 * back, so the one comparison still sees it, without naming the command).
 */
async function expectNothingWritten(url: string | undefined, runId: string | null, readOnly = false): Promise<void> {
  const schemas = [t.schema, t.stateSchema];
  const each = t.engine === 'server';
  const pgBefore = await pgSnapshot(t.client, schemas);
  const redisBefore = await redisSnapshot(redis, prefix);
  const ran: string[] = [];
  for (const c of dryRuns(runId, readOnly)) {
    const res = await cliAs(url, ...c.args);
    ran.push(c.args.join(' '));
    expect(res.code, `${c.args.join(' ')}: ${res.stderr}`).toBe(c.code);
    expect(res.stderr).not.toMatch(/internal error|\n\s+at /);
    if (each) {
      expect(await pgSnapshot(t.client, schemas), c.args.join(' ')).toEqual(pgBefore);
      expect(await redisSnapshot(redis, prefix), c.args.join(' ')).toEqual(redisBefore);
    }
  }
  if (!each) {
    expect(await pgSnapshot(t.client, schemas), ran.join('; ')).toEqual(pgBefore);
    expect(await redisSnapshot(redis, prefix), ran.join('; ')).toEqual(redisBefore);
  }
}

describe.each(ENGINES)('dry runs (%s)', (engine) => { // not reindented
// twelve CLI runs; on the embedded engine each pays PGlite's start-up
const TIMEOUT = engine === 'server' ? 120_000 : 300_000;
beforeEach(async () => {
  t = await createTestSchema({ engine });
  prefix = `ddtest:${t.schema}:`;
  redis = new Redis(redisUrl(), { keyPrefix: prefix, lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  await seedIncident(t);
  scene = await seedReplayScene(t, redis);
  roles = { reader: uniqueRole('reader'), repairer: uniqueRole('repairer') };
  database = engine === 'server' ? new URL(t.url).pathname.slice(1) : '';
});
afterEach(async () => {
  if (engine === 'server') await dropRoles(t.client as pg.Client, [roles.reader, roles.repairer]);
  const raw = new Redis(redisUrl(), { lazyConnect: true });
  await raw.connect();
  const keys = await raw.keys(`${prefix}*`);
  if (keys.length) await raw.del(...keys);
  raw.disconnect();
  redis.disconnect();
  await t.cleanup();
});

describe('a dry run writes nothing, schema included', () => {
  it('with no state schema yet: none is created', async () => {
    await expectNothingWritten(undefined, null);
    const ns = await t.client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [t.stateSchema]);
    expect(ns.rowCount).toBe(0);
  }, TIMEOUT);

  it('with an audit table of an earlier version: it stays as it is (undo reads it in place)', async () => {
    const runId = await oldVersionAudit();
    await expectNothingWritten(undefined, runId);
    const kind = await t.client.query(`SELECT c.relkind FROM pg_class c WHERE c.oid = to_regclass($1)`, [`${t.stateSchema}.audit`]);
    expect(kind.rows).toEqual([{ relkind: 'r' }]);
    // The dry run read the old table: the stuck row goes back to pending.
    const undo = await cliAs(undefined, '--json', 'undo', runId);
    expect(JSON.parse(undo.stdout).plan.restore).toEqual([expect.objectContaining({ id: 'b3333333-3333-4333-8333-333333333333', from: 'failed', to: 'pending' })]);
  }, TIMEOUT);
});

// roles and GRANTs: the server only (PGlite runs as its one superuser)
if (engine === 'server') describe("a read-only role (README's GRANTs) runs every command that reads", () => {
  it('with no state schema yet', async () => {
    await runReadme('read-only role');
    await expectNothingWritten(urlAs(t.url, roles.reader), null, true);
  });

  it('with the state schema (an earlier version of the audit included)', async () => {
    const runId = await oldVersionAudit();
    await runReadme('read-only role');
    await runReadme('read-only role, state schema');
    await expectNothingWritten(urlAs(t.url, roles.reader), runId, true);
    const runs = await cliAs(urlAs(t.url, roles.reader), '--json', 'runs');
    expect(JSON.parse(runs.stdout).runs.map((r: { id: string }) => r.id)).toEqual([runId]);
  });
});
});
