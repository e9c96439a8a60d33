// Issue 10 §5: a database that cannot be written is refused, not crashed on. On a hot standby (a
// cluster of the test's own, pg_basebackup -R from another) and on a database with
// default_transaction_read_only = on (created by the test on the main server), every applying
// command exits 4 with the reason before writing anything; dry runs still read; replay --apply only
// reads Postgres, so it runs.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorDocumentSchema, MigrateResultSchema } from '../../src/index.js';
import { loadSqlFile, renderSql } from '../../src/postgres/sql.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { ADMIN_DATABASE_URL, withDatabase } from '../helpers/env.js';
import { startPgCluster, type PgCluster } from '../helpers/pg-cluster.js';
import { createTestRedis } from '../helpers/redis.js';

const SCHEMA = 'svc';
const STATE = 'svc_dd';

/** The service's tables and the incident in schema svc of `url`; then a fix-duplicates run to undo later. Returns its run id. */
async function seed(url: string): Promise<string> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(`CREATE SCHEMA ${SCHEMA}`);
    const ids = { schema: SCHEMA, state: STATE };
    await c.query(renderSql(loadSqlFile('fixtures/service_schema.sql'), ids));
    await c.query(renderSql(loadSqlFile('fixtures/incident.sql'), ids));
  } finally {
    await c.end();
  }
  const fixed = await runCli(['--database-url', url, '--schema', SCHEMA, '--state-schema', STATE, '--json', 'fix-duplicates', '--apply']);
  expect(fixed.code, fixed.stderr).toBe(0);
  // one duplicate left for fix-duplicates to find again, so every repair has work to refuse
  const c2 = new pg.Client({ connectionString: url });
  await c2.connect();
  await c2.query(`UPDATE ${SCHEMA}.digest_history SET status = 'pending' WHERE id = 'a1111111-1111-4111-8111-111111111111'`);
  await c2.end();
  return JSON.parse(fixed.stdout).applied.runId as string;
}

/** Everything a write could change: the table's rows, the runs and audit, the ledger's existence, indexes. */
async function fingerprint(url: string): Promise<string> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ f: string }>(
      `SELECT concat_ws('|',
         (SELECT md5(string_agg(d::text, ',' ORDER BY d.id)) FROM ${SCHEMA}.digest_history d),
         (SELECT count(*) FROM ${STATE}.runs), (SELECT count(*) FROM ${STATE}.audit_batches),
         (SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class WHERE relnamespace IN ('${SCHEMA}'::regnamespace, '${STATE}'::regnamespace))) AS f`,
    );
    return rows[0]!.f;
  } finally {
    await c.end();
  }
}

const APPLYING = (runId: string): string[][] => [
  ['fix-duplicates', '--apply'],
  // no digest stream for mark-stale's live check here: --include-live, so what refuses is the read-only database
  ['mark-stale', '--older-than', '1d', '--apply', '--include-live'],
  ['undo', runId, '--apply'],
  ['migrate', '--apply'],
  ['migrate', '--down', '--apply'],
];

function expectRefused(res: CliResult, args: string[], reason: RegExp): void {
  expect(res.code, `${args.join(' ')}: ${res.stderr}`).toBe(4);
  const doc = JSON.parse(res.stdout);
  const message: string = args[0] === 'migrate' ? MigrateResultSchema.parse(doc).message : ErrorDocumentSchema.parse(doc).error.message;
  expect(message).toMatch(reason);
  expect(message).toMatch(/^refused/);
  expect(res.stderr).not.toMatch(/internal error|cannot execute/);
}

describe('a database with default_transaction_read_only = on', () => {
  const name = `dd_ro_${process.pid}_${randomBytes(3).toString('hex')}`;
  const url = withDatabase(ADMIN_DATABASE_URL, name);
  let runId: string;
  const args = () => ['--database-url', url, '--schema', SCHEMA, '--state-schema', STATE, '--json'];
  beforeAll(async () => {
    const admin = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    runId = await seed(url);
    await admin.query(`ALTER DATABASE ${name} SET default_transaction_read_only = on`);
    await admin.end();
  });
  afterAll(async () => {
    const admin = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  });

  it('every applying command exits 4 naming the setting, and writes nothing', async () => {
    const before = await fingerprint(url);
    for (const cmd of APPLYING(runId)) {
      const res = await runCli([...args(), ...cmd, ...(cmd[0] === 'migrate' ? ['--lock-wait', '0'] : [])]);
      expectRefused(res, cmd, /read-only: default_transaction_read_only is on/);
    }
    expect(await fingerprint(url)).toBe(before);
  });

  it('dry runs still read (fix-duplicates finds the duplicate: exit 1)', async () => {
    const res = await runCli([...args(), 'fix-duplicates']);
    expect(res.code, res.stderr).toBe(1);
    expect(JSON.parse(res.stdout).plan).toMatchObject({ groups: 1, rows: 1 });
  });

  it("undo's dry run reads the run's audit without touching the state schema (the row the run changed was changed since: skipped)", async () => {
    const res = await runCli([...args(), 'undo', runId]);
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout).plan).toEqual({ restore: [], skipped: [expect.objectContaining({ id: 'a1111111-1111-4111-8111-111111111111', reason: 'status-changed' })] });
  });

  it('replay --apply reads Postgres only, so it runs: the named row is published once', async () => {
    const redis = await createTestRedis();
    try {
      // the workers' group, as the worker creates it: replay publishes only where a group reads
      await redis.client.xgroup('CREATE', redis.key('stream:digests:generate'), 'digest-workers', '0', 'MKSTREAM');
      // the stuck row (pending for days, nothing else of its day): the incident's failed row has pending
      // rows beside it, which no replay may publish next to
      const res = await runCli([...args(), ...redis.cliArgs, 'replay', '--history-id', 'b3333333-3333-4333-8333-333333333333', '--apply']);
      expect(res.code, res.stderr).toBe(0);
      expect(await redis.client.xlen(redis.key('stream:digests:generate'))).toBe(1);
    } finally {
      await redis.cleanup();
    }
  });
});

describe('a hot standby (a cluster of the test\'s own, pg_basebackup -R)', () => {
  let primary: PgCluster | undefined;
  let standby: PgCluster | undefined;
  let runId: string;
  beforeAll(async () => {
    primary = await startPgCluster();
    runId = await seed(primary.url());
    standby = await startPgCluster({ standbyOf: primary });
  });
  afterAll(async () => {
    await standby?.stop();
    await primary?.stop();
  });

  it('every applying command exits 4 naming the standby and the fix, and writes nothing', async () => {
    const url = standby!.url();
    const before = await fingerprint(url);
    for (const cmd of APPLYING(runId)) {
      const res = await runCli(['--database-url', url, '--schema', SCHEMA, '--state-schema', STATE, '--json', ...cmd, ...(cmd[0] === 'migrate' ? ['--lock-wait', '0'] : [])]);
      expectRefused(res, cmd, /hot standby or replica \(pg_is_in_recovery\(\) is true\).*point --database-url at the primary/);
    }
    expect(await fingerprint(url)).toBe(before);
    expect(await fingerprint(primary!.url())).toBe(before);
  });
});
