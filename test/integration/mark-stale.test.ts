import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DIGEST_GROUP, DIGEST_STREAM } from '../../src/core/contract.js';
import { buildEvent, serializeEvent } from '../../src/core/event.js';
import { markStale } from '../../src/ops/mark-stale.js';
import type { Db } from '../../src/postgres/db.js';
import { connectRedis, type RedisClient } from '../../src/redis/connect.js';
import { createTestSchema, ENGINES, INCIDENT, insertRows, seedIncident, TENANT, type TestSchema } from '../helpers/pg.js';
import { createTestRedis, type TestRedis } from '../helpers/redis.js';
import { NO_REDIS, checksumExcept, openRepairDb, staleInput } from '../helpers/repair.js';

let t: TestSchema;
let db: Db;


const rowOf = async (id: string) => (await t.client.query(`SELECT status, sent_at FROM ${t.schema}.digest_history WHERE id = $1`, [id])).rows[0];

describe.each(ENGINES)('mark-stale (%s)', (engine) => { // the whole file, on each engine (not reindented)
beforeEach(async () => {
  t = await createTestSchema({ engine });
  db = await openRepairDb(t);
});
afterEach(async () => {
  await db.close();
  await t.cleanup();
});
// Without Redis the live check cannot run and --apply refuses unless told to mark live rows too: the
// suite's applies are about the batches, so they pass that override (the refusal: 'without the live check').
const BLIND_OK = { includeLive: true };

describe('mark-stale', () => {
  it('plans in-flight rows older than the cut-off from the database clock, and a dry run writes nothing', async () => {
    const s = await seedIncident(t);
    const [fresh] = await insertRows(t, [{ userId: INCIDENT.cleanUser, digestDate: '2026-01-01', status: 'pending', createdAt: new Date() }]);
    const sum = await checksumExcept(t.client, t.schema, 'false');
    const r = await markStale(db, NO_REDIS, staleInput());
    const [{ now }] = (await t.client.query('SELECT now() AS now')).rows;
    expect(Math.abs(Date.parse(r.cutoff) + 86_400_000 - Date.parse(r.now))).toBeLessThan(2);
    expect(Date.parse(r.now)).toBeLessThanOrEqual(new Date(now).getTime());
    // Oldest first; the fresh row and the failed and sent rows are not stale.
    expect(r.plan.items.map((x) => x.id)).toEqual([s.stuck, s.pendingOld, s.pendingNew]);
    expect(r.plan.items.map((x) => x.id)).not.toContain(fresh);
    expect(r.redis).toEqual({ checked: false, reason: 'Redis not configured' });
    expect(r.applied).toBeNull();
    expect(await checksumExcept(t.client, t.schema, 'false')).toBe(sum);
  });

  it('--apply marks them failed, clears sent_at, audits each, and leaves the rest untouched; a second run is a no-op', async () => {
    const s = await seedIncident(t);
    // An in-flight row that somehow carries a sent_at: cleared with the status.
    const [odd] = await insertRows(t, [{ userId: INCIDENT.stuckUser, digestDate: '2025-11-19', status: 'pending', createdAt: '2025-11-19T06:00:00Z', sentAt: '2025-11-19T06:05:00Z' }]);
    const changed = [s.stuck, s.pendingOld, s.pendingNew, odd!];
    const untouched = await checksumExcept(t.client, t.schema, 'd.id = ANY ($1::uuid[])', [changed]);
    const r = await markStale(db, NO_REDIS, staleInput({ ...BLIND_OK, apply: true, batchSize: 2 }));
    expect(r.applied).toMatchObject({ status: 'done', rowsChanged: 4, changedMeanwhile: 0, skipped: [], batches: 2 });
    for (const id of changed) expect(await rowOf(id)).toEqual({ status: 'failed', sent_at: null });
    expect(await checksumExcept(t.client, t.schema, 'd.id = ANY ($1::uuid[])', [changed])).toBe(untouched);
    const audit = await t.client.query(`SELECT row_id::text AS id, before->>'status' AS b, before->>'sent_at' AS sent, after->>'status' AS a, after->'sent_at' AS after_sent FROM ${t.stateSchema}.audit ORDER BY id`);
    expect(audit.rows.map((x) => x.id).sort()).toEqual([...changed].sort());
    expect(audit.rows.find((x) => x.id === odd)).toMatchObject({ b: 'pending', sent: '2025-11-19T06:05:00+00:00', a: 'failed', after_sent: null });
    const runs = await t.client.query(`SELECT command, rows_changed, args->>'cutoff' AS cutoff FROM ${t.stateSchema}.runs`);
    expect(runs.rows).toEqual([{ command: 'mark-stale', rows_changed: 4, cutoff: r.cutoff }]);

    const sum = await checksumExcept(t.client, t.schema, 'false');
    const again = await markStale(db, NO_REDIS, staleInput({ ...BLIND_OK, apply: true }));
    expect(again.applied).toMatchObject({ runId: null, status: 'nothing-to-do', rowsChanged: 0 });
    expect(await checksumExcept(t.client, t.schema, 'false')).toBe(sum);
  });

  it('audits the whole row: the before-image is the row as it was, the after-image the row as written', async () => {
    await seedIncident(t);
    await insertRows(t, [{ userId: INCIDENT.stuckUser, digestDate: '2025-11-18', status: 'pending', createdAt: '2025-11-18T06:00:00Z', sentAt: '2025-11-18T06:05:00Z' }]);
    const images = `SELECT d.id::text AS id, to_jsonb(d) AS row FROM ${t.schema}.digest_history d ORDER BY d.id`;
    const before = new Map((await t.client.query(images)).rows.map((r) => [r.id, r.row]));
    const r = await markStale(db, NO_REDIS, staleInput({ ...BLIND_OK, apply: true, batchSize: 2 }));
    expect(r.applied!.rowsChanged).toBe(4);
    const after = new Map((await t.client.query(images)).rows.map((r) => [r.id, r.row]));
    const audit = (await t.client.query(`SELECT row_id::text AS id, before, after FROM ${t.stateSchema}.audit`)).rows;
    expect(audit).toHaveLength(4);
    for (const a of audit) expect(a).toEqual({ id: a.id, before: before.get(a.id), after: after.get(a.id) });
  });

  it('the batches run with lock_timeout and synchronous_commit off on the session, which gets its own settings back after', async () => {
    await seedIncident(t);
    const settings = async () => (await db.raw<{ lt: string; sc: string }>(`SELECT current_setting('lock_timeout') AS lt, current_setting('synchronous_commit') AS sc`))[0];
    await db.raw(`SET lock_timeout = '7s'`);
    const during: Array<{ lt: string; sc: string } | undefined> = [];
    const r = await markStale(db, NO_REDIS, staleInput({ ...BLIND_OK, apply: true, batchSize: 1, lockTimeoutMs: 1234, onProgress: async () => void during.push(await settings()) }));
    expect(r.applied).toMatchObject({ status: 'done', rowsChanged: 3, batches: 3 });
    expect(during).toEqual(Array(3).fill({ lt: '1234ms', sc: 'off' }));
    expect(await settings()).toEqual({ lt: '7s', sc: 'on' });
    // A run that fails midway puts them back too.
    await t.client.query(`UPDATE ${t.schema}.digest_history SET status = 'pending' WHERE status = 'failed'`);
    await expect(markStale(db, NO_REDIS, staleInput({ ...BLIND_OK, apply: true, batchSize: 1, onProgress: () => { throw new Error('stop here'); } }))).rejects.toThrow('stop here');
    expect(await settings()).toEqual({ lt: '7s', sc: 'on' });
    const runs = await t.client.query(`SELECT status, error FROM ${t.stateSchema}.runs ORDER BY started_at`);
    expect(runs.rows.map((x) => x.status)).toEqual(['done', 'failed']);
  });

  it('--user, --date and --limit narrow it', async () => {
    const s = await seedIncident(t);
    expect((await markStale(db, NO_REDIS, staleInput({ userId: INCIDENT.stuckUser }))).plan.items.map((x) => x.id)).toEqual([s.stuck]);
    expect((await markStale(db, NO_REDIS, staleInput({ date: INCIDENT.day }))).plan.items.map((x) => x.id)).toEqual([s.pendingOld, s.pendingNew]);
    const limited = await markStale(db, NO_REDIS, staleInput({ ...BLIND_OK, limit: 2, apply: true, pageSize: 1 }));
    expect(limited.plan.items.map((x) => x.id)).toEqual([s.stuck, s.pendingOld]);
    expect(limited.applied!.rowsChanged).toBe(2);
    expect((await rowOf(s.pendingNew)).status).toBe('pending');
  });

  it('pages the plan exactly, whatever the microseconds of created_at', async () => {
    const rows = await insertRows(t, ['2025-11-01T00:00:00.000100Z', '2025-11-01T00:00:00.000200Z', '2025-11-01T00:00:00.000300Z', '2025-11-01T00:00:00.000400Z', '2025-11-01T00:00:00.000500Z'].map((at, i) => ({ userId: INCIDENT.cleanUser, digestDate: `2025-10-0${i + 1}`, status: 'pending', createdAt: at })));
    const r = await markStale(db, NO_REDIS, staleInput({ pageSize: 2 }));
    expect(r.plan.items.map((x) => x.id)).toEqual(rows);
  });

  it('a row the service moved on since the plan is left alone and counted', async () => {
    const s = await seedIncident(t);
    // The plan goes stale: batches of one row, and the service sends the last planned row after the
    // first batch (the progress callback runs between batches).
    let flipped = false;
    const r = await markStale(db, NO_REDIS, {
      ...staleInput({ ...BLIND_OK, apply: true, batchSize: 1 }),
      onProgress: async () => {
        if (flipped) return;
        flipped = true;
        await t.client.query(`UPDATE ${t.schema}.digest_history SET status = 'sent', sent_at = now() WHERE id = $1`, [s.pendingNew]);
      },
    });
    expect(r.applied).toMatchObject({ rowsChanged: 2, changedMeanwhile: 1 });
    expect((await rowOf(s.pendingNew)).status).toBe('sent');
  });

  it('a row the service rewrote since the plan but left stale is still marked, audited as it is now', async () => {
    const s = await seedIncident(t);
    // The row moves (a new version elsewhere) but stays pending: the batch misses it where the plan
    // saw it, and the retry finds it where it is now.
    let touched = false;
    const r = await markStale(db, NO_REDIS, {
      ...staleInput({ ...BLIND_OK, apply: true, batchSize: 1 }),
      onProgress: async () => {
        if (touched) return;
        touched = true;
        await t.client.query(`UPDATE ${t.schema}.digest_history SET content = 'rewritten' WHERE id = $1`, [s.pendingNew]);
      },
    });
    expect(r.applied).toMatchObject({ rowsChanged: 3, changedMeanwhile: 0, skipped: [] });
    expect(await rowOf(s.pendingNew)).toEqual({ status: 'failed', sent_at: null });
    const audit = await t.client.query(`SELECT before->>'content' AS content FROM ${t.stateSchema}.audit WHERE row_id = $1`, [s.pendingNew]);
    expect(audit.rows).toEqual([{ content: 'rewritten' }]);
  });
});

describe('mark-stale with Redis', () => {
  let redis: TestRedis;
  let client: RedisClient;
  beforeEach(async () => {
    redis = await createTestRedis();
    client = await connectRedis({ url: redis.url, keyPrefix: redis.prefix });
  });
  afterEach(async () => {
    client.disconnect();
    await redis.cleanup();
  });

  /** Publishes an event for `historyId` and has a worker take it; `idleMs` ages the delivery. */
  async function deliver(historyId: string, userId: string, day: string, idleMs: number): Promise<string> {
    const key = redis.key(DIGEST_STREAM);
    const event = buildEvent({ userId, tenantId: TENANT, digestDate: day, trigger: 'manual', historyId }, new Date(), randomUUID());
    const id = (await redis.client.xadd(key, '*', 'data', serializeEvent(event)))!;
    await redis.client.xreadgroup('GROUP', DIGEST_GROUP, 'digest-worker-7', 'COUNT', 100, 'STREAMS', key, '>');
    if (idleMs) await redis.client.xclaim(key, DIGEST_GROUP, 'digest-worker-7', 0, id, 'IDLE', idleMs);
    return id;
  }

  it('skips and lists a row whose event was delivered recently, unless --include-live', async () => {
    const s = await seedIncident(t);
    await redis.client.xgroup('CREATE', redis.key(DIGEST_STREAM), DIGEST_GROUP, '$', 'MKSTREAM');
    const liveEntry = await deliver(s.pendingNew, INCIDENT.user, INCIDENT.day, 0);
    await deliver(s.stuck, INCIDENT.stuckUser, '2025-11-20', 3_600_000); // pending but abandoned an hour ago
    const r = await markStale(db, { client }, staleInput());
    expect(r.redis).toEqual({ checked: true, groupMissing: false, pendingSeen: 2 });
    expect(r.live).toEqual([expect.objectContaining({ id: s.pendingNew, entryId: liveEntry, consumer: 'digest-worker-7', deliveries: 1 })]);
    expect(r.plan.items.map((x) => x.id)).toEqual([s.stuck, s.pendingOld]);

    const applied = await markStale(db, { client }, staleInput({ apply: true }));
    expect(applied.applied!.rowsChanged).toBe(2);
    expect((await rowOf(s.pendingNew)).status).toBe('pending');

    const forced = await markStale(db, { client }, staleInput({ apply: true, includeLive: true }));
    expect(forced.live.map((x) => x.id)).toEqual([s.pendingNew]);
    expect(forced.applied!.rowsChanged).toBe(1);
    expect((await rowOf(s.pendingNew)).status).toBe('failed');
  });

  it('pages through a long pending list and still finds the live entry at its end', async () => {
    const s = await seedIncident(t);
    const key = redis.key(DIGEST_STREAM);
    await redis.client.xgroup('CREATE', key, DIGEST_GROUP, '$', 'MKSTREAM');
    const p = redis.client.pipeline();
    for (let i = 0; i < 2_100; i++) {
      p.xadd(key, '*', 'data', serializeEvent(buildEvent({ userId: INCIDENT.cleanUser, tenantId: TENANT, digestDate: INCIDENT.day, trigger: 'scheduler', historyId: randomUUID() }, new Date(), randomUUID())));
    }
    await p.exec();
    await redis.client.xreadgroup('GROUP', DIGEST_GROUP, 'digest-worker-8', 'COUNT', 5_000, 'STREAMS', key, '>');
    const liveEntry = await deliver(s.stuck, INCIDENT.stuckUser, '2025-11-20', 0);
    const r = await markStale(db, { client }, staleInput());
    expect(r.redis).toEqual({ checked: true, groupMissing: false, pendingSeen: 2_101 });
    expect(r.live.map((x) => [x.id, x.entryId])).toEqual([[s.stuck, liveEntry]]);
  });

  it('--live-idle sets what "recently" means, and a stream without the group means nothing is live', async () => {
    const s = await seedIncident(t);
    // the stream is there (an event published) but no worker made the group yet: checked, nothing can be live
    await redis.client.xadd(redis.key(DIGEST_STREAM), '*', 'data', '{}');
    const before = await markStale(db, { client }, staleInput());
    expect(before.redis).toEqual({ checked: true, groupMissing: true, pendingSeen: 0 });
    await redis.client.xgroup('CREATE', redis.key(DIGEST_STREAM), DIGEST_GROUP, '$', 'MKSTREAM');
    await deliver(s.pendingNew, INCIDENT.user, INCIDENT.day, 120_000);
    expect((await markStale(db, { client }, staleInput({ liveIdleMs: 300_000 }))).live.map((x) => x.id)).toEqual([s.pendingNew]);
    expect((await markStale(db, { client }, staleInput({ liveIdleMs: 60_000 }))).live).toEqual([]);
  });

  it('without the live check (no Redis, or no digest stream under the prefix) --apply refuses and marks nothing; --include-live marks', async () => {
    const s = await seedIncident(t);
    const untouched = await checksumExcept(t.client, t.schema, 'false');
    // the client's prefix holds no stream (nothing published under it): the check cannot see a worker
    const noStream = { client, streamMissing: async () => 'not under this prefix (the caller says why)' };
    const dry = await markStale(db, noStream, staleInput());
    expect(dry.redis).toEqual({ checked: false, reason: 'not under this prefix (the caller says why)' });
    expect(dry.plan.items.map((x) => x.id)).toEqual([s.stuck, s.pendingOld, s.pendingNew]);
    // without a streamMissing of the caller's, a plain line says it
    expect((await markStale(db, { client }, staleInput())).redis).toEqual({ checked: false, reason: `no stream ${DIGEST_STREAM} under the Redis client's key prefix: no worker can be seen there` });
    for (const redisFor of [NO_REDIS, noStream]) {
      const err = await markStale(db, redisFor, staleInput({ apply: true })).then(() => null, (e: unknown) => e);
      expect(err).toMatchObject({ code: 'REFUSED', exitCode: 4 });
      expect((err as Error).message).toMatch(/^mark-stale --apply refused, nothing marked: the live check did not run, .* or add --include-live to mark without the check on purpose: /);
    }
    expect(await checksumExcept(t.client, t.schema, 'false')).toBe(untouched);
    // refused before anything is written: not even the tool's state (where a run would be recorded)
    expect((await t.client.query(`SELECT to_regclass($1) AS r`, [`${t.stateSchema}.runs`])).rows[0].r).toBeNull();

    const forced = await markStale(db, noStream, staleInput({ apply: true, includeLive: true }));
    expect(forced.redis).toEqual({ checked: false, reason: 'not under this prefix (the caller says why)' });
    expect(forced.applied).toMatchObject({ status: 'done', rowsChanged: 3 });
    for (const id of [s.stuck, s.pendingOld, s.pendingNew]) expect((await rowOf(id)).status).toBe('failed');
  });
});
});
