import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import pg from 'pg';
import { fixDuplicates } from '../../src/ops/fix-duplicates.js';
import { DoctorError } from '../../src/errors.js';
import type { Db } from '../../src/postgres/db.js';
import { createTestSchema, ENGINES, INCIDENT, insertRows, seedIncident, type TestSchema } from '../helpers/pg.js';
import { batchDefaults, checksumExcept, inFlightPerGroup, openRepairDb, seedGroups } from '../helpers/repair.js';

let t: TestSchema;
let db: Db;


const statusOf = async (id: string) => (await t.client.query(`SELECT status FROM ${t.schema}.digest_history WHERE id = $1`, [id])).rows[0]?.status;

describe.each(ENGINES)('fix-duplicates (%s)', (engine) => {
  beforeEach(async () => {
    t = await createTestSchema({ engine });
    db = await openRepairDb(t);
  });
  afterEach(async () => {
    await db.close();
    await t.cleanup();
  });
  // a second connection holding locks or writing meanwhile: the server only (test/helpers/engine.ts)
  const serverIt = (engine === 'server' ? it : () => undefined) as typeof it;
  it('a dry run plans the incident and writes nothing, not even the state schema', async () => {
    const s = await seedIncident(t);
    const before = await checksumExcept(t.client, t.schema, 'false');
    const r = await fixDuplicates(db, { ...batchDefaults(), keep: 'newest', apply: false });
    expect(r.mode).toBe('dry-run');
    expect(r.repairStatus).toEqual({ status: 'failed', allowed: ['pending', 'sent', 'failed'] });
    expect(r.plan.items).toEqual([
      expect.objectContaining({ userId: INCIDENT.user, digestDate: INCIDENT.day, keep: expect.objectContaining({ id: s.pendingNew }), fail: [expect.objectContaining({ id: s.pendingOld })] }),
    ]);
    expect(r.applied).toBeNull();
    expect(await checksumExcept(t.client, t.schema, 'false')).toBe(before);
    const state = await t.client.query(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [t.stateSchema]);
    expect(state.rowCount).toBe(0);
  });

  it.each([
    ['newest', 'pendingNew', 'pendingOld'],
    ['oldest', 'pendingOld', 'pendingNew'],
  ] as const)('keeps the %s row and leaves every other row untouched', async (keep, keptName, failedName) => {
    const s = await seedIncident(t);
    // Noise: other users and another day of the same user, duplicates included, outside the filter.
    await insertRows(t, [
      { userId: INCIDENT.user, digestDate: '2025-11-24', status: 'pending', createdAt: '2025-11-24T10:00:00Z' },
      { userId: INCIDENT.user, digestDate: '2025-11-24', status: 'pending', createdAt: '2025-11-24T10:00:05Z' },
    ]);
    const untouched = await checksumExcept(t.client, t.schema, 'd.id = $1', [s[failedName]]);
    const r = await fixDuplicates(db, { ...batchDefaults(), keep, apply: true, userId: INCIDENT.user, date: INCIDENT.day });
    expect(r.applied).toMatchObject({ status: 'done', rowsChanged: 1, groupsFixed: 1, skipped: [] });
    expect(await statusOf(s[keptName])).toBe('pending');
    expect(await statusOf(s[failedName])).toBe('failed');
    expect(await checksumExcept(t.client, t.schema, 'd.id = $1', [s[failedName]])).toBe(untouched);

    const audit = await t.client.query(`SELECT run_id::text, command, row_id::text, before->>'status' AS b, after->>'status' AS a, db_user, application_name, client_host FROM ${t.stateSchema}.audit`);
    expect(audit.rows).toEqual([
      expect.objectContaining({ run_id: r.applied!.runId, command: 'fix-duplicates', row_id: s[failedName], b: 'pending', a: 'failed', db_user: 'postgres', application_name: 'digest-doctor' }),
    ]);
    expect(audit.rows[0].client_host).toBeTruthy();
    const run = await t.client.query(`SELECT status, rows_changed, args->>'keep' AS keep, finished_at IS NOT NULL AS finished FROM ${t.stateSchema}.runs WHERE id = $1`, [r.applied!.runId]);
    expect(run.rows).toEqual([{ status: 'done', rows_changed: 1, keep, finished: true }]);
  });

  it('audits the whole row: the before-image is the row as it was, the after-image the row as written', async () => {
    await seedGroups(t, { tag: 'img', groups: 5, perGroup: 3, sentPerGroup: 1, day: '2025-11-25', base: '2025-11-25T08:00:00Z' });
    await t.client.query(`UPDATE ${t.schema}.digest_history SET posts_count = 3, topics = '["a"]', content = 'x' WHERE id = md5('imgr2-1')::uuid`);
    const images = `SELECT d.id::text AS id, to_jsonb(d) AS row FROM ${t.schema}.digest_history d ORDER BY d.id`;
    const before = new Map((await t.client.query(images)).rows.map((r) => [r.id, r.row]));
    const r = await fixDuplicates(db, { ...batchDefaults({ batchSize: 4 }), keep: 'newest', apply: true });
    expect(r.applied!.rowsChanged).toBe(10);
    const after = new Map((await t.client.query(images)).rows.map((r) => [r.id, r.row]));
    const audit = (await t.client.query(`SELECT row_id::text AS id, before, after FROM ${t.stateSchema}.audit`)).rows;
    expect(audit).toHaveLength(10);
    expect(audit.map((a) => a.before.topics)).toContainEqual(['a']);
    for (const a of audit) expect(a).toEqual({ id: a.id, before: before.get(a.id), after: after.get(a.id) });
  });

  it('a second --apply changes nothing and says so', async () => {
    await seedGroups(t, { tag: 'a', groups: 40, perGroup: 3, sentPerGroup: 1, day: '2025-11-25', base: '2025-11-25T08:00:00Z' });
    const first = await fixDuplicates(db, { ...batchDefaults({ batchSize: 7 }), keep: 'newest', apply: true });
    expect(first.applied).toMatchObject({ status: 'done', rowsChanged: 80, groupsFixed: 40 });
    expect(first.applied!.batches).toBeGreaterThan(10);
    const sum = await checksumExcept(t.client, t.schema, 'false');
    const second = await fixDuplicates(db, { ...batchDefaults({ batchSize: 7 }), keep: 'newest', apply: true });
    expect(second.plan.groups).toBe(0);
    expect(second.applied).toMatchObject({ runId: null, status: 'nothing-to-do', rowsChanged: 0 });
    expect(await checksumExcept(t.client, t.schema, 'false')).toBe(sum);
    expect([...(await inFlightPerGroup(t.client, t.schema)).values()].every((n) => n === 1)).toBe(true);
  });

  it('orders rows to the microsecond, as the service does: the plan and the applied run keep the same row', async () => {
    // Three rows inside one millisecond; the ids run against their order in time, so a millisecond
    // clock (ties broken by id) would keep a different row.
    const user = '7a1b2c3d-0000-4000-8000-000000000001';
    const at = (us: number) => `2025-11-25T10:00:00.000${us}Z`;
    const [late, mid, early] = await insertRows(t, [
      { id: '00000000-0000-4000-8000-00000000000a', userId: user, digestDate: '2025-11-25', status: 'pending', createdAt: at(300) },
      { id: '00000000-0000-4000-8000-00000000000b', userId: user, digestDate: '2025-11-25', status: 'pending', createdAt: at(200) },
      { id: '00000000-0000-4000-8000-00000000000c', userId: user, digestDate: '2025-11-25', status: 'pending', createdAt: at(100) },
    ]);
    for (const [keep, kept, failed] of [['newest', late, [mid, early]], ['oldest', early, [mid, late]]] as const) {
      const dry = await fixDuplicates(db, { ...batchDefaults(), keep, apply: false });
      expect(dry.plan.items).toHaveLength(1);
      expect(dry.plan.items[0]!.keep.id).toBe(kept);
      expect(dry.plan.items[0]!.fail.map((r) => r.id)).toEqual(failed);
      const run = await fixDuplicates(db, { ...batchDefaults(), keep, apply: true });
      expect(run.applied).toMatchObject({ rowsChanged: 2, groupsFixed: 1 });
      expect(await statusOf(kept)).toBe('pending');
      for (const id of failed) expect(await statusOf(id)).toBe('failed');
      await t.client.query(`UPDATE ${t.schema}.digest_history SET status = 'pending' WHERE user_id = $1`, [user]);
    }
  });

  it('--date and --since narrow the repair', async () => {
    await seedGroups(t, { tag: 'old', groups: 3, perGroup: 2, day: '2025-11-20', base: '2025-11-20T08:00:00Z' });
    await seedGroups(t, { tag: 'new', groups: 4, perGroup: 2, day: '2025-11-26', base: '2025-11-26T08:00:00Z' });
    const since = await fixDuplicates(db, { ...batchDefaults(), keep: 'newest', apply: false, since: '2025-11-21' });
    expect(since.plan.groups).toBe(4);
    const date = await fixDuplicates(db, { ...batchDefaults(), keep: 'newest', apply: true, date: '2025-11-20' });
    expect(date.applied!.rowsChanged).toBe(3);
    const left = await t.client.query(`SELECT digest_date, count(*)::int AS n FROM ${t.schema}.digest_history WHERE status = 'pending' GROUP BY 1 ORDER BY 1`);
    expect(left.rows).toEqual([
      { digest_date: expect.anything(), n: 3 },
      { digest_date: expect.anything(), n: 8 },
    ]);
  });

  it('pages the plan by keyset over many groups', async () => {
    await seedGroups(t, { tag: 'p', groups: 25, perGroup: 2, day: '2025-11-25', base: '2025-11-25T08:00:00Z' });
    const r = await fixDuplicates(db, { ...batchDefaults(), keep: 'oldest', apply: false, pageSize: 4 });
    expect(r.plan.groups).toBe(25);
    expect(new Set(r.plan.items.map((g) => g.userId)).size).toBe(25);
    const sorted = [...r.plan.items].sort((a, b) => (a.userId < b.userId ? -1 : 1));
    expect(r.plan.items).toEqual(sorted);
  });

  it('refuses (exit 4) when the CHECK constraint allows no fitting status, writing nothing', async () => {
    await seedIncident(t);
    await t.client.query(`ALTER TABLE ${t.schema}.digest_history DROP CONSTRAINT chk_digest_status`);
    await t.client.query(`ALTER TABLE ${t.schema}.digest_history ADD CONSTRAINT chk_digest_status CHECK (status IN ('pending', 'sent')) NOT VALID`);
    const sum = await checksumExcept(t.client, t.schema, 'false');
    const err = await fixDuplicates(db, { ...batchDefaults(), keep: 'newest', apply: true }).catch((e) => e);
    expect(err).toBeInstanceOf(DoctorError);
    expect(err).toMatchObject({ code: 'REFUSED', exitCode: 4 });
    expect(err.message).toMatch(/allows only 'pending', 'sent'/);
    expect(await checksumExcept(t.client, t.schema, 'false')).toBe(sum);
  });

  it('writes a status a widened constraint allows', async () => {
    await seedIncident(t);
    await t.client.query(`ALTER TABLE ${t.schema}.digest_history DROP CONSTRAINT chk_digest_status`);
    await t.client.query(`ALTER TABLE ${t.schema}.digest_history ADD CONSTRAINT chk_digest_status CHECK (status IN ('scheduled', 'pending', 'processing', 'sent', 'failed'))`);
    const r = await fixDuplicates(db, { ...batchDefaults(), keep: 'newest', apply: true });
    expect(r.repairStatus.allowed).toEqual(['scheduled', 'pending', 'processing', 'sent', 'failed']);
    expect(r.applied!.rowsChanged).toBe(1);
  });

  serverIt('a second repair at the same time exits busy while the first holds the lock', async () => {
    await seedIncident(t);
    const holder = new pg.Client({ connectionString: t.url });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock(hashtext($1), hashtext($2))', ['digest-doctor:repair:fix-duplicates', t.schema]);
      const err = await fixDuplicates(db, { ...batchDefaults({ lockWaitMs: 150 }), keep: 'newest', apply: true }).catch((e) => e);
      expect(err).toMatchObject({ code: 'BUSY', exitCode: 4 });
      expect(await statusOf('a1111111-1111-4111-8111-111111111111')).toBe('pending');
      // It waits when the first finishes within --lock-wait.
      const waiting = fixDuplicates(db, { ...batchDefaults({ lockWaitMs: 10_000 }), keep: 'newest', apply: true });
      await new Promise((r) => setTimeout(r, 200));
      await holder.query('SELECT pg_advisory_unlock(hashtext($1), hashtext($2))', ['digest-doctor:repair:fix-duplicates', t.schema]);
      expect((await waiting).applied!.rowsChanged).toBe(1);
    } finally {
      await holder.end();
    }
  });

  serverIt('two repairs started together never double-process: the rows changed add up once', async () => {
    await seedGroups(t, { tag: 'c', groups: 60, perGroup: 3, day: '2025-11-25', base: '2025-11-25T08:00:00Z' });
    const other = await openRepairDb(t);
    try {
      const [a, b] = await Promise.all([
        fixDuplicates(db, { ...batchDefaults({ batchSize: 9, lockWaitMs: 30_000 }), keep: 'newest', apply: true }),
        fixDuplicates(other, { ...batchDefaults({ batchSize: 9, lockWaitMs: 30_000 }), keep: 'newest', apply: true }),
      ]);
      expect(a.applied!.rowsChanged + b.applied!.rowsChanged).toBe(120);
      expect([a.applied!.status, b.applied!.status].sort()).toEqual(['done', 'nothing-to-do']);
      const audit = await t.client.query(`SELECT count(*)::int AS n, count(DISTINCT row_id)::int AS rows FROM ${t.stateSchema}.audit`);
      expect(audit.rows[0]).toEqual({ n: 120, rows: 120 });
    } finally {
      await other.close();
    }
  });

  serverIt('a concurrent writer moving the in-flight row around never leaves a group with none or two', async () => {
    const users = await seedGroups(t, { tag: 'w', groups: 50, perGroup: 3, sentPerGroup: 2, day: '2025-11-25', base: '2025-11-25T08:00:00Z' });
    // The writer: in one transaction, an in-flight row of a group is finished (sent) and a sent row of
    // the same group goes back to pending: like the service, it never changes a group's in-flight count.
    const writer = new pg.Client({ connectionString: t.url });
    await writer.connect();
    let stop = false;
    let swaps = 0;
    const loop = (async () => {
      for (let i = 0; !stop; i++) {
        const user = users[i % users.length]!;
        await writer.query('BEGIN');
        const x = await writer.query(`SELECT id FROM ${t.schema}.digest_history WHERE user_id = $1 AND status = 'pending' ORDER BY random() LIMIT 1 FOR UPDATE`, [user]);
        const y = await writer.query(`SELECT id FROM ${t.schema}.digest_history WHERE user_id = $1 AND status = 'sent' ORDER BY random() LIMIT 1 FOR UPDATE`, [user]);
        const xid = x.rows[0]?.id;
        const yid = y.rows[0]?.id;
        const done = xid && yid ? await writer.query(`UPDATE ${t.schema}.digest_history SET status = 'sent', sent_at = now() WHERE id = $1 AND status = 'pending'`, [xid]) : undefined;
        if (done?.rowCount === 1) {
          await writer.query(`UPDATE ${t.schema}.digest_history SET status = 'pending', sent_at = NULL WHERE id = $1`, [yid]);
          await writer.query('COMMIT');
          swaps++;
        } else await writer.query('ROLLBACK');
      }
    })();
    try {
      const r = await fixDuplicates(db, { ...batchDefaults({ batchSize: 4 }), keep: 'newest', apply: true });
      stop = true;
      await loop;
      expect(swaps).toBeGreaterThan(0);
      const counts = await inFlightPerGroup(t.client, t.schema);
      const skipped = new Set(r.applied!.skipped.map((s) => `${s.userId}|${s.digestDate}`));
      for (const [k, n] of counts) {
        expect(n, k).toBeGreaterThanOrEqual(1);
        if (!skipped.has(k)) expect(n, k).toBe(1);
      }
      // Every row the run failed is audited, and every audited row is failed unless the writer moved it since.
      const audit = await t.client.query(`SELECT count(*)::int AS n FROM ${t.stateSchema}.audit WHERE run_id = $1`, [r.applied!.runId]);
      expect(audit.rows[0].n).toBe(r.applied!.rowsChanged);
      const again = await fixDuplicates(db, { ...batchDefaults(), keep: 'newest', apply: true });
      expect(again.applied!.skipped).toEqual([]);
      expect([...(await inFlightPerGroup(t.client, t.schema)).values()].every((n) => n === 1)).toBe(true);
    } finally {
      stop = true;
      await loop.catch(() => undefined);
      await writer.end();
    }
  });

  serverIt('skips and lists a group whose row another session holds through both passes; a rerun finishes it', async () => {
    const s = await seedIncident(t);
    const holder = new pg.Client({ connectionString: t.url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM ${t.schema}.digest_history WHERE id = $1 FOR UPDATE`, [s.pendingOld]);
      const run = fixDuplicates(db, { ...batchDefaults(), keep: 'newest', apply: true });
      // Held through both passes: skipped and listed, nothing changed.
      const r = await run;
      expect(r.applied!.skipped).toEqual([{ userId: INCIDENT.user, digestDate: INCIDENT.day, reason: 'rows held by another session' }]);
      expect(r.applied!.rowsChanged).toBe(0);
      await holder.query('COMMIT');
      const again = await fixDuplicates(db, { ...batchDefaults(), keep: 'newest', apply: true });
      expect(again.applied!.rowsChanged).toBe(1);
    } finally {
      await holder.end();
    }
  });
});
