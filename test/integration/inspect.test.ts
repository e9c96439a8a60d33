import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/postgres/db.js';
import { connectRedis, closeRedis, type RedisClient } from '../../src/redis/connect.js';
import { inspectSummary, inspectUser } from '../../src/ops/inspect.js';
import { InspectSummarySchema, InspectUserSchema } from '../../src/ops/inspect-schema.js';
import { serializeEvent } from '../../src/core/event.js';
import { createTestSchema, ENGINES, insertRows, INCIDENT, openTestDb, seedIncident, TENANT, type TestSchema } from '../helpers/pg.js';
import { createTestRedis, type TestRedis } from '../helpers/redis.js';

let t: TestSchema;
let db: Db;


const base = { limit: 20, stuckAfterMs: 3_600_000 };
const noRedis = { skipped: 'Redis not configured' };

describe.each(ENGINES)('inspect (%s)', (engine) => { // the whole file, on each engine (not reindented)
beforeEach(async () => {
  t = await createTestSchema({ engine });
  db = await openTestDb(t, 10_000);
});
afterEach(async () => {
  await db.close();
  await t.cleanup();
});
describe('inspect summary', () => {
  it('finds the incident: one duplicate group, stuck rows, counts by status', async () => {
    const ids = await seedIncident(t);
    const r = InspectSummarySchema.parse(await inspectSummary(db, noRedis, base));
    expect(r.duplicates.totalGroups).toBe(1);
    expect(r.duplicates.totalRows).toBe(2);
    expect(r.duplicates.extraRows).toBe(1);
    expect(r.duplicates.groups[0]).toMatchObject({ userId: INCIDENT.user, digestDate: INCIDENT.day, rows: 2, ids: [ids.pendingNew, ids.pendingOld] });
    expect(r.statusCounts).toEqual({ pending: 3, failed: 1, sent: 1 });
    expect(r.inFlightTotal).toBe(3);
    expect(r.inFlightByAge['> 7 d']).toBe(3);
    expect(r.stuck.count).toBe(3);
    expect(r.findings.map((f) => [f.check, f.verdict])).toEqual([['duplicates', 'fail'], ['stuck', 'fail']]);
  });

  it('an empty or healthy table has no findings', async () => {
    expect((await inspectSummary(db, noRedis, base)).findings).toEqual([]);
    await insertRows(t, [{ userId: INCIDENT.cleanUser, digestDate: '2025-11-25', status: 'sent', createdAt: new Date() }]);
    await insertRows(t, [{ userId: INCIDENT.user, digestDate: '2025-11-25', status: 'pending', createdAt: new Date() }]);
    const r = await inspectSummary(db, noRedis, base);
    expect(r.findings).toEqual([]);
    expect(r.inFlightByAge['< 1 h']).toBe(1);
  });

  it('orders the worst groups first, honours --limit and still counts every group', async () => {
    const users = ['11111111-1111-4111-8111-000000000001', '11111111-1111-4111-8111-000000000002', '11111111-1111-4111-8111-000000000003'];
    const rows = users.flatMap((u, i) => Array.from({ length: i + 2 }, (_, k) => ({ userId: u, digestDate: '2025-11-25', status: 'pending', createdAt: `2025-11-25T10:0${k}:00Z` })));
    await insertRows(t, rows);
    const r = await inspectSummary(db, noRedis, { ...base, limit: 2 });
    expect(r.duplicates.groups.map((g) => g.rows)).toEqual([4, 3]);
    expect(r.duplicates.totalGroups).toBe(3);
    expect(r.duplicates.totalRows).toBe(9);
    expect(r.duplicates.extraRows).toBe(6);
  });

  it('filters by --date and --since', async () => {
    await seedIncident(t);
    expect((await inspectSummary(db, noRedis, { ...base, date: '2025-11-20' })).duplicates.totalGroups).toBe(0);
    expect((await inspectSummary(db, noRedis, { ...base, date: '2025-11-20' })).statusCounts).toEqual({ pending: 1 });
    expect((await inspectSummary(db, noRedis, { ...base, since: '2025-11-21' })).inFlightTotal).toBe(2);
  });

  it('runs read-only: it writes nothing even by mistake', async () => {
    await seedIncident(t);
    await db.readOnly(async (tx) => {
      await expect(tx.raw(`DELETE FROM ${t.schema}.digest_history`)).rejects.toThrow(/read-only/);
    });
    const [{ n }] = (await t.client.query(`SELECT count(*)::int AS n FROM ${t.schema}.digest_history`)).rows;
    expect(n).toBe(5);
  });
});

describe('inspect --user', () => {
  let r: TestRedis;
  let redis: RedisClient;
  beforeEach(async () => {
    r = await createTestRedis();
    redis = await connectRedis({ url: r.url, keyPrefix: r.prefix });
  });
  afterEach(async () => {
    await closeRedis(redis);
    await r.cleanup();
  });

  const input = { userId: INCIDENT.user, digestDate: INCIDENT.day, timeZone: 'Europe/Moscow', stuckAfterMs: 3_600_000 };

  it('shows the day, marks the duplicates, and says when Redis was skipped', async () => {
    const ids = await seedIncident(t);
    const out = InspectUserSchema.parse(await inspectUser(db, { skipped: 'Redis not configured' }, input));
    expect(out.rows.map((x) => x.id)).toEqual([ids.pendingNew, ids.pendingOld, ids.failed]);
    expect(out.rows[0]!.marks).toEqual(['kept', 'stuck']);
    expect(out.rows[1]!.marks).toEqual(['duplicate', 'stuck']);
    expect(out.rows[2]!.marks).toEqual([]);
    expect(out.rows[2]!.createdAtLocal).toBe('2025-11-25 18:36:57');
    expect(out.duplicateCount).toBe(1);
    expect(out.redis).toEqual({ skipped: true, reason: 'Redis not configured' });
  });

  it('marks the row kept as fix-duplicates keeps it, to the microsecond', async () => {
    // Three in-flight rows inside one millisecond; ids against their order in time, so a millisecond
    // clock with ties broken by id would mark another row kept than fix-duplicates keeps.
    const at = (us: number) => `${INCIDENT.day}T10:00:00.000${us}Z`;
    const [late, mid, early] = await insertRows(t, [
      { id: '00000000-0000-4000-8000-00000000000a', userId: INCIDENT.user, digestDate: INCIDENT.day, status: 'pending', createdAt: at(300) },
      { id: '00000000-0000-4000-8000-00000000000b', userId: INCIDENT.user, digestDate: INCIDENT.day, status: 'pending', createdAt: at(200) },
      { id: '00000000-0000-4000-8000-00000000000c', userId: INCIDENT.user, digestDate: INCIDENT.day, status: 'pending', createdAt: at(100) },
    ]);
    for (const [keep, kept] of [['newest', late], ['oldest', early]] as const) {
      const out = await inspectUser(db, noRedis, { ...input, keep });
      expect(out.rows.map((x) => x.id)).toEqual([late, mid, early]);
      expect(out.rows.filter((x) => x.marks.includes('kept')).map((x) => x.id)).toEqual([kept]);
      expect(out.rows.filter((x) => x.marks.includes('duplicate')).map((x) => x.id).sort()).toEqual([late, mid, early].filter((id) => id !== kept).sort());
    }
  });

  it("finds the user's entries on the stream and the DLQ, with their pending state, and the lock", async () => {
    const ids = await seedIncident(t);
    const ev = (historyId: string, trigger: string, user: string = INCIDENT.user) =>
      serializeEvent({ schema_version: 'v1', user_id: user, tenant_id: TENANT, digest_date: INCIDENT.day, trigger, history_id: historyId });
    const stream = r.key('stream:digests:generate');
    // the two clicks, another user's event in between, an entry long before the day, and garbage
    await r.client.xadd(stream, '1764085017291-0', 'data', ev(INCIDENT.digestId, 'manual'));
    await r.client.xadd(stream, '1764085100000-0', 'data', ev(ids.sent, 'scheduler', INCIDENT.cleanUser));
    await r.client.xadd(stream, '1764085149102-0', 'data', ev(ids.pendingOld, 'manual'));
    await r.client.xadd(stream, '1764085150000-0', 'data', '{oops');
    await r.client.xgroup('CREATE', stream, 'digest-workers', '0');
    // a worker took the first two entries and never acked them
    await r.client.xreadgroup('GROUP', 'digest-workers', 'digest-worker-4242', 'COUNT', 2, 'STREAMS', stream, '>');
    await r.client.xadd(r.key('stream:digests:generate:dlq'), '1764085300000-0', 'data', JSON.stringify({ ...JSON.parse(ev(INCIDENT.digestId, 'manual')), dlq_reason: 'max_retries', retry_count: 3 }));
    await r.client.set(r.key(`digest:lock:${INCIDENT.user}`), '1');

    const out = InspectUserSchema.parse(await inspectUser(db, { client: redis }, input));
    if (out.redis.skipped) throw new Error('redis skipped');
    expect(out.redis.entries.map((e) => [e.stream, e.id, e.historyId, e.trigger])).toEqual([
      ['stream:digests:generate', '1764085017291-0', INCIDENT.digestId, 'manual'],
      ['stream:digests:generate', '1764085149102-0', ids.pendingOld, 'manual'],
      ['stream:digests:generate:dlq', '1764085300000-0', INCIDENT.digestId, 'manual'],
    ]);
    expect(out.redis.entries[0]!.pending).toMatchObject({ consumer: 'digest-worker-4242', deliveries: 1 });
    expect(out.redis.entries[1]!.pending).toBeNull();
    expect(out.redis.entries[2]!.dlqReason).toBe('max_retries');
    expect(out.redis.malformed).toBe(1);
    expect(out.redis.groupsMissing).toEqual([]);
    expect(out.redis.lock).toMatchObject({ held: true, value: '1', noTtl: true, ttlMs: null });
    expect(out.findings.find((f) => f.check === 'lock-no-ttl')).toMatchObject({ verdict: 'fail', items: [`digest:lock:${INCIDENT.user}`] });
    // the one entry of the window that does not parse is a finding too
    expect(out.findings.find((f) => f.check === 'malformed')).toMatchObject({ verdict: 'warn', message: '1 entry in the window does not parse' });
  });

  it('reads only the window the table points at', async () => {
    await seedIncident(t);
    const stream = r.key('stream:digests:generate');
    const ev = serializeEvent({ user_id: INCIDENT.user, tenant_id: TENANT, digest_date: INCIDENT.day });
    await r.client.xadd(stream, '1000-0', 'data', ev); // 1970: outside the day and the rows
    const out = await inspectUser(db, { client: redis }, input);
    if (out.redis.skipped) throw new Error('redis skipped');
    expect(out.redis.entries).toEqual([]);
    expect(out.redis.window.from < '2025-11-25').toBe(true);
    expect(out.redis.groupsMissing).toEqual([]);
  });

  it('the summary lists stale locks: no TTL, or more TTL than the lock allows', async () => {
    await seedIncident(t);
    await r.client.set(r.key(`digest:lock:${INCIDENT.user}`), '1');
    await r.client.set(r.key(`digest:lock:${INCIDENT.cleanUser}`), '1', 'PX', 60_000);
    await r.client.set(r.key('digest:lock:tenant-1:group-9:w-12'), 'tok', 'PX', 3_600_000);
    const out = InspectSummarySchema.parse(await inspectSummary(db, { client: redis }, base));
    if (out.locks.skipped) throw new Error('redis skipped');
    expect(out.locks.stale).toEqual([
      { key: `digest:lock:${INCIDENT.user}`, kind: 'user', ttlMs: null, maxTtlMs: 300_000, reason: 'no TTL' },
      { key: 'digest:lock:tenant-1:group-9:w-12', kind: 'group', ttlMs: expect.any(Number), maxTtlMs: 900_000, reason: 'TTL longer than the lock allows' },
    ]);
    expect(out.findings.find((f) => f.check === 'stale-locks')).toMatchObject({ verdict: 'fail', message: expect.stringContaining('2 stale locks'), items: [`digest:lock:${INCIDENT.user}`, 'digest:lock:tenant-1:group-9:w-12'] });
  });

  it('reports a missing consumer group', async () => {
    await seedIncident(t);
    await r.client.xadd(r.key('stream:digests:generate'), '1764085017291-0', 'data', serializeEvent({ user_id: INCIDENT.user, tenant_id: TENANT, digest_date: INCIDENT.day }));
    const out = await inspectUser(db, { client: redis }, input);
    if (out.redis.skipped) throw new Error('redis skipped');
    expect(out.redis.groupsMissing).toEqual(['stream:digests:generate digest-workers']);
  });
});
});
