import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DIGEST_STREAM } from '../../src/core/contract.js';
import { parseEventJson } from '../../src/core/event.js';
import { serviceDay, userLockKey } from '../../src/core/keys.js';
import { connectPg, type Db } from '../../src/postgres/db.js';
import type { RedisClient } from '../../src/redis/connect.js';
import { requestDigest } from '../../src/service/request-digest.js';
import { createTestSchema, ensureUser, insertRows, TENANT, type TestSchema } from '../helpers/pg.js';
import { REDIS_TARGETS } from '../helpers/redis-targets.js';

const USER = '6af5e7d3-e736-46da-bfc1-42786f2ab1c0';

async function createIndex(t: TestSchema): Promise<void> {
  await t.client.query(
    `CREATE UNIQUE INDEX ux_digest_history_user_date ON ${t.schema}.digest_history (user_id, digest_date) WHERE status IN ('pending','processing')`,
  );
}

function openDbs(t: TestSchema, n: number): Promise<Db[]> {
  return Promise.all(Array.from({ length: n }, () => connectPg({ url: t.url, schema: t.schema, stateSchema: t.stateSchema, statementTimeoutMs: 30_000 })));
}

async function dbToday(t: TestSchema): Promise<string> {
  const { rows } = await t.client.query('SELECT now() AS now');
  return serviceDay(rows[0].now, 'Europe/Moscow');
}

describe.each(REDIS_TARGETS)('requestDigest with $name Redis', (target) => {
  let t: TestSchema;
  let redis: RedisClient;
  let cleanupRedis: () => Promise<void>;
  let dbs: Db[] = [];
  beforeAll(() => target.start());
  afterAll(() => target.stop());
  beforeEach(async () => {
    t = await createTestSchema();
    await ensureUser(t, USER, TENANT);
    ({ client: redis, cleanup: cleanupRedis } = await target.client());
  });
  afterEach(async () => {
    await Promise.all(dbs.map((d) => d.close()));
    dbs = [];
    await cleanupRedis();
    await t.cleanup();
  });

  it('200 concurrent requests for one (user, day) give one in-flight row and one stream entry', async () => {
    await createIndex(t);
    dbs = await openDbs(t, 20);
    const results = await Promise.all(
      dbs.flatMap((db) => Array.from({ length: 10 }, () => requestDigest(db, redis, { userId: USER, tenantId: TENANT, trigger: 'manual', lockWaitMs: 60_000 }))),
    );
    const { rows } = await t.client.query(`SELECT id::text, status, digest_date::text AS day FROM ${t.schema}.digest_history`);
    expect(rows).toHaveLength(1);
    expect(rows[0].status).toBe('pending');
    expect(rows[0].day).toBe(await dbToday(t));
    expect(new Set(results.map((r) => r.row.id))).toEqual(new Set([rows[0].id]));
    expect(results.filter((r) => r.action === 'insert')).toHaveLength(1);
    expect(results.filter((r) => r.published)).toHaveLength(1);
    expect(results.every((r) => r.lockReleasedCleanly)).toBe(true);
    const entries = (await redis.xrange(DIGEST_STREAM, '-', '+')) as Array<[string, string[]]>;
    expect(entries).toHaveLength(1);
    const ev = parseEventJson(entries[0]![1][1]!);
    expect(ev.ok && ev.event).toMatchObject({ history_id: rows[0].id, user_id: USER, tenant_id: TENANT, trigger: 'manual', digest_date: rows[0].day });
    expect(await redis.exists(userLockKey(USER))).toBe(0);
  });

  it('without the unique index: a clear error naming migrate --apply, and the lock is released', async () => {
    dbs = await openDbs(t, 1);
    await expect(requestDigest(dbs[0]!, redis, { userId: USER, tenantId: TENANT, trigger: 'manual' })).rejects.toMatchObject({
      code: 'REFUSED',
      message: expect.stringMatching(/ux_digest_history_user_date .*digest-doctor migrate --apply/),
    });
    expect(await redis.exists(userLockKey(USER))).toBe(0);
    expect(await redis.exists(DIGEST_STREAM)).toBe(0);
  });
});

describe('requestDigest decisions', () => {
  const target = REDIS_TARGETS.find((x) => x.name === 'standalone')!;
  let t: TestSchema;
  let db: Db;
  let redis: RedisClient;
  let cleanupRedis: () => Promise<void>;
  beforeEach(async () => {
    t = await createTestSchema();
    await createIndex(t);
    await ensureUser(t, USER, TENANT);
    [db] = (await openDbs(t, 1)) as [Db];
    ({ client: redis, cleanup: cleanupRedis } = await target.client());
  });
  afterEach(async () => {
    await db.close();
    await cleanupRedis();
    await t.cleanup();
  });

  it('a sent digest is returned to the scheduler; a manual request after it gets a new row', async () => {
    const day = await dbToday(t);
    const [sent] = await insertRows(t, [{ userId: USER, digestDate: day, status: 'sent', createdAt: new Date(), sentAt: new Date() }]);
    const sched = await requestDigest(db, redis, { userId: USER, tenantId: TENANT, trigger: 'scheduler' });
    expect(sched).toMatchObject({ action: 'return', published: null, row: { id: sent, status: 'sent' } });
    const manual = await requestDigest(db, redis, { userId: USER, tenantId: TENANT, trigger: 'manual' });
    expect(manual.action).toBe('insert');
    expect(manual.row.id).not.toBe(sent);
    expect(manual.published?.duplicate).toBe(false);
    expect(await redis.xlen(DIGEST_STREAM)).toBe(1);
  });

  it('a failed row stays history: a new pending row (fresh created_at) is inserted and published', async () => {
    const day = await dbToday(t);
    const [failed] = await insertRows(t, [{ userId: USER, digestDate: day, status: 'failed', createdAt: '2000-01-01T00:00:00Z' }]);
    const r = await requestDigest(db, redis, { userId: USER, tenantId: TENANT, trigger: 'scheduler_retry' });
    expect(r.action).toBe('insert');
    expect(r.row.id).not.toBe(failed);
    expect(Date.parse(r.row.createdAt)).toBeGreaterThan(Date.parse('2020-01-01'));
    const { rows } = await t.client.query(`SELECT status FROM ${t.schema}.digest_history WHERE id = $1`, [failed]);
    expect(rows[0].status).toBe('failed');
  });

  it('an in-flight row (pending, any age) is returned and nothing is published', async () => {
    const day = await dbToday(t);
    const [pending] = await insertRows(t, [{ userId: USER, digestDate: day, status: 'pending', createdAt: '2000-01-01T00:00:00Z' }]);
    const r = await requestDigest(db, redis, { userId: USER, tenantId: TENANT, trigger: 'manual' });
    expect(r).toMatchObject({ action: 'return', published: null, row: { id: pending } });
    expect(await redis.exists(DIGEST_STREAM)).toBe(0);
  });

  it('the service day comes from the instant given (the database clock by default)', async () => {
    const r = await requestDigest(db, redis, { userId: USER, tenantId: TENANT, trigger: 'manual', now: new Date('2025-11-25T21:30:00Z') });
    expect(r.row.digestDate).toBe('2025-11-26'); // 00:30 in Moscow
  });

  it('a failed publish leaves no pending row behind: the new row is marked failed, the lock released', async () => {
    await redis.set(DIGEST_STREAM, 'not a stream');
    await expect(requestDigest(db, redis, { userId: USER, tenantId: TENANT, trigger: 'manual' })).rejects.toMatchObject({ code: 'REFUSED' });
    const { rows } = await t.client.query(`SELECT status FROM ${t.schema}.digest_history`);
    expect(rows).toEqual([{ status: 'failed' }]);
    expect(await redis.exists(userLockKey(USER))).toBe(0);
    await redis.del(DIGEST_STREAM);
    const retry = await requestDigest(db, redis, { userId: USER, tenantId: TENANT, trigger: 'manual' });
    expect(retry.action).toBe('insert');
    expect(await redis.xlen(DIGEST_STREAM)).toBe(1);
  });

  it('a lock held by someone else makes the request BUSY after the wait', async () => {
    await redis.set(userLockKey(USER), '1', 'PX', 60_000);
    await expect(requestDigest(db, redis, { userId: USER, tenantId: TENANT, trigger: 'manual', lockWaitMs: 50 })).rejects.toMatchObject({ code: 'BUSY' });
    expect(await redis.get(userLockKey(USER))).toBe('1');
  });
});
