// SIGKILL in the middle of an applied repair: the table and the audit still agree, no batch is half
// applied, the run shows as interrupted, and a rerun converges. Likewise replay --apply (each row's
// event published once, markers agree) and migrate --apply (no INVALID index after a rerun, the
// ledger agrees or is drift the next --apply records), killed several times at random points.
// Server only: the server's rollback of a dead client's session is what is under test.
import { spawn } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FixDuplicatesResultSchema } from '../../src/ops/fix-duplicates.js';
import { MarkStaleResultSchema } from '../../src/ops/mark-stale.js';
import { recentRuns } from '../../src/ops/runs.js';
import { BIN, runCli } from '../helpers/cli.js';
import { createTestSchema, type TestSchema } from '../helpers/pg.js';
import { inFlightPerGroup, openRepairDb, seedGroups } from '../helpers/repair.js';

let t: TestSchema;

beforeEach(async () => {
  t = await createTestSchema();
});
afterEach(async () => {
  await t.cleanup();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts the CLI, waits until its run has committed some batches, SIGKILLs it, waits for its session to end. */
async function killMidRun(args: string[], minRows: number): Promise<{ runId: string; signal: NodeJS.Signals | null }> {
  const child = spawn(process.execPath, [BIN, ...t.cliArgs, ...args], { env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  const closed = new Promise<NodeJS.Signals | null>((resolve) => child.on('close', (_code, signal) => resolve(signal)));
  let run: { id: string; rows_changed: number; backend_pid: number } | undefined;
  while (!run || run.rows_changed < minRows) {
    await sleep(10);
    run = (await t.client.query(`SELECT id::text, rows_changed, backend_pid FROM ${t.stateSchema}.runs`).catch(() => ({ rows: [] }))).rows[0];
    if (child.exitCode !== null) throw new Error(`the repair finished before it could be killed (${run?.rows_changed} rows): make the table larger`);
  }
  child.kill('SIGKILL');
  const signal = await closed;
  // The server notices the dead client and rolls its open batch back; wait for that session to go.
  while ((await t.client.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [run.backend_pid])).rowCount) await sleep(10);
  return { runId: run.id, signal };
}

async function auditAgrees(runId: string): Promise<void> {
  const q = async (sql: string) => (await t.client.query(sql, [runId])).rows[0];
  // Every failed row has exactly one audit row of this run, and every audit row is a failed row.
  expect(await q(`SELECT count(*)::int AS n FROM ${t.schema}.digest_history d WHERE d.status = 'failed' AND (SELECT count(*) FROM ${t.stateSchema}.audit a WHERE a.row_id = d.id AND a.run_id = $1) <> 1`)).toEqual({ n: 0 });
  expect(await q(`SELECT count(*)::int AS n FROM ${t.stateSchema}.audit a JOIN ${t.schema}.digest_history d ON d.id = a.row_id WHERE a.run_id = $1 AND (d.status <> 'failed' OR a.before->>'status' <> 'pending')`)).toEqual({ n: 0 });
  const { changed, audited, failed } = await q(
    `SELECT (SELECT rows_changed FROM ${t.stateSchema}.runs WHERE id = $1) AS changed,
            (SELECT count(*)::int FROM ${t.stateSchema}.audit WHERE run_id = $1) AS audited,
            (SELECT count(*)::int FROM ${t.schema}.digest_history WHERE status = 'failed') AS failed`,
  );
  expect(changed).toBe(audited);
  expect(failed).toBe(audited);
}

describe('SIGKILL during --apply', () => {
  it('fix-duplicates: table and audit agree, no group half-done, the rerun converges', async () => {
    await seedGroups(t, { tag: 'k', groups: 4000, perGroup: 3, day: '2025-11-25', base: '2025-11-25T08:00:00Z' });
    const { runId, signal } = await killMidRun(['fix-duplicates', '--apply', '--batch-size', '9'], 30);
    expect(signal).toBe('SIGKILL');
    await auditAgrees(runId);
    // A batch holds whole groups: each is either untouched (3 in flight) or done (1), never 0 or 2.
    const counts = [...(await inFlightPerGroup(t.client, t.schema)).values()];
    expect(counts.every((n) => n === 1 || n === 3)).toBe(true);
    expect(counts.filter((n) => n === 3).length).toBeGreaterThan(0);

    const db = await openRepairDb(t);
    try {
      expect((await recentRuns(db, { limit: 5 })).runs[0]).toMatchObject({ id: runId, status: 'interrupted' });
    } finally {
      await db.close();
    }
    const rerun = await runCli([...t.cliArgs, '--json', 'fix-duplicates', '--apply', '--batch-size', '500']);
    expect(rerun.code).toBe(0);
    const doc = FixDuplicatesResultSchema.parse(JSON.parse(rerun.stdout));
    expect(doc.applied!.rowsChanged).toBe(8000 - (await t.client.query(`SELECT count(*)::int AS n FROM ${t.stateSchema}.audit WHERE run_id = $1`, [runId])).rows[0].n);
    expect([...(await inFlightPerGroup(t.client, t.schema)).values()].every((n) => n === 1)).toBe(true);
    const third = await runCli([...t.cliArgs, 'fix-duplicates', '--apply']);
    expect(third.code).toBe(0);
    expect(third.stdout).toMatch(/nothing to fix: no changes made/);
  });

  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    it(`${sig} stops after the batch in flight, exits 130, records the run as interrupted and prints run id, rows changed and the undo command (stdout a pipe)`, async () => {
      await seedGroups(t, { tag: 'i', groups: 4000, perGroup: 3, day: '2025-11-25', base: '2025-11-25T08:00:00Z' });
      const child = spawn(process.execPath, [BIN, ...t.cliArgs, 'fix-duplicates', '--apply', '--batch-size', '8'], { env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      child.stdout.on('data', (d) => (stdout += d));
      const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      let run: { id: string; rows_changed: number } | undefined;
      while (!run || run.rows_changed < 30) {
        await sleep(10);
        run = (await t.client.query(`SELECT id::text, rows_changed FROM ${t.stateSchema}.runs`).catch(() => ({ rows: [] }))).rows[0];
        if (child.exitCode !== null) throw new Error('the repair finished before it could be interrupted: make the table larger');
      }
      child.kill(sig);
      expect(await closed).toBe(130);
      const recorded = await t.client.query(`SELECT status, finished_at IS NOT NULL AS finished, rows_changed FROM ${t.stateSchema}.runs WHERE id = $1`, [run.id]);
      expect(recorded.rows[0]).toMatchObject({ status: 'interrupted', finished: true });
      const text = stdout.replace(/ \\\n\s*/g, ' ');
      expect(text).toContain(`interrupted: run ${run.id} changed ${recorded.rows[0].rows_changed} rows`);
      // the undo command as printed targets this schema
      const undo = /undo with: (digest-doctor .*)$/m.exec(text)?.[1];
      expect(undo).toBe(`digest-doctor --database-url ${t.url} --schema ${t.schema} --state-schema ${t.stateSchema} undo ${run.id}`);
      await auditAgrees(run.id);
      expect([...(await inFlightPerGroup(t.client, t.schema)).values()].every((n) => n === 1 || n === 3)).toBe(true);
    });
  }

  it('mark-stale: table and audit agree and the rerun converges', async () => {
    await seedGroups(t, { tag: 's', groups: 6000, perGroup: 2, day: '2025-11-20', base: '2025-11-20T08:00:00Z' });
    // no digest stream for the live check here: marked without it on purpose (the test is about the kill)
    const { runId } = await killMidRun(['mark-stale', '--older-than', '1d', '--apply', '--include-live', '--batch-size', '7'], 30);
    await auditAgrees(runId);
    expect((await t.client.query(`SELECT count(*)::int AS n FROM ${t.schema}.digest_history WHERE status = 'pending'`)).rows[0].n).toBeGreaterThan(0);
    const rerun = await runCli([...t.cliArgs, '--json', 'mark-stale', '--older-than', '1d', '--apply', '--include-live']);
    expect(rerun.code).toBe(0);
    const doc = MarkStaleResultSchema.parse(JSON.parse(rerun.stdout));
    expect(doc.applied!.status).toBe('done');
    const left = await t.client.query(`SELECT count(*)::int AS n FROM ${t.schema}.digest_history WHERE status <> 'failed'`);
    expect(left.rows[0].n).toBe(0);
    expect((await t.client.query(`SELECT count(*)::int AS n FROM ${t.stateSchema}.audit`)).rows[0].n).toBe(12000);
  });
});

// Replay and migrate under SIGKILL at random points, several times in a row (bounded), then reruns.
// The kill point is random within the run: after the first sign of work (an entry in the stream, the
// build's session on the server), a random 0-`spread` ms more. The first round kills at that first
// sign itself (no delay): the run is then in the middle of its work for certain (the build statement is
// running, the publisher paced), so at least one kill lands mid-run however fast the machine is; the
// later rounds may or may not outlive the run.
describe('SIGKILL during replay --apply and migrate --apply, at random points', () => {
  const KILLS = 4;

  /** Spawns the CLI, waits for `started()` (bounded), then a random delay of 0-`spread` ms (none when `spread` is 0), then SIGKILLs it if still running. */
  async function killAtRandom(args: string[], started: () => Promise<boolean>, spread: number): Promise<'killed' | 'finished'> {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
    const deadline = Date.now() + 60_000;
    while (child.exitCode === null && !(await started()) && Date.now() < deadline) await sleep(5);
    if (spread > 0) await sleep(Math.floor(Math.random() * spread));
    const running = child.exitCode === null && child.signalCode === null;
    child.kill('SIGKILL');
    await closed;
    return running ? 'killed' : 'finished';
  }

  it('replay: after kills and reruns, every row is published exactly once and every marker points at its entry', async () => {
    const { createTestRedis } = await import('../helpers/redis.js');
    const { DIGEST_STREAM } = await import('../../src/core/contract.js');
    const r = await createTestRedis();
    try {
      const N = 3000;
      const day = '2025-11-25';
      await seedGroups(t, { tag: 'rp', groups: N, perGroup: 1, day, base: '2025-11-25T08:00:00Z' });
      await t.client.query(`UPDATE ${t.schema}.digest_history SET status = 'failed'`);
      const ids = new Set((await t.client.query(`SELECT id::text FROM ${t.schema}.digest_history`)).rows.map((x) => x.id as string));
      const stream = r.key(DIGEST_STREAM);
      // the workers' group, as the worker creates it: replay publishes only where a group reads
      await r.client.xgroup('CREATE', stream, 'digest-workers', '0', 'MKSTREAM');
      // paced to 800 events/s: a run takes about 4 s, so kills land mid-run
      const args = [...t.cliArgs, ...r.cliArgs, 'replay', '--failed', '--date', day, '--apply', '--rate', '800'];

      /** The stream's entries by history_id, and every replay marker: the invariants hold after any kill. */
      const agree = async (): Promise<number> => {
        const entries = await r.client.xrange(stream, '-', '+');
        const byHistory = new Map<string, string[]>();
        for (const [id, fields] of entries) {
          const h = JSON.parse(fields[fields.indexOf('data') + 1]!).history_id as string;
          byHistory.set(h, [...(byHistory.get(h) ?? []), id]);
        }
        // never twice, and only rows of the table
        expect([...byHistory.values()].filter((v) => v.length > 1)).toEqual([]);
        expect([...byHistory.keys()].filter((h) => !ids.has(h))).toEqual([]);
        // each published event has its marker, holding its entry's id; no marker without its entry
        const markers = new Map<string, string>();
        let cursor = '0';
        for (let i = 0; i < 10_000; i++) {
          const [next, keys] = await r.client.scan(cursor, 'MATCH', `${r.prefix}*idem:replay:*`, 'COUNT', 1000);
          for (const k of keys) markers.set(k.slice(k.lastIndexOf(':') + 1), (await r.client.get(k))!);
          cursor = next;
          if (cursor === '0') break;
        }
        expect(markers.size).toBe(byHistory.size);
        for (const [h, [entry]] of byHistory) expect(markers.get(h), h).toBe(entry);
        return byHistory.size;
      };

      const outcomes: string[] = [];
      for (let k = 0; k < KILLS; k++) {
        // this run has started publishing once the stream grows past what earlier runs left
        const before = await r.client.xlen(stream);
        outcomes.push(await killAtRandom(args, async () => (await r.client.xlen(stream)) > before, k === 0 ? 0 : 1000));
        const n = await agree();
        if (process.env.DD_KILL_TRACE) console.error(`replay round ${k}: ${outcomes[k]}, ${n} published`);
      }
      expect(outcomes[0]).toBe('killed');
      // reruns converge: one run finishes it, the next adds nothing
      const rerun = await runCli([...args.slice(0, -2), '--json']);
      expect(rerun.code, rerun.stderr).toBe(0);
      expect(await agree()).toBe(N);
      const again = await runCli([...args.slice(0, -2), '--json']);
      expect(again.code).toBe(0);
      expect(JSON.parse(again.stdout).counts.added).toBe(0);
      expect(await r.client.xlen(stream)).toBe(N);
    } finally {
      await r.cleanup();
    }
  });

  it('migrate: after kills, no INVALID index is left by a rerun, the ledger agrees or is drift the next --apply records', async () => {
    const { MigrateStatusSchema, UNIQUE_INDEX_NAME } = await import('../../src/index.js');
    // enough rows for the build to take a while: one row per user and day, no duplicates
    await seedGroups(t, { tag: 'mg', groups: 60_000, perGroup: 1, day: '2025-11-25', base: '2025-11-25T08:00:00Z' });
    const index = async () =>
      (await t.client.query(`SELECT i.indisvalid AS valid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2`, [t.schema, UNIQUE_INDEX_NAME])).rows[0] as { valid: boolean } | undefined;
    const migrateSessions = async () => (await t.client.query(`SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'digest-doctor migrate%' AND datname = current_database()`)).rows.map((x) => x.pid as number);
    const started = async () => (await t.client.query(`SELECT 1 FROM pg_stat_activity WHERE application_name LIKE 'digest-doctor migrate%' AND state = 'active' AND query ILIKE '%CREATE UNIQUE INDEX%'`)).rowCount! > 0;
    const outcomes: string[] = [];
    for (let k = 0; k < KILLS; k++) {
      // between rounds the index goes again, so every round has a build to interrupt
      if (k > 0) await t.client.query(`DROP INDEX IF EXISTS ${t.schema}.${UNIQUE_INDEX_NAME}`);
      outcomes.push(await killAtRandom([...t.cliArgs, 'migrate', '--apply'], started, k === 0 ? 0 : 400));
      // the server goes on with (or abandons) the dead client's build: wait for its sessions to end (bounded)
      for (let i = 0; i < 3000 && (await migrateSessions()).length; i++) await sleep(10);
      const status = await runCli([...t.cliArgs, '--json', 'migrate', 'status']);
      const doc = MigrateStatusSchema.parse(JSON.parse(status.stdout));
      // what status reports is what the catalog shows: applied only with a valid index; otherwise drift or pending
      const ix = await index();
      if (doc.drift === false && doc.migrations[0]!.state === 'applied') expect(ix?.valid).toBe(true);
      expect([0, 1]).toContain(status.code);
      if (process.env.DD_KILL_TRACE) console.error(`round ${k}: ${outcomes[k]}, index ${JSON.stringify(ix)}, status exit ${status.code}, drift ${doc.drift}, state ${doc.migrations[0]?.state}`);
    }
    expect(outcomes[0]).toBe('killed');
    // the rerun: exit 0, a valid index, and a ledger that agrees (no drift)
    const rerun = await runCli([...t.cliArgs, '--json', 'migrate', '--apply']);
    expect(rerun.code, rerun.stdout + rerun.stderr).toBe(0);
    expect(await index()).toEqual({ valid: true });
    const status = await runCli([...t.cliArgs, '--json', 'migrate', 'status']);
    expect(status.code).toBe(0);
    expect(MigrateStatusSchema.parse(JSON.parse(status.stdout))).toMatchObject({ drift: false, migrations: [{ state: 'applied' }] });
    const again = await runCli([...t.cliArgs, 'migrate', '--apply']);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/nothing to do: already applied/);
  });
});
