// Issue 12 §8: on a terminal an applying command shows what it will change and where, and asks
// y/N (--yes skips it; without a terminal it never asks), tested on a pseudo-terminal (util-linux
// `script`). And `migrate status` says `building` (exit 4) while an index build is held up.
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { createTestSchema, INCIDENT, insertRows, seedIncident, type TestSchema } from '../helpers/pg.js';
import { runOnPty } from '../helpers/pty.js';
import { checksumExcept } from '../helpers/repair.js';
import { dropRoles, readmeSqlBlock, renderReadmeSql, uniqueRole, urlAs } from '../helpers/roles.js';

const PASSWORD = 'Pty-S3cret-9';
let t: TestSchema;
let withPassword: string;
let args: string[];

beforeEach(async () => {
  t = await createTestSchema();
  // trust authentication ignores the password; it is there to prove it is never shown
  withPassword = urlAs(t.url, 'postgres', PASSWORD);
  args = ['--database-url', withPassword, '--schema', t.schema, '--state-schema', t.stateSchema];
});
afterEach(() => t.cleanup());

const database = () => new URL(t.url).pathname.slice(1);
const indexExists = async () => (await t.client.query(`SELECT 1 FROM pg_indexes WHERE schemaname = $1 AND indexname = 'ux_digest_history_user_date'`, [t.schema])).rowCount === 1;

describe('a person confirms a write on a terminal', () => {
  it('fix-duplicates --apply: shows the plan, the database and the schema; n writes nothing (exit 4), y applies', async () => {
    await seedIncident(t);
    const before = await checksumExcept(t.client, t.schema, 'false');
    const no = await runOnPty([...args, 'fix-duplicates', '--apply'], { answer: 'n' });
    expect(no.asked).toBe(true);
    expect(no.code, no.output).toBe(4);
    expect(no.output).toContain('fix-duplicates --apply will write');
    // the incident's pair: two pending rows of one (user, day), one to mark
    expect(no.output).toContain('mark 1 in-flight row of 1 (user, day) group');
    expect(no.output).toContain(`database: postgres@127.0.0.1:5432/${database()}, schema ${t.schema} (state schema ${t.stateSchema})`);
    expect(no.output).toContain('not confirmed: nothing was written');
    expect(no.output).not.toContain(PASSWORD);
    expect(await checksumExcept(t.client, t.schema, 'false')).toBe(before);
    expect((await t.client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [t.stateSchema])).rowCount).toBe(0);

    const yes = await runOnPty([...args, 'fix-duplicates', '--apply'], { answer: 'y' });
    expect(yes.asked).toBe(true);
    expect(yes.code, yes.output).toBe(0);
    const pending = await t.client.query(`SELECT count(*)::int AS n FROM ${t.schema}.digest_history WHERE user_id = $1 AND digest_date = $2 AND status = 'pending'`, [INCIDENT.user, INCIDENT.day]);
    expect(pending.rows[0].n).toBe(1);
  });

  it('--yes on a terminal does not ask; without a terminal nothing asks', async () => {
    await seedIncident(t);
    // no digest stream for mark-stale's live check here: --include-live marks without it on purpose
    const pty = await runOnPty([...args, 'mark-stale', '--older-than', '1d', '--user', INCIDENT.stuckUser, '--apply', '--include-live', '--yes']);
    expect(pty.asked).toBe(false);
    expect(pty.code, pty.output).toBe(0);
    const piped = await runCli([...args, 'fix-duplicates', '--apply']);
    expect(piped.code, piped.stderr).toBe(0);
    expect(piped.stdout + piped.stderr).not.toContain('[y/N]');
  });

  it('undo --apply and migrate --apply ask too; n leaves the rows and the index as they were', async () => {
    await seedIncident(t);
    const stale = await runCli([...args, '--json', 'mark-stale', '--older-than', '1d', '--user', INCIDENT.stuckUser, '--apply', '--include-live']);
    const runId = JSON.parse(stale.stdout).applied.runId as string;
    const before = await checksumExcept(t.client, t.schema, 'false');
    const undo = await runOnPty([...args, 'undo', runId, '--apply'], { answer: 'n' });
    expect(undo.asked).toBe(true);
    expect(undo.code, undo.output).toBe(4);
    expect(undo.output).toContain(`put back 1 row changed by run ${runId} (mark-stale)`);
    expect(await checksumExcept(t.client, t.schema, 'false')).toBe(before);

    // migrate needs no duplicates: a fresh schema
    const fresh = await createTestSchema();
    try {
      const margs = ['--database-url', urlAs(fresh.url, 'postgres', PASSWORD), '--schema', fresh.schema, '--state-schema', fresh.stateSchema, 'migrate', '--apply'];
      const no = await runOnPty(margs, { answer: 'n' });
      expect(no.asked).toBe(true);
      expect(no.code, no.output).toBe(4);
      expect(no.output).toContain('0001 ux_digest_history_user_date');
      expect(no.output).not.toContain(PASSWORD);
      const exists = async () => (await fresh.client.query(`SELECT 1 FROM pg_indexes WHERE schemaname = $1 AND indexname = 'ux_digest_history_user_date'`, [fresh.schema])).rowCount === 1;
      expect(await exists()).toBe(false);
      const yes = await runOnPty(margs, { answer: 'yes' });
      expect(yes.code, yes.output).toBe(0);
      expect(await exists()).toBe(true);
    } finally {
      await fresh.cleanup();
    }
  });
});

describe('migrate status while the index is being built', () => {
  it('says building, exit 4, as the owner and as a read-only role; then applied, exit 0', async () => {
    const [rowId] = await insertRows(t, [{ userId: INCIDENT.user, digestDate: '2025-11-25', status: 'sent', createdAt: '2025-11-25T06:00:00Z' }]);
    const reader = uniqueRole('reader');
    const holder = new pg.Client({ connectionString: t.url });
    await holder.connect();
    try {
      await t.client.query(renderReadmeSql(readmeSqlBlock('read-only role'), { reader, repairer: 'unused', database: database(), schema: t.schema, state: t.stateSchema }));
      // A writer's open transaction: CREATE INDEX CONCURRENTLY waits for it before it builds.
      await holder.query('BEGIN');
      await holder.query(`UPDATE ${t.schema}.digest_history SET content = 'x' WHERE id = $1`, [rowId]);
      const build = runCli([...t.cliArgs, 'migrate', '--apply', '--lock-timeout', '60s'], { timeoutMs: 90_000 });
      let seen = false;
      for (let i = 0; i < 200 && !seen; i++) {
        const p = await t.client.query(`SELECT 1 FROM pg_stat_progress_create_index WHERE relid = to_regclass($1)`, [`${t.schema}.digest_history`]);
        seen = p.rowCount === 1;
        if (!seen) await new Promise((r) => setTimeout(r, 100));
      }
      expect(seen).toBe(true);
      const owner = await runCli([...t.cliArgs, '--json', 'migrate', 'status']);
      expect(owner.code, owner.stderr).toBe(4);
      const doc = JSON.parse(owner.stdout);
      expect(doc.building).toBe(true);
      expect(doc.migrations[0].state).toBe('building');
      const text = await runCli([...t.cliArgs, 'migrate', 'status']);
      expect(text.code).toBe(4);
      expect(text.stdout).toContain('building');
      // a role without pg_read_all_stats sees the build's row but not its relation; the ledger's
      // schema exists now (the --apply created it), so README's state-schema GRANTs too
      await t.client.query(renderReadmeSql(readmeSqlBlock('read-only role, state schema'), { reader, repairer: 'unused', database: database(), schema: t.schema, state: t.stateSchema }));
      const ro = await runCli(['--database-url', urlAs(t.url, reader), '--schema', t.schema, '--state-schema', t.stateSchema, 'migrate', 'status']);
      expect(ro.code, ro.stdout + ro.stderr).toBe(4);
      expect(ro.stdout).toContain('building');
      await holder.query('ROLLBACK');
      const built = await build;
      expect(built.code, built.stdout + built.stderr).toBe(0);
      expect(await indexExists()).toBe(true);
      expect((await runCli([...t.cliArgs, 'migrate', 'status'])).code).toBe(0);
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end();
      await dropRoles(t.client, [reader]);
    }
  });
});
