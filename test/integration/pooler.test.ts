// Issue 10 §3: behind a transaction pooler (a real pgbouncer, pool_mode = transaction, started by
// the test on a free port in front of the test database) every command that relies on a session is
// refused with exit 4, names the pooler and the direct port, writes nothing and strands no lock;
// with no other client active (the pooler then hands every statement the same server connection)
// and with other clients active. A session-mode pooler is a session, and works.
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ErrorDocumentSchema, MigrateResultSchema } from '../../src/index.js';
import { runCli } from '../helpers/cli.js';
import { createTestSchema, databaseUrl, seedIncident, type TestSchema } from '../helpers/pg.js';
import { startPgBouncer, type PgBouncer } from '../helpers/pgbouncer.js';
import { checksumExcept } from '../helpers/repair.js';

/** Advisory locks of digest-doctor's keys (migrate and each repair) on this schema, held by anyone. */
async function toolLocks(c: pg.Client, schema: string): Promise<number> {
  const { rows } = await c.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_locks l
     WHERE l.locktype = 'advisory' AND l.objsubid = 2 AND l.objid = hashtext($1)::oid
       AND l.classid = ANY (ARRAY[hashtext('digest-doctor:migrate'), hashtext('digest-doctor:repair:fix-duplicates'),
                                  hashtext('digest-doctor:repair:mark-stale'), hashtext('digest-doctor:repair:undo')]::oid[])`,
    [schema],
  );
  return rows[0]!.n;
}

async function stateSchemaExists(c: pg.Client, name: string): Promise<boolean> {
  return (await c.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [name])).rowCount === 1;
}

/** Other clients of the pooler: one holding a transaction open, one running short statements in a loop. */
async function busyClients(url: string): Promise<() => Promise<void>> {
  const holder = new pg.Client({ connectionString: url });
  const looper = new pg.Client({ connectionString: url });
  for (const c of [holder, looper]) {
    c.on('error', () => undefined);
    await c.connect();
  }
  await holder.query('BEGIN');
  await holder.query('SELECT 1');
  let running = true;
  const loop = (async () => {
    // bounded: stops when the test does, or after 10 minutes at most
    const until = Date.now() + 600_000;
    while (running && Date.now() < until) await looper.query('SELECT pg_sleep(0.002)').catch(() => undefined);
  })();
  return async () => {
    running = false;
    await loop;
    await holder.query('ROLLBACK').catch(() => undefined);
    await holder.end().catch(() => undefined);
    await looper.end().catch(() => undefined);
  };
}

const POOLER_LINE = /transaction pooler/;
const DIRECT_PORT = /port 5432/;

describe.each(['no other client active', 'other clients active'] as const)('behind pgbouncer pool_mode = transaction, %s', (situation) => {
  let bouncer: PgBouncer;
  let t: TestSchema;
  let stopOthers: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    bouncer = await startPgBouncer({ target: databaseUrl(), poolMode: 'transaction' });
  });
  afterAll(async () => {
    await bouncer?.stop();
  });
  beforeEach(async () => {
    t = await createTestSchema();
    await seedIncident(t);
    if (situation === 'other clients active') stopOthers = await busyClients(bouncer.url());
  });
  afterEach(async () => {
    await stopOthers?.();
    stopOthers = undefined;
    await t.cleanup();
  });

  const viaBouncer = () => ['--database-url', bouncer.url(), '--schema', t.schema, '--state-schema', t.stateSchema];

  it('migrate --apply is refused (exit 4) naming the pooler and the direct port; no lock is stranded, so a direct --down --apply is not busy', async () => {
    const res = await runCli([...viaBouncer(), '--json', 'migrate', '--apply', '--lock-wait', '0']);
    expect(res.code, res.stderr + res.stdout).toBe(4);
    const doc = MigrateResultSchema.parse(JSON.parse(res.stdout));
    expect(doc.outcome).toBe('refused');
    expect(doc.checks.find((c) => c.check === 'session')!.verdict).toBe('fail');
    expect(doc.message).toMatch(POOLER_LINE);
    expect(doc.message).toMatch(DIRECT_PORT);
    expect(await toolLocks(t.client, t.schema)).toBe(0);
    expect(await stateSchemaExists(t.client, t.stateSchema)).toBe(false);
    const down = await runCli([...t.cliArgs, 'migrate', '--down', '--apply', '--lock-wait', '0']);
    expect(down.code, down.stderr + down.stdout).toBe(0);
    expect(down.stdout).not.toMatch(/busy/);
  });

  it('the migrate dry run shows the failed session check (exit 1)', async () => {
    const res = await runCli([...viaBouncer(), '--json', 'migrate']);
    expect(res.code, res.stderr).toBe(1);
    const doc = MigrateResultSchema.parse(JSON.parse(res.stdout));
    const session = doc.checks.find((c) => c.check === 'session')!;
    expect(session.verdict).toBe('fail');
    expect(session.fix).toMatch(DIRECT_PORT);
  });

  it('fix-duplicates, mark-stale and undo --apply are each refused (exit 4) before writing anything, and strand no lock', async () => {
    // a run to undo, made directly
    const fixed = await runCli([...t.cliArgs, '--json', 'fix-duplicates', '--apply']);
    expect(fixed.code, fixed.stderr).toBe(0);
    const runId = JSON.parse(fixed.stdout).applied.runId as string;
    const table = await checksumExcept(t.client, t.schema, 'false');
    const audit = async () => (await t.client.query(`SELECT (SELECT count(*) FROM ${t.stateSchema}.runs)::int AS runs, (SELECT count(*) FROM ${t.stateSchema}.audit_batches)::int AS audit`)).rows[0];
    const before = await audit();
    await t.client.query(`UPDATE ${t.schema}.digest_history SET status = 'pending' WHERE id = 'a1111111-1111-4111-8111-111111111111'`);
    const table2 = await checksumExcept(t.client, t.schema, 'false');
    expect(table2).not.toBe(table);
    // mark-stale has no digest stream for its live check here: --include-live, so the refusal is the pooler's
    for (const args of [['fix-duplicates', '--apply'], ['mark-stale', '--older-than', '1d', '--apply', '--include-live'], ['undo', runId, '--apply']]) {
      const res = await runCli([...viaBouncer(), '--json', ...args, '--lock-wait', '0']);
      expect(res.code, `${args[0]}: ${res.stderr}`).toBe(4);
      const err = ErrorDocumentSchema.parse(JSON.parse(res.stdout));
      expect(err.error.code).toBe('REFUSED');
      expect(err.error.message).toMatch(POOLER_LINE);
      expect(err.error.message).toMatch(DIRECT_PORT);
      expect(res.stderr.trim().split('\n')).toHaveLength(1);
      expect(await checksumExcept(t.client, t.schema, 'false')).toBe(table2);
      expect(await audit()).toEqual(before);
      expect(await toolLocks(t.client, t.schema)).toBe(0);
    }
  });
});

describe('behind pgbouncer pool_mode = session (one server connection per client: a session)', () => {
  let bouncer: PgBouncer;
  let t: TestSchema;
  beforeAll(async () => {
    bouncer = await startPgBouncer({ target: databaseUrl(), poolMode: 'session' });
  });
  afterAll(async () => {
    await bouncer?.stop();
  });
  beforeEach(async () => {
    t = await createTestSchema();
    await seedIncident(t);
  });
  afterEach(async () => {
    await t.cleanup();
  });

  it('fix-duplicates --apply and migrate --apply run, and leave no lock', async () => {
    const via = ['--database-url', bouncer.url(), '--schema', t.schema, '--state-schema', t.stateSchema];
    const fixed = await runCli([...via, 'fix-duplicates', '--apply']);
    expect(fixed.code, fixed.stderr).toBe(0);
    const built = await runCli([...via, 'migrate', '--apply']);
    expect(built.code, built.stderr + built.stdout).toBe(0);
    expect((await t.client.query(`SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)`, [`${t.schema}.ux_digest_history_user_date`])).rows).toEqual([{ indisvalid: true }]);
    expect(await toolLocks(t.client, t.schema)).toBe(0);
  });
});
