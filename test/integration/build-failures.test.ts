// Issue 10 §4: a failed index build leaves nothing behind, or says exactly what it left.
// (a) The build fails (lock_timeout while it waits for an unrelated old snapshot) many times in a
//     row: after each, either no index is left or the message names it. node-postgres reports the
//     error before the server process has finished aborting, so the tool's own build can still be
//     listed in pg_stat_progress_create_index; it must not be taken for someone else's build.
// (b) A prepared transaction (pg_prepared_xacts, not in pg_stat_activity) holding a lock on the
//     table: the preflight lists it, and the build that waited on it names it. On a cluster of the
//     test's own with max_prepared_transactions = 10.
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_MIGRATE_OPTIONS, MigrateResultSchema, migrateApply, type MigrateOptions } from '../../src/index.js';
import { connectPg, type Db } from '../../src/postgres/db.js';
import { loadSqlFile, renderSql } from '../../src/postgres/sql.js';
import { runCli } from '../helpers/cli.js';
import { createTestSchema, TENANT, type TestSchema } from '../helpers/pg.js';
import { startPgCluster, type PgCluster } from '../helpers/pg-cluster.js';

const INDEX = 'ux_digest_history_user_date';
const ITERATIONS = 60;

describe('a build that fails again and again (lock_timeout waiting for an unrelated old snapshot)', () => {
  let t: TestSchema;
  let snapshot: pg.Client;
  const opened: Db[] = [];
  const open = async (app: string) => {
    const db = await connectPg({ url: t.url, schema: t.schema, stateSchema: t.stateSchema, statementTimeoutMs: 30_000, applicationName: app });
    opened.push(db);
    return db;
  };
  beforeEach(async () => {
    t = await createTestSchema();
    await t.client.query(`INSERT INTO ${t.schema}.tenants (id) VALUES ($1)`, [TENANT]);
    await t.client.query(`INSERT INTO ${t.schema}.users (id, tenant_id, telegram_id) SELECT md5('u' || g)::uuid, $1, g FROM generate_series(1, 50) g`, [TENANT]);
    await t.client.query(
      `INSERT INTO ${t.schema}.digest_history (id, user_id, tenant_id, digest_date, content, status, created_at)
       SELECT gen_random_uuid(), md5('u' || g)::uuid, $1, DATE '2025-11-25' + (g % 7), '', 'sent', now() FROM generate_series(1, 50) g`,
      [TENANT],
    );
    // An unrelated long snapshot: a repeatable-read transaction that has read something else.
    snapshot = new pg.Client({ connectionString: t.url });
    await snapshot.connect();
    await snapshot.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    await snapshot.query('SELECT count(*) FROM pg_class');
  });
  afterEach(async () => {
    await snapshot.query('ROLLBACK').catch(() => undefined);
    await snapshot.end().catch(() => undefined);
    for (const db of opened.splice(0)) await db.close();
    await t.cleanup();
  });

  it(`after each of ${ITERATIONS} failed builds, no index is left, or the message names the one left`, async () => {
    const o: MigrateOptions = { ...DEFAULT_MIGRATE_OPTIONS, lockTimeoutMs: 100, maxAttempts: 1, lockWaitMs: 0, retryDelayMs: 10 };
    let leftSilently = 0;
    let leftAndNamed = 0;
    const deadline = Date.now() + 150_000;
    for (let i = 0; i < ITERATIONS && Date.now() < deadline; i++) {
      const ctl = await open('digest-doctor migrate');
      const r = await migrateApply(ctl, o, { connectBuild: () => open('digest-doctor migrate (build)') });
      await ctl.close();
      expect(r.outcome, r.message).toBe('busy');
      expect(r.migrations[0]!.actions.some((a) => /attempt 1 failed: 55P03/.test(a))).toBe(true);
      const { rows } = await t.client.query<{ indisvalid: boolean }>(`SELECT x.indisvalid FROM pg_index x WHERE x.indexrelid = to_regclass($1)`, [`${t.schema}.${INDEX}`]);
      if (rows.length) {
        // Left behind: the message must say so, by name, with its state.
        if (new RegExp(`left behind: index ${INDEX} \\(INVALID`).test(r.message) || new RegExp(`index ${INDEX} could not be dropped yet`).test(r.message)) leftAndNamed++;
        else leftSilently++;
        await t.client.query(`DROP INDEX ${t.schema}.${INDEX}`);
      } else {
        expect(r.message).toMatch(/nothing is left behind/);
      }
    }
    expect(leftSilently).toBe(0);
    // Each failure is dropped by the tool itself (the snapshot holds no lock on the table).
    expect(leftAndNamed).toBe(0);
  }, 200_000);
});

describe('a prepared transaction holding a lock on digest_history (a cluster with max_prepared_transactions = 10)', () => {
  let cluster: PgCluster | undefined;
  let c: pg.Client;
  const GID = "dd-test 'prepared'";
  const args = () => ['--database-url', cluster!.url(), '--schema', 'svc', '--state-schema', 'svc_dd', '--json'];
  beforeAll(async () => {
    cluster = await startPgCluster({ settings: { max_prepared_transactions: '10' } });
    c = await cluster.client();
    await c.query('CREATE SCHEMA svc');
    await c.query(renderSql(loadSqlFile('fixtures/service_schema.sql'), { schema: 'svc', state: 'svc_dd' }));
    await c.query(`INSERT INTO svc.tenants (id) VALUES ($1)`, [TENANT]);
    await c.query(`INSERT INTO svc.users (id, tenant_id, telegram_id) VALUES (md5('u1')::uuid, $1, 1)`, [TENANT]);
    const p = await cluster.client();
    await p.query('BEGIN');
    await p.query(`INSERT INTO svc.digest_history (id, user_id, tenant_id, digest_date, content, status, created_at) VALUES (gen_random_uuid(), md5('u1')::uuid, $1, '2025-11-25', '', 'sent', now())`, [TENANT]);
    await p.query(`PREPARE TRANSACTION '${GID.replace(/'/g, "''")}'`);
    await p.end();
  });
  afterAll(async () => {
    await c?.query(`ROLLBACK PREPARED '${GID.replace(/'/g, "''")}'`).catch(() => undefined);
    await c?.end().catch(() => undefined);
    await cluster?.stop();
  });

  it('the dry run lists it (gid, owner, database, age) with a warning', async () => {
    const res = await runCli([...args(), 'migrate']);
    const doc = MigrateResultSchema.parse(JSON.parse(res.stdout));
    expect(doc.preparedTransactions).toEqual([
      { gid: GID, owner: 'postgres', database: 'postgres', prepared: expect.any(String), ageMs: expect.any(Number), inThisDatabase: true, locksTable: true },
    ]);
    expect(doc.preparedTransactions[0]!.ageMs).toBeGreaterThanOrEqual(0);
    const check = doc.checks.find((k) => k.check === 'prepared transactions')!;
    expect(check.verdict).toBe('warn');
    expect(check.message).toContain(`'${GID}'`);
    expect(check.fix).toBe(`have their owner finish them: COMMIT PREPARED 'dd-test ''prepared''' or ROLLBACK PREPARED 'dd-test ''prepared''' (in database postgres, as postgres or a superuser)`);
  });

  it('--apply waits on it, fails (exit 4) naming it, and says what is left; once it is rolled back the build succeeds', async () => {
    const res = await runCli([...args(), 'migrate', '--apply', '--lock-timeout', '1s', '--attempts', '1', '--lock-wait', '0']);
    expect(res.code, res.stderr + res.stdout).toBe(4);
    const doc = MigrateResultSchema.parse(JSON.parse(res.stdout));
    expect(doc.outcome).toBe('busy');
    expect(doc.message).toContain(`prepared transactions it waits for (not in pg_stat_activity): '${GID}' (owner postgres, database postgres`);
    expect(doc.message).toContain(`ROLLBACK PREPARED 'dd-test ''prepared'''`);
    const left = (await c.query(`SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('svc.${INDEX}')`)).rows;
    // The drop of the half-built index waits on the same prepared transaction: the index is left, and named.
    if (left.length) expect(doc.message).toMatch(new RegExp(`index ${INDEX} could not be dropped yet`));
    else expect(doc.message).toMatch(/nothing is left behind/);
    await c.query(`ROLLBACK PREPARED '${GID.replace(/'/g, "''")}'`);
    const again = await runCli([...args(), 'migrate', '--apply', '--lock-wait', '0']);
    expect(again.code, again.stderr + again.stdout).toBe(0);
    expect((await c.query(`SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('svc.${INDEX}')`)).rows).toEqual([{ indisvalid: true }]);
  });
});
