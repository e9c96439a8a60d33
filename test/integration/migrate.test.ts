// migrate against a real Postgres: each test its own schema (and state schema), cleaned up. On both
// engines (test/helpers/engine.ts). The embedded engine has one connection: no CONCURRENTLY (the
// statements are the migration files as written), no second session holding locks or building, no
// pg_stat_progress, no statement_timeout; those cases run on the server only, and where the embedded
// run does something else instead, the test says what it does.
import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UNIQUE_INDEX_NAME } from '../../src/core/contract.js';
import { runnableStatement } from '../../src/core/migration.js';
import { DEFAULT_MIGRATE_OPTIONS, migrateApply, migrateDown, migratePlan, migrateStatus, type MigrateHooks, type MigrateOptions } from '../../src/ops/migrate.js';
import { connectPg, type Db } from '../../src/postgres/db.js';
import { connectEmbedded } from '../../src/postgres/embedded.js';
import { loadMigrations, renderStatement } from '../../src/postgres/migrator.js';
import { ENGINES, TENANT, createTestSchema, ensureUser, insertRows, type TestSchema } from '../helpers/pg.js';

let t: TestSchema;
let dbs: Db[] = [];
let extra: pg.Client[] = [];

const OPTS: MigrateOptions = { ...DEFAULT_MIGRATE_OPTIONS, retryDelayMs: 50, lockWaitMs: 0, lockTimeoutMs: 30_000 };

/** A Db on the test schema: `url` on the server; the embedded data directory when `url` is the test's embedded one. */
async function open(url = t.url, app = 'digest-doctor migrate'): Promise<Db> {
  const ids = { schema: t.schema, stateSchema: t.stateSchema, statementTimeoutMs: 60_000, applicationName: app };
  const db = t.dataDir && url === t.url ? await connectEmbedded(t.dataDir, ids) : await connectPg({ url, ...ids });
  dbs.push(db);
  return db;
}

function hooks(extraHooks: Partial<MigrateHooks> = {}): MigrateHooks {
  return { connectBuild: () => open(t.url, 'digest-doctor migrate (build)'), ...extraHooks };
}

async function client(): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: t.url });
  c.on('error', () => undefined);
  await c.connect();
  extra.push(c);
  return c;
}

async function indexRow(): Promise<{ indisvalid: boolean; indisready: boolean } | undefined> {
  const r = await t.client.query(
    `SELECT x.indisvalid, x.indisready FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2`,
    [t.schema, UNIQUE_INDEX_NAME],
  );
  return r.rows[0];
}

async function ledger(): Promise<Array<Record<string, any>>> {
  const r = await t.client.query(`SELECT * FROM ${t.stateSchema}.schema_migrations WHERE target_schema = $1`, [t.schema]);
  return r.rows;
}

async function stateSchemaExists(): Promise<boolean> {
  const r = await t.client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [t.stateSchema]);
  return r.rowCount === 1;
}

/** Polls until a CREATE INDEX runs on this schema's digest_history (no timing assertion: just a wait). */
async function waitForBuild(): Promise<number> {
  for (let i = 0; i < 400; i++) {
    const r = await t.client.query(
      `SELECT p.pid FROM pg_stat_progress_create_index p JOIN pg_class c ON c.oid = p.relid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = 'digest_history'`,
      [t.schema],
    );
    if (r.rows[0]) return r.rows[0].pid;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error('no build started');
}

async function waitForLedger(ok: (rows: Array<Record<string, any>>) => boolean): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const rows = await ledger().catch(() => []);
    if (ok(rows)) return;
    await new Promise((res) => setTimeout(res, 25));
  }
  throw new Error('ledger never reached the expected state');
}

/** A transaction that has written to digest_history and stays open: a concurrent build waits for it. */
async function openWriter(): Promise<pg.Client> {
  const c = await client();
  const user = randomUUID();
  await ensureUser(t, user, TENANT);
  await c.query('BEGIN');
  await c.query(`INSERT INTO ${t.schema}.digest_history (id, user_id, digest_date, content, status) VALUES ($1, $2, '2025-01-01', '', 'sent')`, [randomUUID(), user]);
  return c;
}

async function seedClean(n: number): Promise<void> {
  // n users with one pending row each, plus a sent row the same day (not covered by the index).
  await t.client.query(`INSERT INTO ${t.schema}.tenants (id) VALUES ($1) ON CONFLICT DO NOTHING`, [TENANT]);
  await t.client.query(`INSERT INTO ${t.schema}.users (id, tenant_id, telegram_id) SELECT gen_random_uuid(), $1, g FROM generate_series(1, $2::int) g`, [TENANT, n]);
  await t.client.query(
    `INSERT INTO ${t.schema}.digest_history (id, user_id, tenant_id, digest_date, content, status)
     SELECT gen_random_uuid(), u.id, u.tenant_id, '2025-11-25', '', s FROM ${t.schema}.users u CROSS JOIN (VALUES ('pending'), ('sent')) v(s)`,
  );
}

async function seedDuplicates(): Promise<string[]> {
  const user = randomUUID();
  return insertRows(t, [
    { userId: user, digestDate: '2025-11-25', status: 'pending', createdAt: '2025-11-25T15:39:09Z' },
    { userId: user, digestDate: '2025-11-25', status: 'pending', createdAt: '2025-11-25T15:39:10Z' },
  ]);
}

describe.each(ENGINES)('migrate (%s)', (engine) => { // the whole file, on each engine (not reindented)
// a second session (a lock holder, a concurrent writer or build, pg_cancel_backend), pg_stat_progress,
// statement_timeout, a URL's port or options, roles: the server only (test/helpers/engine.ts)
const serverIt = (engine === 'server' ? it : () => undefined) as typeof it;
const embeddedIt = (engine === 'embedded' ? it : () => undefined) as typeof it;
/** The migration's statements as each engine runs them: CONCURRENTLY added on the server, the file as written embedded. */
const CONCURRENTLY = engine === 'server' ? ' CONCURRENTLY' : '';
/** How the plan and the actions say the index is built or dropped. */
const HOW = engine === 'server' ? 'concurrently' : 'without CONCURRENTLY (embedded engine: one connection, nothing else writes)';
beforeEach(async () => {
  t = await createTestSchema({ engine });
});

afterEach(async () => {
  for (const c of extra) await c.end().catch(() => undefined);
  for (const d of dbs) await d.close();
  extra = [];
  dbs = [];
  await t.cleanup();
});

describe('migrate (dry run)', () => {
  it('shows the SQL and the preflight, and writes nothing', async () => {
    await seedClean(20);
    const r = await migratePlan(await open(), OPTS);
    expect(r.outcome).toBe('planned');
    expect(r.ok).toBe(true);
    expect(r.migrations[0]!.statements.at(-1)).toBe(
      `CREATE UNIQUE INDEX${CONCURRENTLY} ux_digest_history_user_date ON "${t.schema}".digest_history (user_id, digest_date) WHERE status IN ('pending', 'processing')`,
    );
    expect(r.checks.map((c) => c.check)).toEqual(['session', 'primary', 'writable', 'privileges', 'ledger', 'duplicates', 'long transactions', 'prepared transactions', 'lock']);
    expect(await indexRow()).toBeUndefined();
    expect(await stateSchemaExists()).toBe(false);
  });

  it('shows the duplicates it would refuse on', async () => {
    for (let i = 0; i < 3; i++) await seedDuplicates();
    const r = await migratePlan(await open(), { ...OPTS, duplicateLimit: 2 });
    expect(r.ok).toBe(false);
    expect(r.duplicates).toMatchObject({ checked: true, totalGroups: 3, totalRows: 6 });
    expect(r.duplicates.groups).toHaveLength(2);
    expect(r.duplicates.groups[0]!.statuses).toEqual(['pending', 'pending']);
    expect(r.checks.find((c) => c.check === 'duplicates')!.fix).toMatch(/digest-doctor fix-duplicates/);
    expect(r.lockHolder).toBeNull();
  });

  serverIt('shows who holds the lock', async () => {
    const holder = await client();
    const [{ pid }] = (await holder.query(`SELECT pg_backend_pid() AS pid, pg_advisory_lock(hashtext('digest-doctor:migrate'), hashtext($1::text))`, [t.schema])).rows;
    const r = await migratePlan(await open(), OPTS);
    expect(r.ok).toBe(false);
    expect(r.checks.find((c) => c.check === 'lock')!.verdict).toBe('fail');
    expect(r.lockHolder?.pid).toBe(pid);
  });
});

describe('migrate --apply', () => {
  it('refuses while duplicates exist and leaves nothing behind, not even an old invalid index', async () => {
    await seedDuplicates();
    // A failed concurrent build by someone else: it leaves an INVALID index that still rejects duplicate writes.
    await expect(t.client.query(`CREATE UNIQUE INDEX CONCURRENTLY ${UNIQUE_INDEX_NAME} ON ${t.schema}.digest_history (user_id, digest_date) WHERE status IN ('pending','processing')`)).rejects.toMatchObject({ code: '23505' });
    expect(await indexRow()).toMatchObject({ indisvalid: false });
    const r = await migrateApply(await open(), OPTS, hooks());
    expect(r.outcome).toBe('refused');
    expect(r.duplicates.groups[0]!.rows).toBe(2);
    expect(r.message).toMatch(/digest-doctor fix-duplicates/);
    expect(await indexRow()).toBeUndefined();
  });

  it('applies on a clean table: valid, matching, the upsert arbiter; the ledger records it; a second run is a no-op', async () => {
    await seedClean(50);
    const db = await open();
    const r = await migrateApply(db, OPTS, hooks());
    expect(r.outcome).toBe('applied');
    expect(r.migrations[0]!.verification).toEqual({ valid: true, ready: true, matches: true, differences: [], arbiterIndexes: [UNIQUE_INDEX_NAME], arbiterProven: true });
    // what it did, in the engine's words: the embedded run says it built without CONCURRENTLY, and why
    expect(r.migrations[0]!.actions).toEqual([`built index ${UNIQUE_INDEX_NAME} ${HOW} (attempt 1)`]);
    expect(await indexRow()).toEqual({ indisvalid: true, indisready: true });
    const [row] = await ledger();
    expect(row).toMatchObject({ version: 1, name: 'ux_digest_history_user_date', status: 'applied', attempts: 1, applied_by: 'postgres', checksum: loadMigrations()[0]!.checksum });
    expect(row!.tool_version).toMatch(/^\d+\.\d+\.\d+/);
    // EXPLAIN of the upsert inserted nothing.
    expect((await t.client.query(`SELECT count(*)::int AS n FROM ${t.schema}.digest_history`)).rows[0].n).toBe(100);

    const again = await migrateApply(db, OPTS, hooks());
    expect(again.outcome).toBe('noop');
    expect(again.message).toMatch(/no-op/);
    expect(again.migrations[0]!.statements).toEqual([]);
    expect((await ledger())[0]).toMatchObject({ attempts: 1, status: 'applied' });
    expect((await migrateStatus(db)).drift).toBe(false);
  });

  serverIt('keeps a concurrent writer working during the build', async () => {
    await seedClean(20_000);
    const w = await client();
    const users = (await w.query(`SELECT id FROM ${t.schema}.users LIMIT 50`)).rows.map((r) => r.id as string);
    const errors: Array<{ code?: string; message: string }> = [];
    let iterations = 0;
    let stop = false;
    const writer = (async () => {
      for (let i = 0; !stop; i++) {
        const user = users[i % users.length]!;
        const day = new Date(Date.UTC(2030, 0, 1) + i * 86_400_000).toISOString().slice(0, 10);
        try {
          const id = randomUUID();
          await w.query(`INSERT INTO ${t.schema}.digest_history (id, user_id, digest_date, content, status) VALUES ($1, $2, $3, '', 'pending')`, [id, user, day]);
          await w.query(`UPDATE ${t.schema}.digest_history SET status = 'sent', sent_at = now() WHERE id = $1`, [id]);
          await w.query(`UPDATE ${t.schema}.digest_history SET status = 'failed' WHERE user_id = $1 AND digest_date = '2025-11-25' AND status = 'sent'`, [user]);
        } catch (err) {
          errors.push(err as { code?: string; message: string });
        }
        iterations++;
      }
    })();
    while (iterations < 20) await new Promise((res) => setTimeout(res, 10));
    const r = await migrateApply(await open(), OPTS, hooks());
    const during = iterations;
    while (iterations < during + 20) await new Promise((res) => setTimeout(res, 10));
    stop = true;
    await writer;
    expect(r.outcome).toBe('applied');
    expect(errors.filter((e) => e.code !== '23505')).toEqual([]);
    expect(await indexRow()).toEqual({ indisvalid: true, indisready: true });
    // The guard now works for the writer: a second pending row for one (user, day) is rejected.
    await w.query(`INSERT INTO ${t.schema}.digest_history (id, user_id, digest_date, content, status) VALUES ($1, $2, '2029-01-01', '', 'pending')`, [randomUUID(), users[0]]);
    await expect(w.query(`INSERT INTO ${t.schema}.digest_history (id, user_id, digest_date, content, status) VALUES ($1, $2, '2029-01-01', '', 'pending')`, [randomUUID(), users[0]])).rejects.toMatchObject({ code: '23505' });
  });

  it('recovers an INVALID index planted by a failed concurrent build: dropped concurrently, rebuilt', async () => {
    const [, dup] = await seedDuplicates();
    await expect(t.client.query(`CREATE UNIQUE INDEX CONCURRENTLY ${UNIQUE_INDEX_NAME} ON ${t.schema}.digest_history (user_id, digest_date) WHERE status IN ('pending','processing')`)).rejects.toMatchObject({ code: '23505' });
    await t.client.query(`UPDATE ${t.schema}.digest_history SET status = 'failed' WHERE id = $1`, [dup]);
    expect(await indexRow()).toMatchObject({ indisvalid: false });
    const status = await migrateStatus(await open());
    expect(status.migrations[0]!.state).toBe('invalid');
    expect(status.drift).toBe(true);
    const r = await migrateApply(await open(), OPTS, hooks());
    expect(r.outcome).toBe('applied');
    expect(r.migrations[0]!.before).toMatchObject({ exists: true, valid: false });
    expect(r.migrations[0]!.plan).toBe(`index ${UNIQUE_INDEX_NAME} exists but is INVALID (a failed earlier build): drop it ${HOW} and rebuild`);
    expect(r.migrations[0]!.statements).toContain(`DROP INDEX${CONCURRENTLY} "${t.schema}".ux_digest_history_user_date`);
    expect(r.migrations[0]!.actions[0]).toMatch(/dropped index ux_digest_history_user_date/);
    expect(await indexRow()).toEqual({ indisvalid: true, indisready: true });
  });

  serverIt("leaves an INVALID index alone while someone else's build of it is still in progress", async () => {
    await seedClean(10);
    const blocker = await openWriter();
    const builder = await client();
    const other = builder.query(`CREATE UNIQUE INDEX CONCURRENTLY ${UNIQUE_INDEX_NAME} ON ${t.schema}.digest_history (user_id, digest_date) WHERE status IN ('pending','processing')`);
    await waitForBuild();
    const r = await migrateApply(await open(), OPTS, hooks());
    expect(r.outcome).toBe('busy');
    expect(r.message).toMatch(/being built right now by pid/);
    await blocker.query('COMMIT');
    await other;
    expect(await indexRow()).toEqual({ indisvalid: true, indisready: true });
  });

  serverIt('two migrators at once: one builds, the other answers busy naming the holder', async () => {
    await seedClean(10);
    const blocker = await openWriter();
    const first = migrateApply(await open(t.url, 'digest-doctor migrate first'), OPTS, hooks());
    await waitForBuild();
    const second = await migrateApply(await open(), { ...OPTS, lockWaitMs: 200 }, hooks());
    expect(second.outcome).toBe('busy');
    expect(second.lockHolder).toMatchObject({ application: 'digest-doctor migrate first', user: 'postgres' });
    expect(second.message).toMatch(/busy: another digest-doctor migrate holds the lock: pid \d+/);
    await blocker.query('COMMIT');
    expect((await first).outcome).toBe('applied');
  });

  serverIt('on lock_timeout drops the half-built index and retries', async () => {
    await seedClean(10);
    const blocker = await openWriter();
    const run = migrateApply(await open(), { ...OPTS, lockTimeoutMs: 1000, maxAttempts: 3 }, hooks());
    // the first attempt times out waiting for the blocker; then the blocker ends and the retry succeeds
    await waitForLedger((rows) => rows[0]?.attempts >= 1);
    await blocker.query('COMMIT');
    const r = await run;
    expect(r.outcome).toBe('applied');
    expect(r.migrations[0]!.attempts).toBeGreaterThanOrEqual(2);
    expect(r.migrations[0]!.actions.join('\n')).toMatch(/attempt 1 failed: 55P03/);
    expect(await indexRow()).toEqual({ indisvalid: true, indisready: true });
    expect((await ledger())[0]).toMatchObject({ status: 'applied', last_sqlstate: '55P03' });
  });

  serverIt('gives up after a bounded number of attempts, names the blocking transaction, and the next run recovers', async () => {
    await seedClean(10);
    const blocker = await openWriter();
    const blockerPid = (await blocker.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    const r = await migrateApply(await open(), { ...OPTS, lockTimeoutMs: 200, maxAttempts: 2 }, hooks());
    expect(r.outcome).toBe('busy');
    expect(r.migrations[0]!.attempts).toBe(1);
    // DROP INDEX CONCURRENTLY waits for the same transaction: the invalid index is named and left for the next run
    expect(r.message).toContain(`pid ${blockerPid}`);
    expect(r.message).toMatch(/the next digest-doctor migrate --apply drops it/);
    expect((await ledger())[0]).toMatchObject({ status: 'failed', last_sqlstate: '55P03' });
    await blocker.query('ROLLBACK');
    const again = await migrateApply(await open(), OPTS, hooks());
    expect(again.outcome).toBe('applied');
    expect(again.migrations[0]!.before).toMatchObject({ exists: true, valid: false });
    expect(await indexRow()).toEqual({ indisvalid: true, indisready: true });
  });

  serverIt('gives up clearly when every attempt times out, dropping each half-built index', async () => {
    await seedClean(50_000);
    const r = await migrateApply(await open(), { ...OPTS, buildTimeoutMs: 1, maxAttempts: 2 }, hooks());
    expect(r.outcome).toBe('busy');
    expect(r.migrations[0]!.attempts).toBe(2);
    expect(r.message).toMatch(/did not finish after 2 attempts.*nothing is left behind/);
    expect(r.migrations[0]!.actions.filter((a) => /failed: 57014/.test(a))).toHaveLength(2);
    expect(await indexRow()).toBeUndefined();
    expect((await ledger())[0]).toMatchObject({ status: 'failed', attempts: 2, last_sqlstate: '57014' });
  });

  embeddedIt('no statement_timeout on the embedded engine: a --build-timeout too short for the build does not stop it', async () => {
    // The server cancels this build (57014, the test above); the embedded engine enforces no
    // statement_timeout (README, "The embedded engine"): the build runs to the end, once, as written.
    await seedClean(2_000);
    const r = await migrateApply(await open(), { ...OPTS, buildTimeoutMs: 1, maxAttempts: 2 }, hooks());
    expect(r.outcome).toBe('applied');
    expect(r.migrations[0]!.attempts).toBe(1);
    expect(r.migrations[0]!.statements).toEqual([`SET lock_timeout = '30000ms'`, `SET statement_timeout = '1ms'`, `CREATE UNIQUE INDEX ux_digest_history_user_date ON "${t.schema}".digest_history (user_id, digest_date) WHERE status IN ('pending', 'processing')`]);
    expect(await indexRow()).toEqual({ indisvalid: true, indisready: true });
    expect((await ledger())[0]).toMatchObject({ status: 'applied', attempts: 1, last_sqlstate: null });
  });

  serverIt('an interrupt cancels the build on the server and removes the invalid index', async () => {
    await seedClean(10);
    const blocker = await openWriter();
    const ac = new AbortController();
    const run = migrateApply(await open(), OPTS, hooks({ signal: ac.signal }));
    await waitForBuild();
    ac.abort();
    // the cancelled build's index can be dropped once the transaction it waited for ends
    await waitForLedger((rows) => rows[0]?.last_sqlstate === '57014');
    await blocker.query('ROLLBACK');
    const r = await run;
    expect(r.outcome).toBe('cancelled');
    expect(r.message).toMatch(/pg_cancel_backend/);
    expect(await indexRow()).toBeUndefined();
    expect((await ledger())[0]).toMatchObject({ status: 'failed', last_sqlstate: '57014' });
  });

  serverIt('reports build progress from pg_stat_progress_create_index', async () => {
    await seedClean(10);
    const blocker = await openWriter();
    const phases: string[] = [];
    const run = migrateApply(await open(), OPTS, hooks({ onProgress: (p) => phases.push(p.phase) }));
    await waitForBuild();
    // the build waits for the blocker: let a progress poll see it, then release
    while (!phases.some((p) => /waiting for writers/.test(p))) await new Promise((res) => setTimeout(res, 50));
    await blocker.query('COMMIT');
    expect((await run).outcome).toBe('applied');
    expect(phases.find((p) => p !== 'initializing')).toMatch(/waiting for writers before build/);
  });
});

describe('refusals before anything is written', () => {
  serverIt('refuses the Supabase transaction pooler port', async () => {
    const r = await migrateApply(await open(), { ...OPTS, port: 6543 }, hooks());
    expect(r.outcome).toBe('refused');
    expect(r.checks.find((c) => c.check === 'session')!.verdict).toBe('fail');
    expect(await stateSchemaExists()).toBe(false);
  });

  // a URL's options: the server; the embedded session is made read-only by SET (the next test)
  serverIt('refuses a read-only session', async () => {
    const u = new URL(t.url);
    u.searchParams.set('options', '-c default_transaction_read_only=on');
    const r = await migrateApply(await open(u.toString()), OPTS, hooks());
    expect(r.outcome).toBe('refused');
    expect(r.message).toMatch(/writable/);
  });

  embeddedIt('refuses a read-only session (default_transaction_read_only set on the embedded backend)', async () => {
    const db = await open();
    await db.raw('SET default_transaction_read_only = on');
    try {
      const r = await migrateApply(db, OPTS, hooks());
      expect(r.outcome).toBe('refused');
      expect(r.checks.find((c) => c.check === 'writable')).toMatchObject({ verdict: 'fail', message: 'the session is read-only: default_transaction_read_only is on (set for the database, the role or the server)' });
      expect(await stateSchemaExists()).toBe(false);
    } finally {
      await db.raw('RESET default_transaction_read_only');
    }
  });

  // roles: the server (PGlite runs as its one superuser)
  serverIt('refuses a role that does not own the table', async () => {
    const role = `dd_ro_${randomBytes(4).toString('hex')}`;
    await t.client.query(`CREATE ROLE ${role} LOGIN`);
    try {
      const u = new URL(t.url);
      u.username = role;
      const r = await migrateApply(await open(u.toString()), OPTS, hooks());
      expect(r.outcome).toBe('refused');
      expect(r.checks.find((c) => c.check === 'privileges')).toMatchObject({ verdict: 'fail', fix: 'connect as postgres or a member of that role' });
    } finally {
      for (const d of dbs.splice(0)) await d.close();
      await t.client.query(`DROP ROLE ${role}`);
    }
  });
});

describe('migrate status and --down', () => {
  it('drift when ledger and catalog disagree: missing, different, edited file', async () => {
    await seedClean(10);
    const db = await open();
    expect((await migrateApply(db, OPTS, hooks())).outcome).toBe('applied');
    await t.client.query(`DROP INDEX ${t.schema}.${UNIQUE_INDEX_NAME}`);
    let s = await migrateStatus(db);
    expect(s.drift).toBe(true);
    expect(s.migrations[0]).toMatchObject({ state: 'drift', index: { exists: false } });
    expect(s.findings[0]).toMatch(/ledger says applied but index ux_digest_history_user_date is missing/);

    await t.client.query(`CREATE UNIQUE INDEX ${UNIQUE_INDEX_NAME} ON ${t.schema}.digest_history (user_id, digest_date) WHERE status = 'pending'`);
    s = await migrateStatus(db);
    expect(s.migrations[0]!.state).toBe('drift');
    expect(s.findings.join(' ')).toMatch(/differs from the migration: its predicate covers 'pending', expected status IN \('pending','processing'\)/);
    const conflict = await migrateApply(db, OPTS, hooks());
    expect(conflict.outcome).toBe('refused');
    expect(conflict.message).toMatch(/another definition/);

    await t.client.query(`DROP INDEX ${t.schema}.${UNIQUE_INDEX_NAME}`);
    expect((await migrateApply(db, OPTS, hooks())).outcome).toBe('applied');
    expect((await migrateStatus(db)).drift).toBe(false);
    await t.client.query(`UPDATE ${t.stateSchema}.schema_migrations SET checksum = repeat('0', 64)`);
    s = await migrateStatus(db);
    expect(s.drift).toBe(true);
    expect(s.findings[0]).toMatch(/migration file changed/);
  });

  it('status reads nothing but the catalog when the ledger does not exist yet', async () => {
    const s = await migrateStatus(await open());
    expect(s).toMatchObject({ drift: false, migrations: [{ state: 'pending', ledger: null }] });
    expect(await stateSchemaExists()).toBe(false);
  });

  it('--down removes the index concurrently and marks the ledger reverted; again is a no-op', async () => {
    await seedClean(10);
    const db = await open();
    await migrateApply(db, OPTS, hooks());
    const plan = await migrateDown(db, OPTS, hooks(), false);
    expect(plan.outcome).toBe('planned');
    expect(plan.migrations[0]!.plan).toBe(`index ${UNIQUE_INDEX_NAME} exists: drop it ${HOW}`);
    expect(plan.migrations[0]!.statements.at(-1)).toBe(`DROP INDEX${CONCURRENTLY} "${t.schema}".ux_digest_history_user_date`);
    expect(await indexRow()).toBeDefined();
    const r = await migrateDown(db, OPTS, hooks(), true);
    expect(r.outcome).toBe('removed');
    expect(await indexRow()).toBeUndefined();
    expect((await ledger())[0]).toMatchObject({ status: 'reverted' });
    expect((await migrateStatus(db)).migrations[0]!.state).toBe('pending');
    expect((await migrateDown(db, OPTS, hooks(), true)).outcome).toBe('noop');
  });
});

describe('the embedded engine runs the same migration file', () => {
  it('runs as written inside a transaction (as a one-connection engine does), where the CONCURRENTLY form cannot', async () => {
    await seedClean(5);
    const db = await open();
    const [m] = loadMigrations();
    await t.client.query('BEGIN');
    await t.client.query(renderStatement(db, runnableStatement(m!, 'up', 'embedded')));
    const arbiters = await t.client.query(
      `EXPLAIN (FORMAT JSON) INSERT INTO ${t.schema}.digest_history (id, user_id, digest_date, content, status) VALUES (gen_random_uuid(), gen_random_uuid(), '2025-01-01', '', 'pending') ON CONFLICT (user_id, digest_date) WHERE status IN ('pending','processing') DO NOTHING`,
    );
    expect(arbiters.rows[0]['QUERY PLAN'][0].Plan['Conflict Arbiter Indexes']).toEqual([UNIQUE_INDEX_NAME]);
    await t.client.query(renderStatement(db, runnableStatement(m!, 'down', 'embedded')));
    await t.client.query('ROLLBACK');
    await t.client.query('BEGIN');
    await expect(t.client.query(renderStatement(db, runnableStatement(m!, 'up', 'postgres')))).rejects.toMatchObject({ code: '25001' });
    await t.client.query('ROLLBACK');
  });
});
});
