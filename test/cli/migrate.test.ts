// migrate through the built binary: exit codes, and --json parsed by the exported schemas.
import { ENGINES } from '../helpers/pg.js';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorDocumentSchema, MigrateResultSchema, MigrateStatusSchema, UNIQUE_INDEX_NAME } from '../../src/index.js';
import { BIN, runCli } from '../helpers/cli.js';
import { TENANT, createTestSchema, ensureUser, insertRows, seedIncident, type TestSchema } from '../helpers/pg.js';

let t: TestSchema;
const others: pg.Client[] = [];


const cli = (...args: string[]) => runCli([...t.cliArgs, ...args]);
const json = (...args: string[]) => runCli([...t.cliArgs, '--json', ...args]);

async function indexExists(): Promise<boolean> {
  const r = await t.client.query(`SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2`, [t.schema, UNIQUE_INDEX_NAME]);
  return r.rowCount === 1;
}

async function client(): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: t.url });
  c.on('error', () => undefined);
  await c.connect();
  others.push(c);
  return c;
}

async function cleanRows(): Promise<void> {
  const user = randomUUID();
  await insertRows(t, [
    { userId: user, digestDate: '2025-11-25', status: 'pending', createdAt: '2025-11-25T10:00:00Z' },
    { userId: user, digestDate: '2025-11-25', status: 'sent', createdAt: '2025-11-25T09:00:00Z' },
  ]);
}

describe.each(ENGINES)('migrate CLI (%s)', (engine) => { // the whole file, on each engine (not reindented)
// another session holding the lock or a blocking transaction, pg_stat_progress: the server only (test/helpers/engine.ts)
const serverIt = (engine === 'server' ? it : () => undefined) as typeof it;
beforeEach(async () => {
  t = await createTestSchema({ engine });
});
afterEach(async () => {
  for (const c of others.splice(0)) await c.end().catch(() => undefined);
  await t.cleanup();
});
describe('digest-doctor migrate (built binary)', () => {
  it('dry run, --apply, a second --apply, status: exit 0 each, documents parse', async () => {
    await cleanRows();
    const dry = await json('migrate');
    expect(dry.code).toBe(0);
    const plan = MigrateResultSchema.parse(JSON.parse(dry.stdout));
    expect(plan).toMatchObject({ mode: 'plan', outcome: 'planned', ok: true });
    expect(await indexExists()).toBe(false);

    const applied = await json('migrate', '--apply');
    expect(applied.code).toBe(0);
    const doc = MigrateResultSchema.parse(JSON.parse(applied.stdout));
    expect(doc).toMatchObject({ outcome: 'applied', migrations: [{ verification: { arbiterProven: true, valid: true } }] });

    const again = await cli('migrate', '--apply');
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/nothing to do: already applied \(no-op\)/);

    const status = await json('migrate', 'status');
    expect(status.code).toBe(0);
    expect(MigrateStatusSchema.parse(JSON.parse(status.stdout))).toMatchObject({ command: 'migrate status', drift: false, migrations: [{ state: 'applied' }] });
  });

  it('duplicates: dry run exits 1, --apply refuses with exit 4, lists the groups and names the fix', async () => {
    const seeded = await seedIncident(t);
    const dry = await cli('migrate');
    expect(dry.code).toBe(1);
    // the preflight is printed by the one findings renderer: the verdict line, then the fix on its own line
    expect(dry.stdout).toMatch(/\[FAIL\] duplicates: 1 \(user, day\) group holds more than one pending\/processing row \(2 rows\): the unique build would fail\n {7}fix: run digest-doctor .*fix-duplicates --apply, then migrate again\n/);
    const dryDoc = MigrateResultSchema.parse(JSON.parse((await json('migrate')).stdout));
    expect(dryDoc.schemaVersion).toBe(2);
    // the incident's one group: its two in-flight rows are the finding's items
    const dup = dryDoc.checks.find((c) => c.check === 'duplicates')!;
    expect(dup.verdict).toBe('fail');
    expect([...dup.items].sort()).toEqual([seeded.pendingOld, seeded.pendingNew].sort());
    const res = await json('migrate', '--apply');
    expect(res.code).toBe(4);
    const doc = MigrateResultSchema.parse(JSON.parse(res.stdout));
    expect(doc.outcome).toBe('refused');
    expect(doc.duplicates.groups[0]).toMatchObject({ rows: 2, digestDate: '2025-11-25' });
    expect(doc.message).toMatch(/digest-doctor .*--schema \S+ .*fix-duplicates --apply/);
    const human = await cli('migrate', '--apply');
    expect(human.code).toBe(4);
    expect(human.stdout).toContain('6af5e7d3-e736-46da-bfc1-42786f2ab1c0');
    expect(await indexExists()).toBe(false);
  });

  serverIt('busy: another session holds the migrate lock -> exit 4 naming it', async () => {
    await cleanRows();
    const holder = await client();
    const [{ pid }] = (await holder.query(`SELECT pg_backend_pid() AS pid, pg_advisory_lock(hashtext('digest-doctor:migrate'), hashtext($1::text))`, [t.schema])).rows;
    const res = await json('migrate', '--apply', '--lock-wait', '300ms');
    expect(res.code).toBe(4);
    const doc = MigrateResultSchema.parse(JSON.parse(res.stdout));
    expect(doc).toMatchObject({ outcome: 'busy', lockHolder: { pid } });
    expect(doc.message).toContain(`pid ${pid}`);
    expect(await indexExists()).toBe(false);
  });

  it('status: drift exits 1; --down --apply removes the index and the ledger says reverted', async () => {
    await cleanRows();
    expect((await cli('migrate', '--apply')).code).toBe(0);
    await t.client.query(`DROP INDEX ${t.schema}.${UNIQUE_INDEX_NAME}`);
    const drift = await cli('migrate', 'status');
    expect(drift.code).toBe(1);
    expect(drift.stdout).toMatch(/ledger says applied but index ux_digest_history_user_date is missing/);
    expect((await cli('migrate', '--apply')).code).toBe(0);

    const downPlan = await cli('migrate', '--down');
    expect(downPlan.code).toBe(0);
    expect(downPlan.stdout).toContain(engine === 'server' ? 'DROP INDEX CONCURRENTLY' : 'DROP INDEX');
    expect(await indexExists()).toBe(true);
    const down = await json('migrate', '--down', '--apply');
    expect(down.code).toBe(0);
    expect(MigrateResultSchema.parse(JSON.parse(down.stdout)).outcome).toBe('removed');
    expect(await indexExists()).toBe(false);
    const status = MigrateStatusSchema.parse(JSON.parse((await json('migrate', 'status')).stdout));
    expect(status.migrations[0]).toMatchObject({ state: 'pending', ledger: { status: 'reverted' } });
  });

  it('bad input exits 2 with one line and writes nothing', async () => {
    const res = await json('migrate', '--apply', '--lock-timeout', 'soon');
    expect(res.code).toBe(2);
    expect(ErrorDocumentSchema.parse(JSON.parse(res.stdout)).error.message).toMatch(/--lock-timeout "soon" is not a duration/);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(await indexExists()).toBe(false);
  });

  serverIt('Ctrl-C during the build cancels it on the server and removes the invalid index (exit 130)', async () => {
    await cleanRows();
    // an open writer transaction keeps the build waiting, so the interrupt lands mid-build
    const blocker = await client();
    const user = randomUUID();
    await ensureUser(t, user, TENANT);
    await blocker.query('BEGIN');
    await blocker.query(`INSERT INTO ${t.schema}.digest_history (id, user_id, digest_date, content, status) VALUES ($1, $2, '2025-01-01', '', 'sent')`, [randomUUID(), user]);
    const child = spawn(process.execPath, [BIN, ...t.cliArgs, 'migrate', '--apply', '--lock-timeout', '30s'], { env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    for (let i = 0; i < 400; i++) {
      const r = await t.client.query(`SELECT 1 FROM pg_stat_progress_create_index p JOIN pg_class c ON c.oid = p.relid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1`, [t.schema]);
      if (r.rowCount) break;
      await new Promise((res) => setTimeout(res, 50));
    }
    child.kill('SIGINT');
    // the cancelled build's index is dropped once the transaction it waits for ends
    for (let i = 0; i < 400; i++) {
      const r = await t.client.query(`SELECT count(*)::int AS n FROM pg_stat_progress_create_index p JOIN pg_class c ON c.oid = p.relid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1`, [t.schema]);
      if (r.rows[0].n === 0) break;
      await new Promise((res) => setTimeout(res, 50));
    }
    await blocker.query('ROLLBACK');
    expect(await exited).toBe(130);
    expect(stdout).toMatch(/cancelled on the server/);
    expect(await indexExists()).toBe(false);
  });
});
});
