import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fixDuplicates } from '../../src/ops/fix-duplicates.js';
import { markStale } from '../../src/ops/mark-stale.js';
import { recentRuns } from '../../src/ops/runs.js';
import { decideUndo } from '../../src/core/repair.js';
import { readUndoFacts, undoBatch, undoRun, type UndoFacts } from '../../src/ops/undo.js';
import { readRunAudit, startRun } from '../../src/postgres/audit.js';
import type { Db } from '../../src/postgres/db.js';
import { createTestSchema, ENGINES, INCIDENT, insertRows, seedIncident, type TestSchema } from '../helpers/pg.js';
import { NO_REDIS, batchDefaults, checksumExcept, inFlightPerGroup, openRepairDb, seedGroups, staleInput } from '../helpers/repair.js';

let t: TestSchema;
let db: Db;


// mark-stale runs to undo, without Redis: marked without the live check on purpose (includeLive, the override)
const stale = (apply: boolean) => markStale(db, NO_REDIS, staleInput({ apply, includeLive: true }));
/** Every audited row, reached where the plan found it. */
const itemsOf = (facts: UndoFacts) => facts.entries.map((entry) => ({ entry, tid: facts.current.get(entry.rowId)?.tid ?? null }));
const setStatus = (id: string, status: string) => t.client.query(`UPDATE ${t.schema}.digest_history SET status = $2 WHERE id = $1`, [id, status]);

// The audit as an earlier version kept it: a table with a row per changed row and whole jsonb images.
async function downgradeAudit(state: string): Promise<void> {
  await t.client.query(`
    CREATE TABLE ${state}.audit_v1 AS
      SELECT run_id, command, table_schema, row_id, before, after, db_user, client_addr, client_host, application_name, at FROM ${state}.audit;
    DROP VIEW ${state}.audit;
    DROP TABLE ${state}.audit_batches;
    ALTER TABLE ${state}.audit_v1 RENAME TO audit;
    ALTER TABLE ${state}.audit ADD PRIMARY KEY (run_id, row_id);
    DROP TABLE ${state}.state_migrations; -- an earlier release recorded no state versions`);
}

describe.each(ENGINES)('undo (%s)', (engine) => { // the whole file, on each engine (not reindented)
const serverIt = (engine === 'server' ? it : () => undefined) as typeof it;
beforeEach(async () => {
  t = await createTestSchema({ engine });
  db = await openRepairDb(t);
});
afterEach(async () => {
  await db.close();
  await t.cleanup();
});
describe('undo', () => {
  it('undoes a run audited by an earlier version: the dry run reads the old table as it is, --apply moves it into audit_batches first', async () => {
    const s = await seedIncident(t);
    await setStatus(s.pendingNew, 'sent');
    const runId = (await stale(true)).applied!.runId!;
    const before = (await t.client.query(`SELECT row_id::text, before, after FROM ${t.stateSchema}.audit ORDER BY row_id`)).rows;
    expect(before).toHaveLength(2);
    await downgradeAudit(t.stateSchema);
    // A new process (this version) meets the old layout.
    await db.close();
    db = await openRepairDb(t);
    const dry = await undoRun(db, { ...batchDefaults(), runId, apply: false });
    expect(dry.target.audited).toBe(2);
    expect(dry.plan.restore.map((r) => r.id).sort()).toEqual(before.map((r) => r.row_id));
    const kind = () => t.client.query(`SELECT c.relkind, to_regclass($2) IS NULL AS no_batches FROM pg_class c WHERE c.oid = to_regclass($1)`, [`${t.stateSchema}.audit`, `${t.stateSchema}.audit_batches`]);
    // The dry run wrote nothing: the old table is still a table, and no audit_batches exists.
    expect((await kind()).rows).toEqual([{ relkind: 'r', no_batches: true }]);
    // Read in the old layout, paged by (at, row id): one batch (one at), so in row id order.
    for (const pageSize of [1, 2, 5000]) {
      expect((await readRunAudit(db, runId, pageSize)).map((r) => [r.rowId, r.before, r.after])).toEqual(before.map((r) => [r.row_id, r.before, r.after]));
    }
    const undone = await undoRun(db, { ...batchDefaults(), runId, apply: true });
    expect(undone.applied!.rowsChanged).toBe(2);
    expect((await kind()).rows).toEqual([{ relkind: 'v', no_batches: false }]);
    // The old rows moved whole: the view gives them back, beside the undo's own two.
    expect((await t.client.query(`SELECT row_id::text, before, after FROM ${t.stateSchema}.audit WHERE run_id = $1 ORDER BY row_id`, [runId])).rows).toEqual(before);
  });

  it('undoes a run audited before state version 4 (no typed keys): the dry run reads the images as they are, --apply adds the keys and reaches the rows by id', async () => {
    const s = await seedIncident(t);
    await setStatus(s.pendingNew, 'sent');
    const original = await checksumExcept(t.client, t.schema, 'false');
    const runId = (await stale(true)).applied!.runId!;
    // The state schema as version 3 left it: audit_batches without the typed keys, version 4 not recorded.
    await t.client.query(`ALTER TABLE ${t.stateSchema}.audit_batches DROP CONSTRAINT audit_batches_keys_aligned,
                          DROP COLUMN tids, DROP COLUMN statuses_before, DROP COLUMN sent_ats_before, DROP COLUMN statuses_after;
                          DELETE FROM ${t.stateSchema}.state_migrations WHERE version = 4`);
    // The rows move (a new version each) so a stale ctid could not reach them anyway.
    await t.client.query(`UPDATE ${t.schema}.digest_history SET content = content WHERE id = ANY ($1)`, [[s.stuck, s.pendingOld]]);
    await db.close();
    db = await openRepairDb(t);
    const dry = await undoRun(db, { ...batchDefaults(), runId, apply: false });
    expect(dry.plan.restore.map((r) => [r.id, r.from, r.to]).sort()).toEqual([[s.pendingOld, 'failed', 'pending'], [s.stuck, 'failed', 'pending']].sort());
    const versions = () => t.client.query(`SELECT max(version)::int AS v FROM ${t.stateSchema}.state_migrations`);
    expect((await versions()).rows).toEqual([{ v: 3 }]);
    const undone = await undoRun(db, { ...batchDefaults(), runId, apply: true });
    expect(undone.applied).toMatchObject({ status: 'done', rowsChanged: 2, skipped: [] });
    expect(await checksumExcept(t.client, t.schema, 'false')).toBe(original);
    expect((await versions()).rows).toEqual([{ v: 4 }]);
    // The old batch keeps no keys; the undo's own batch has them.
    const keys = await t.client.query(`SELECT run_id::text, tids IS NOT NULL AS keyed FROM ${t.stateSchema}.audit_batches ORDER BY seq`);
    expect(keys.rows).toEqual([{ run_id: runId, keyed: false }, { run_id: undone.applied!.runId, keyed: true }]);
  });

  it('puts a mark-stale run back exactly (a dry run first), audited as a run of its own', async () => {
    const s = await seedIncident(t);
    // pendingNew is sent meanwhile so the day has no in-flight row left to collide with.
    await setStatus(s.pendingNew, 'sent');
    const original = await checksumExcept(t.client, t.schema, 'false');
    const run = await stale(true);
    expect(run.applied!.rowsChanged).toBe(2);
    const runId = run.applied!.runId!;
    // The audit keeps where the run left each row (its ctid after the UPDATE): both are there.
    const reached = `SELECT count(*)::int AS n FROM ${t.stateSchema}.audit_batches b CROSS JOIN LATERAL unnest(b.row_ids, b.tids) AS u(id, tid)
                     JOIN ${t.schema}.digest_history d ON d.ctid = u.tid AND d.id = u.id WHERE b.run_id = $1`;
    expect((await t.client.query(reached, [runId])).rows).toEqual([{ n: 2 }]);

    const dry = await undoRun(db, { ...batchDefaults(), runId, apply: false });
    expect(dry.target).toMatchObject({ runId, command: 'mark-stale', rowsChanged: 2, audited: 2, by: 'postgres' });
    expect(dry.plan.restore.map((x) => [x.id, x.from, x.to]).sort()).toEqual([
      [s.pendingOld, 'failed', 'pending'],
      [s.stuck, 'failed', 'pending'],
    ].sort());
    expect(dry.applied).toBeNull();

    const undone = await undoRun(db, { ...batchDefaults(), runId, apply: true });
    expect(undone.applied).toMatchObject({ status: 'done', rowsChanged: 2, skipped: [] });
    expect(await checksumExcept(t.client, t.schema, 'false')).toBe(original);

    const runs = await recentRuns(db, { limit: 10 });
    expect(runs.runs.map((r) => [r.command, r.status, r.rowsChanged, r.undoes])).toEqual([
      ['undo', 'done', 2, runId],
      ['mark-stale', 'done', 2, null],
    ]);
    const audit = await t.client.query(`SELECT count(*)::int AS n FROM ${t.stateSchema}.audit WHERE run_id = $1 AND command = 'undo'`, [undone.applied!.runId]);
    expect(audit.rows[0].n).toBe(2);

    // Undone twice: nothing left to put back.
    const again = await undoRun(db, { ...batchDefaults(), runId, apply: true });
    expect(again.applied).toMatchObject({ runId: null, status: 'nothing-to-do', rowsChanged: 0 });
    expect(again.plan.skipped.map((x) => x.reason)).toEqual(['status-changed', 'status-changed']);
    // Its batches ran and changed nothing: no run is kept for it.
    expect((await recentRuns(db, { limit: 10 })).runs.map((r) => r.command)).toEqual(['undo', 'mark-stale']);
    // And the undo can itself be undone.
    const redo = await undoRun(db, { ...batchDefaults(), runId: undone.applied!.runId!, apply: true });
    expect(redo.applied!.rowsChanged).toBe(2);
  });

  it('reads a run\'s audit whole batches at a time, in the order written, with the images the audit view gives', async () => {
    await seedGroups(t, { tag: 'p', groups: 7, perGroup: 1, day: '2025-11-01', base: '2025-11-01T08:00:00Z' });
    const run = await markStale(db, NO_REDIS, staleInput({ batchSize: 3, apply: true, includeLive: true }));
    expect(run.applied).toMatchObject({ rowsChanged: 7, batches: 3 });
    const view = (await t.client.query(`SELECT row_id::text AS "rowId", before, after FROM ${t.stateSchema}.audit WHERE run_id = $1 ORDER BY batch_seq, batch_ord`, [run.applied!.runId])).rows;
    expect(view.map((r) => r.rowId)).toEqual(run.plan.items.map((x) => x.id));
    // Pages of 1, 2, 4 and more rows: a page is whole batches, at least one.
    for (const pageSize of [1, 2, 4, 5000]) expect(await readRunAudit(db, run.applied!.runId!, pageSize)).toEqual(view);
  });

  it('skips rows whose status changed since the run', async () => {
    const s = await seedIncident(t);
    await setStatus(s.pendingNew, 'sent');
    const run = await stale(true);
    await setStatus(s.stuck, 'sent');
    const r = await undoRun(db, { ...batchDefaults(), runId: run.applied!.runId!, apply: true });
    expect(r.applied!.rowsChanged).toBe(1);
    expect(r.applied!.skipped).toEqual([{ id: s.stuck, reason: 'status-changed', detail: "status is now 'sent', the run set 'failed'" }]);
  });

  it('never recreates an in-flight duplicate: undoing fix-duplicates restores nothing while the kept row is in flight', async () => {
    await seedGroups(t, { tag: 'u', groups: 12, perGroup: 3, day: '2025-11-25', base: '2025-11-25T08:00:00Z' });
    const fixed = await fixDuplicates(db, { ...batchDefaults({ batchSize: 5 }), keep: 'newest', apply: true });
    expect(fixed.applied!.rowsChanged).toBe(24);
    // fix-duplicates' batches keep where they left each row too (ctid after the UPDATE), with the statuses.
    const keys = await t.client.query(`SELECT count(*)::int AS n, count(*) FILTER (WHERE u.before_status = 'pending' AND u.after_status = 'failed')::int AS statuses
                                       FROM ${t.stateSchema}.audit_batches b CROSS JOIN LATERAL unnest(b.row_ids, b.tids, b.statuses_before, b.statuses_after) AS u(id, tid, before_status, after_status)
                                       JOIN ${t.schema}.digest_history d ON d.ctid = u.tid AND d.id = u.id WHERE b.run_id = $1`, [fixed.applied!.runId]);
    expect(keys.rows).toEqual([{ n: 24, statuses: 24 }]);
    const after = await checksumExcept(t.client, t.schema, 'false');
    const r = await undoRun(db, { ...batchDefaults({ batchSize: 5 }), runId: fixed.applied!.runId!, apply: true });
    expect(r.applied).toMatchObject({ runId: null, rowsChanged: 0 });
    expect(r.plan.skipped).toHaveLength(24);
    expect(new Set(r.plan.skipped.map((x) => x.reason))).toEqual(new Set(['would-duplicate']));
    expect(await checksumExcept(t.client, t.schema, 'false')).toBe(after);
  });

  it('--apply reports what its batches decided, not the dry run\'s plan: a day that went in flight since puts nothing back', async () => {
    const s = await seedIncident(t);
    await setStatus(s.pendingNew, 'sent');
    const run = await stale(true);
    const runId = run.applied!.runId!;
    const dry = await undoRun(db, { ...batchDefaults(), runId, apply: false });
    expect(dry.plan.restore.map((x) => x.id).sort()).toEqual([s.stuck, s.pendingOld].sort());
    // Between the dry run and --apply the service takes the incident day's failed row back in flight.
    await setStatus(s.failed, 'pending');
    const r = await undoRun(db, { ...batchDefaults(), runId, apply: true });
    expect(r.plan.restore.map((x) => [x.id, x.from, x.to])).toEqual([[s.stuck, 'failed', 'pending']]);
    const duplicate = { id: s.pendingOld, reason: 'would-duplicate', detail: `row ${s.failed} of the same user and day is in flight` };
    expect(r.plan.skipped).toEqual([duplicate]);
    expect(r.applied).toMatchObject({ status: 'done', rowsChanged: 1, skipped: [duplicate] });
    expect((await inFlightPerGroup(t.client, t.schema)).get(`${INCIDENT.user}|${INCIDENT.day}`)).toBe(1);
  });

  it('the batch statement itself decides from the rows as it locks them: nothing goes back in flight beside a row that went in flight after the plan', async () => {
    const s = await seedIncident(t);
    const run = await stale(true);
    const facts = await readUndoFacts(db, run.applied!.runId!);
    expect(facts.entries.map((e) => e.rowId).sort()).toEqual([s.stuck, s.pendingOld, s.pendingNew].sort());
    // The plan, from the rows as they were: the stuck row and the newer of the incident day's two go back.
    expect(decideUndo(facts.entries, facts.current, facts.inFlight).restore.map((e) => e.rowId).sort()).toEqual([s.stuck, s.pendingNew].sort());
    // After the plan, the service takes the incident day's failed row back in flight.
    await setStatus(s.failed, 'pending');
    const undoId = randomUUID();
    await startRun(db, { id: undoId, command: 'undo', args: {} });
    const rows = await undoBatch(db, undoId, itemsOf(facts), null);
    // The stuck row's day has nothing else in flight: it goes back; the incident day's two stay
    // failed, each naming the row now in flight.
    expect(rows.map((r) => [r.id, r.verdict, r.other, r.changed]).sort()).toEqual(
      [
        [s.stuck, 'restore', null, true],
        [s.pendingOld, 'would-duplicate', s.failed, false],
        [s.pendingNew, 'would-duplicate', s.failed, false],
      ].sort(),
    );
    const counts = await inFlightPerGroup(t.client, t.schema);
    expect(counts.get(`${INCIDENT.user}|${INCIDENT.day}`)).toBe(1);
    const audit = await t.client.query(`SELECT row_id::text AS id, before->>'status' AS b, after->>'status' AS a FROM ${t.stateSchema}.audit WHERE run_id = $1`, [undoId]);
    expect(audit.rows).toEqual([{ id: s.stuck, b: 'failed', a: 'pending' }]);
  });

  it('the batch statement reaches a row changed since the plan by id, and decides from it as it is now', async () => {
    const s = await seedIncident(t);
    await setStatus(s.pendingNew, 'sent');
    const run = await stale(true);
    const facts = await readUndoFacts(db, run.applied!.runId!);
    // After the plan, both rows are updated (each gets a new ctid): the stuck one back to the status
    // the run set, the other to sent.
    await t.client.query(`UPDATE ${t.schema}.digest_history SET content = 'touched' WHERE id = $1`, [s.stuck]);
    await setStatus(s.pendingOld, 'sent');
    const undoId = randomUUID();
    await startRun(db, { id: undoId, command: 'undo', args: {} });
    const rows = await undoBatch(db, undoId, itemsOf(facts), null);
    expect(rows.map((r) => [r.id, r.verdict, r.status, r.changed]).sort()).toEqual(
      [
        [s.stuck, 'restore', 'failed', true],
        [s.pendingOld, 'status-changed', 'sent', false],
      ].sort(),
    );
    const now = await t.client.query(`SELECT status, content FROM ${t.schema}.digest_history WHERE id = $1`, [s.stuck]);
    expect(now.rows).toEqual([{ status: 'pending', content: 'touched' }]);
  });

  it('the batch statement and decideUndo restore the same row of a day whose candidates are inside one millisecond', async () => {
    // Three rows of one (user, day) in one millisecond, ids against their order in time: by the keep
    // rule (created_at to the microsecond, then id, descending) the newest is ...02 (.000300), then
    // ...03 and ...01 (both .000100; ...03 has the greater id). A millisecond clock with ties broken by
    // id would pick ...03.
    const user = randomUUID();
    const day = '2025-11-25';
    const id = (n: number) => `00000000-0000-4000-8000-00000000000${n}`;
    const at = (us: number) => `${day}T10:00:00.000${String(us).padStart(3, '0')}Z`;
    await insertRows(t, [
      { id: id(1), userId: user, digestDate: day, status: 'pending', createdAt: at(100) },
      { id: id(2), userId: user, digestDate: day, status: 'pending', createdAt: at(300) },
      { id: id(3), userId: user, digestDate: day, status: 'pending', createdAt: at(100) },
    ]);
    // mark-stale fails all three (no row of the day stays in flight), audited as one run.
    const run = await stale(true);
    expect(run.applied!.rowsChanged).toBe(3);
    const facts = await readUndoFacts(db, run.applied!.runId!);
    const core = decideUndo(facts.entries, facts.current, facts.inFlight);
    expect(core.restore.map((e) => e.rowId)).toEqual([id(2)]);
    const undoId = randomUUID();
    await startRun(db, { id: undoId, command: 'undo', args: {} });
    const rows = await undoBatch(db, undoId, itemsOf(facts), null);
    expect(rows.filter((r) => r.changed).map((r) => r.id)).toEqual(core.restore.map((e) => e.rowId));
    expect(rows.filter((r) => !r.changed).map((r) => [r.id, r.verdict, r.other]).sort()).toEqual(core.skipped.map((x) => [x.entry.rowId, x.reason, id(2)]).sort());
  });

  // a second session holding a row lock: the embedded engine has one backend, so this runs on the server only
  serverIt('a row another session holds leaves its whole day for the retry; the rest of the batch goes back', async () => {
    const s = await seedIncident(t);
    await setStatus(s.pendingNew, 'sent');
    const run = await stale(true);
    const facts = await readUndoFacts(db, run.applied!.runId!);
    expect(facts.entries.map((e) => e.rowId).sort()).toEqual([s.stuck, s.pendingOld].sort());
    const undoId = randomUUID();
    await startRun(db, { id: undoId, command: 'undo', args: {} });
    const holder = await t.client.query('BEGIN').then(() => t.client.query(`SELECT 1 FROM ${t.schema}.digest_history WHERE id = $1 FOR UPDATE`, [s.pendingOld]));
    expect(holder.rowCount).toBe(1);
    try {
      const rows = await undoBatch(db, undoId, itemsOf(facts), null);
      expect(rows.map((r) => [r.id, r.verdict, r.changed]).sort()).toEqual([[s.stuck, 'restore', true], [s.pendingOld, 'held', false]].sort());
    } finally {
      await t.client.query('ROLLBACK');
    }
  });

  it('once the kept row is done, puts back only the newest of the failed rows of each day', async () => {
    const s = await seedIncident(t);
    const other = await seedGroups(t, { tag: 'k', groups: 1, perGroup: 3, day: '2025-11-25', base: '2025-11-25T08:00:00Z' });
    const fixed = await fixDuplicates(db, { ...batchDefaults(), keep: 'newest', apply: true });
    expect(fixed.applied!.rowsChanged).toBe(3);
    // The kept rows are sent by the service.
    await t.client.query(`UPDATE ${t.schema}.digest_history SET status = 'sent' WHERE status = 'pending'`);
    const r = await undoRun(db, { ...batchDefaults({ batchSize: 1 }), runId: fixed.applied!.runId!, apply: true });
    // Incident: one failed duplicate, put back. Seeded group: two failed rows, only the newer goes back.
    expect(r.applied!.rowsChanged).toBe(2);
    expect(r.applied!.skipped.map((x) => x.reason)).toEqual(['would-duplicate']);
    expect((await t.client.query(`SELECT status FROM ${t.schema}.digest_history WHERE id = $1`, [s.pendingOld])).rows[0].status).toBe('pending');
    const counts = await inFlightPerGroup(t.client, t.schema);
    expect(counts.get(`${INCIDENT.user}|${INCIDENT.day}`)).toBe(1);
    expect(counts.get(`${other[0]}|2025-11-25`)).toBe(1);
  });

  it('puts back only statuses the live CHECK constraint allows', async () => {
    const s = await seedIncident(t);
    await setStatus(s.pendingNew, 'sent');
    const run = await stale(true);
    await t.client.query(`ALTER TABLE ${t.schema}.digest_history DROP CONSTRAINT chk_digest_status`);
    await t.client.query(`ALTER TABLE ${t.schema}.digest_history ADD CONSTRAINT chk_digest_status CHECK (status IN ('sent', 'failed'))`);
    const r = await undoRun(db, { ...batchDefaults(), runId: run.applied!.runId!, apply: true });
    expect(r.applied).toMatchObject({ runId: null, rowsChanged: 0 });
    expect(r.plan.skipped.map((x) => x.reason)).toEqual(['status-not-allowed', 'status-not-allowed']);
  });

  it('rejects an unknown run and a run of another schema as bad input', async () => {
    await expect(undoRun(db, { ...batchDefaults(), runId: '00000000-0000-4000-8000-000000000000', apply: false })).rejects.toMatchObject({ code: 'BAD_INPUT', exitCode: 2 });
    await seedIncident(t);
    const run = await stale(true);
    const elsewhere = await createTestSchema();
    try {
      await t.client.query(`UPDATE ${t.stateSchema}.runs SET table_schema = $1`, [elsewhere.schema]);
      await expect(undoRun(db, { ...batchDefaults(), runId: run.applied!.runId!, apply: false })).rejects.toThrow(/pass --schema/);
    } finally {
      await elsewhere.cleanup();
    }
  });
});
});
