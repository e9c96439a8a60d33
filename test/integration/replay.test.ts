import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DIGEST_STREAM } from '../../src/core/contract.js';
import { fieldsToRecord, parseEventJson } from '../../src/core/event.js';
import { connectPg, type Db } from '../../src/postgres/db.js';
import { connectRedis, closeRedis, masters, type RedisClient } from '../../src/redis/connect.js';
import { replay } from '../../src/ops/replay.js';
import { createTestSchema, insertRows, TENANT, type TestSchema } from '../helpers/pg.js';
import { REDIS_TARGETS } from '../helpers/redis-targets.js';
import { DAY, OTHER_TENANT, USERS, seedReplayScene, type ReplayScene } from '../helpers/replay-fixtures.js';

async function entries(redis: RedisClient) {
  const raw = (await redis.xrange(DIGEST_STREAM, '-', '+')) as Array<[string, string[]]>;
  return raw.map(([id, fields]) => {
    const rec = fieldsToRecord(fields);
    const parsed = parseEventJson(rec.data!);
    if (!parsed.ok) throw new Error(parsed.error);
    return { id, fields: Object.keys(rec), event: parsed.event };
  });
}

async function markerCount(redis: RedisClient, prefix: string): Promise<number> {
  let n = 0;
  for (const node of masters(redis)) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}*idem:*`, 'COUNT', 1000);
      cursor = next;
      n += keys.length;
    } while (cursor !== '0');
  }
  return n;
}

describe.each(REDIS_TARGETS)('replay on $name Redis', (target) => {
  let t: TestSchema;
  let db: Db;
  let redis: RedisClient;
  let prefix: string;
  let redisUrlArgs: string[];
  let cleanupRedis: () => Promise<void>;
  let scene: ReplayScene;
  beforeAll(() => target.start());
  afterAll(() => target.stop());
  beforeEach(async () => {
    t = await createTestSchema();
    db = await connectPg({ url: t.url, schema: t.schema, stateSchema: t.stateSchema, statementTimeoutMs: 30_000 });
    ({ client: redis, prefix, cliArgs: redisUrlArgs, cleanup: cleanupRedis } = await target.client());
    scene = await seedReplayScene(t, redis);
    // the user of the tenant-less row belongs to another tenant: the event must take that one
    await t.client.query(`UPDATE ${t.schema}.users SET tenant_id = $1 WHERE id = $2`, [OTHER_TENANT, USERS[2]]);
  });
  afterEach(async () => {
    await db.close();
    await cleanupRedis();
    await t.cleanup();
  });

  it('a dry run plans the DLQ replay, lists skips and malformed entries, and writes nothing', async () => {
    const r = await replay(db, redis, { fromDlq: true });
    expect(r.applied).toBe(false);
    const bySource = Object.fromEntries(r.events.map((e) => [e.sourceId, [e.action, e.reason]]));
    expect(bySource).toEqual({
      [scene.dlqIds.flat]: ['publish', null],
      [scene.dlqIds.embedded]: ['publish', null],
      [scene.dlqIds.sent]: ['skip', 'row already sent'],
      [scene.dlqIds.missing]: ['skip', 'row missing'],
    });
    expect(r.invalid.map((i) => i.sourceId)).toEqual([scene.dlqIds.malformed]);
    expect(r.counts).toMatchObject({ candidates: 5, toPublish: 2, skipped: 2, invalid: 1, added: 0 });
    expect(await redis.exists(DIGEST_STREAM)).toBe(0);
    expect(await markerCount(redis, prefix)).toBe(0);
  });

  it('--apply republishes both DLQ shapes as the service builds events; a second run adds nothing', async () => {
    const first = await replay(db, redis, { fromDlq: true, apply: true });
    expect(first.counts).toMatchObject({ added: 2, duplicates: 0 });
    const added = await entries(redis);
    expect(added.map((e) => e.event.history_id).sort()).toEqual([scene.failed[0], scene.pending].sort());
    for (const e of added) {
      expect(e.fields).toEqual(['data']);
      expect(e.event.trace_id).toMatch(/^[0-9a-f-]{36}$/);
      expect(e.event.occurred_at).not.toBe('2025-11-25T15:36:57.291000+00:00');
      expect(e.event).toMatchObject({ schema_version: 'v1', trigger: 'manual', requested_by: '10.0.0.7', digest_date: DAY });
      expect(e.event).not.toHaveProperty('dlq_reason');
      expect(e.event).not.toHaveProperty('retry_count');
    }
    const second = await replay(db, redis, { fromDlq: true, apply: true });
    expect(second.counts).toMatchObject({ added: 0, duplicates: 2 });
    expect(await redis.xlen(DIGEST_STREAM)).toBe(2);
    // a repeat returns the first entry ids
    const ids = (r: typeof first) => r.events.filter((e) => e.entryId).map((e) => e.entryId).sort();
    expect(ids(second)).toEqual(ids(first));
  });

  it('two replays at once (two clients) add each event once', async () => {
    const other = await connectRedis({ url: redisUrlArgs[1]!, keyPrefix: prefix, cluster: target.name === 'cluster' });
    const db2 = await connectPg({ url: t.url, schema: t.schema, stateSchema: t.stateSchema, statementTimeoutMs: 30_000 });
    try {
      const [a, b] = await Promise.all([
        replay(db, redis, { fromDlq: true, failedDate: DAY, apply: true }),
        replay(db2, other, { fromDlq: true, failedDate: DAY, apply: true }),
      ]);
      expect(a.counts.added + b.counts.added).toBe(4);
      expect(a.counts.duplicates + b.counts.duplicates).toBe(4);
      const all = await entries(redis);
      expect(all).toHaveLength(4);
      expect(new Set(all.map((e) => e.event.history_id)).size).toBe(4);
    } finally {
      await closeRedis(other);
      await db2.close();
    }
  });

  it('--failed --date rebuilds from the rows: scheduler_retry, the row tenant or the user one', async () => {
    const r = await replay(db, redis, { failedDate: DAY, apply: true });
    expect(r.counts).toMatchObject({ candidates: 3, toPublish: 3, added: 3 });
    const byHistory = new Map((await entries(redis)).map((e) => [e.event.history_id, e.event]));
    expect([...byHistory.keys()].sort()).toEqual([...scene.failed].sort());
    expect(byHistory.get(scene.failed[0])).toMatchObject({ user_id: USERS[0], tenant_id: TENANT, trigger: 'scheduler_retry', digest_date: DAY, idempotency_key: `digest:${USERS[0]}:${DAY}` });
    expect(byHistory.get(scene.failedNoTenant)).toMatchObject({ user_id: USERS[2], tenant_id: OTHER_TENANT });
  });

  it('--history-id skips a sent or missing row unless --force; --force cannot rebuild a missing row', async () => {
    const plan = await replay(db, redis, { historyIds: [scene.pending, scene.sent, scene.missing] });
    expect(plan.events.map((e) => [e.action, e.reason])).toEqual([
      ['publish', null],
      ['skip', 'row already sent'],
      ['skip', 'row missing'],
    ]);
    const forced = await replay(db, redis, { historyIds: [scene.pending, scene.sent, scene.missing], force: true, apply: true });
    expect(forced.events.map((e) => e.action)).toEqual(['publish', 'publish', 'skip']);
    expect(forced.counts.added).toBe(2);
  });

  it('a failed row whose (user, day) has another row sent or in flight is skipped: it would send twice', async () => {
    const [sentLater, pendingLater] = await insertRows(t, [
      { userId: USERS[0], digestDate: DAY, status: 'sent', createdAt: '2025-11-25T16:00:00Z', sentAt: '2025-11-25T16:01:00Z' },
      { userId: USERS[1], digestDate: DAY, status: 'pending', createdAt: '2025-11-25T16:00:00Z' },
    ]);
    expect(sentLater && pendingLater).toBeTruthy();
    const r = await replay(db, redis, { failedDate: DAY });
    expect(Object.fromEntries(r.events.map((e) => [e.historyId, e.reason]))).toEqual({
      [scene.failed[0]!]: 'another row of the day is sent or in flight',
      [scene.failed[1]!]: 'another row of the day is sent or in flight',
      [scene.failedNoTenant]: null,
    });
    const forced = await replay(db, redis, { failedDate: DAY, force: true, apply: true });
    expect(forced.counts.added).toBe(3);
  });

  it('--force replays DLQ events whose row is sent or missing; --rate still adds each once', async () => {
    const r = await replay(db, redis, { fromDlq: true, force: true, apply: true, ratePerSec: 1000 });
    expect(r.counts).toMatchObject({ toPublish: 4, added: 4, invalid: 1 });
    expect(await redis.xlen(DIGEST_STREAM)).toBe(4);
  });
});
