// SIGKILL in the middle of an applied repair: the table and the audit still agree, no batch is half
// applied, the run shows as interrupted, and a rerun converges.
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
    const { runId } = await killMidRun(['mark-stale', '--older-than', '1d', '--apply', '--batch-size', '7'], 30);
    await auditAgrees(runId);
    expect((await t.client.query(`SELECT count(*)::int AS n FROM ${t.schema}.digest_history WHERE status = 'pending'`)).rows[0].n).toBeGreaterThan(0);
    const rerun = await runCli([...t.cliArgs, '--json', 'mark-stale', '--older-than', '1d', '--apply']);
    expect(rerun.code).toBe(0);
    const doc = MarkStaleResultSchema.parse(JSON.parse(rerun.stdout));
    expect(doc.applied!.status).toBe('done');
    const left = await t.client.query(`SELECT count(*)::int AS n FROM ${t.schema}.digest_history WHERE status <> 'failed'`);
    expect(left.rows[0].n).toBe(0);
    expect((await t.client.query(`SELECT count(*)::int AS n FROM ${t.stateSchema}.audit`)).rows[0].n).toBe(12000);
  });
});
