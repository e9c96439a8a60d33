import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DIGEST_STREAM } from '../../src/core/contract.js';
import { fieldsToRecord, parseEventJson } from '../../src/core/event.js';
import { connectPg, type Db } from '../../src/postgres/db.js';
import { connectRedis, closeRedis, masters, type RedisClient } from '../../src/redis/connect.js';
import { replay } from '../../src/ops/replay.js';
import { createGroup, startConsumer } from '../helpers/stream-consumer.js';
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

  it('a dry run plans the DLQ replay, lists skips and malformed entries, and writes nothing; with no stream to publish to, it says so', async () => {
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
    // no stream under this prefix (the group is created in the tests that publish): not delivered, said as a finding
    expect(r.findings).toEqual([expect.objectContaining({ check: 'delivery', verdict: 'fail', items: [`${prefix}${DIGEST_STREAM}`] })]);
    expect(await redis.exists(DIGEST_STREAM)).toBe(0);
    expect(await markerCount(redis, prefix)).toBe(0);
  });

  it('--apply republishes both DLQ shapes as the service builds events; a second run adds nothing', async () => {
    await createGroup(redis, DIGEST_STREAM);
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
    await createGroup(redis, DIGEST_STREAM);
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
    await createGroup(redis, DIGEST_STREAM);
    const r = await replay(db, redis, { failedDate: DAY, apply: true });
    expect(r.counts).toMatchObject({ candidates: 3, toPublish: 3, added: 3 });
    const byHistory = new Map((await entries(redis)).map((e) => [e.event.history_id, e.event]));
    expect([...byHistory.keys()].sort()).toEqual([...scene.failed].sort());
    expect(byHistory.get(scene.failed[0])).toMatchObject({ user_id: USERS[0], tenant_id: TENANT, trigger: 'scheduler_retry', digest_date: DAY, idempotency_key: `digest:${USERS[0]}:${DAY}` });
    expect(byHistory.get(scene.failedNoTenant)).toMatchObject({ user_id: USERS[2], tenant_id: OTHER_TENANT });
  });

  it('--history-id skips a sent or missing row unless --force; --force cannot rebuild a missing row', async () => {
    await createGroup(redis, DIGEST_STREAM);
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

  it('a failed row whose (user, day) has another row sent or in flight is skipped: it would send twice; --force resends beside a sent row, never beside an in-flight one', async () => {
    await createGroup(redis, DIGEST_STREAM);
    const [sentLater, pendingLater] = await insertRows(t, [
      { userId: USERS[0], digestDate: DAY, status: 'sent', createdAt: '2025-11-25T16:00:00Z', sentAt: '2025-11-25T16:01:00Z' },
      { userId: USERS[1], digestDate: DAY, status: 'pending', createdAt: '2025-11-25T16:00:00Z' },
    ]);
    // the rows that make the failed ones a second send exist as described: same users, same day
    const { rows: written } = await t.client.query<{ id: string; user_id: string; digest_date: string; status: string }>(
      `SELECT id::text, user_id::text, digest_date::text, status FROM ${t.schema}.digest_history WHERE id = ANY($1::uuid[]) ORDER BY status`,
      [[sentLater, pendingLater]],
    );
    expect(written).toEqual([
      { id: pendingLater, user_id: USERS[1], digest_date: DAY, status: 'pending' },
      { id: sentLater, user_id: USERS[0], digest_date: DAY, status: 'sent' },
    ]);
    const r = await replay(db, redis, { failedDate: DAY });
    expect(Object.fromEntries(r.events.map((e) => [e.historyId, e.reason]))).toEqual({
      [scene.failed[0]!]: 'another row of the day is sent',
      [scene.failed[1]!]: 'another row of the day is in flight',
      [scene.failedNoTenant]: null,
    });
    const forced = await replay(db, redis, { failedDate: DAY, force: true, apply: true });
    expect(Object.fromEntries(forced.events.map((e) => [e.historyId, e.action]))).toEqual({ [scene.failed[0]!]: 'publish', [scene.failed[1]!]: 'skip', [scene.failedNoTenant]: 'publish' });
    expect(forced.counts.added).toBe(2);
    expect((await entries(redis)).map((e) => e.event.history_id).sort()).toEqual([scene.failed[0], scene.failedNoTenant].sort());
  });

  it('a replayed event trimmed before any worker read it is sent by the next replay (with or without --force); one a worker read is not', async () => {
    await createGroup(redis, DIGEST_STREAM);
    const first = await replay(db, redis, { historyIds: [scene.pending], apply: true });
    expect(first.counts).toMatchObject({ added: 1, reAdded: 0 });
    // the service's traffic trims it before any worker read it
    await redis.xtrim(DIGEST_STREAM, 'MAXLEN', 0);
    const second = await replay(db, redis, { historyIds: [scene.pending], apply: true });
    expect(second.counts).toMatchObject({ added: 1, reAdded: 1, duplicates: 0 });
    expect(second.events[0]).toMatchObject({ outcome: 're-added', duplicate: false });
    expect(second.events[0]!.entryId).not.toBe(first.events[0]!.entryId);
    await redis.xtrim(DIGEST_STREAM, 'MAXLEN', 0);
    const forced = await replay(db, redis, { historyIds: [scene.pending], apply: true, force: true });
    expect(forced.counts).toMatchObject({ added: 1, reAdded: 1 });
    // now a worker reads it, then it is trimmed: the job was handed over, nothing is added, and --force does not override that
    await redis.xreadgroup('GROUP', 'digest-workers', 'digest-worker-1', 'COUNT', 10, 'STREAMS', DIGEST_STREAM, '>');
    await redis.xtrim(DIGEST_STREAM, 'MAXLEN', 0);
    for (const force of [false, true]) {
      const r = await replay(db, redis, { historyIds: [scene.pending], apply: true, force });
      expect(r.counts).toMatchObject({ added: 0, duplicates: 1, deliveredGone: 1 });
      expect(r.events[0]).toMatchObject({ outcome: 'repeat-delivered', entryId: forced.events[0]!.entryId });
    }
    expect(await redis.xlen(DIGEST_STREAM)).toBe(0);
  });

  it('--force replays DLQ events whose row is sent or missing; --rate still adds each once', async () => {
    await createGroup(redis, DIGEST_STREAM);
    const r = await replay(db, redis, { fromDlq: true, force: true, apply: true, ratePerSec: 1000 });
    // the missing row's event is USERS[0]'s on DAY, as the embedded one before it: one digest per
    // (user, day) in a run, --force or not, so 3 of the 4 rebuildable events
    expect(r.counts).toMatchObject({ toPublish: 3, added: 3, invalid: 1 });
    expect(r.events.find((e) => e.sourceId === scene.dlqIds.missing)).toMatchObject({ action: 'skip', reason: 'another event of the day in this replay' });
    expect(await redis.xlen(DIGEST_STREAM)).toBe(3);
  });
});

describe.each(REDIS_TARGETS)('replay paced to the consumer group on $name Redis (200 events, --maxlen 50)', (target) => {
  const PACED_DAY = '2025-12-01';
  let t: TestSchema;
  let db: Db;
  let redis: RedisClient;
  let prefix: string;
  let url: string;
  let cleanupRedis: () => Promise<void>;
  let ids: string[];
  beforeAll(() => target.start());
  afterAll(() => target.stop());
  beforeEach(async () => {
    t = await createTestSchema();
    db = await connectPg({ url: t.url, schema: t.schema, stateSchema: t.stateSchema, statementTimeoutMs: 30_000 });
    let cliArgs: string[];
    ({ client: redis, prefix, cliArgs, cleanup: cleanupRedis } = await target.client());
    url = cliArgs[1]!;
    ids = (await failedRowsEachUser(t, 200, PACED_DAY)).map((r) => r.id);
  });
  afterEach(async () => {
    await db.close();
    await cleanupRedis();
    await t.cleanup();
  });
  const consumer = () => startConsumer({ url, keyPrefix: prefix, cluster: target.name === 'cluster', stream: DIGEST_STREAM, count: 10 });
  const waitRead = async (c: { read(): number }, n: number) => {
    const until = Date.now() + 20_000;
    while (c.read() < n && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  };

  it('with a worker draining the group: every event delivered once, none trimmed', async () => {
    const c = await consumer();
    try {
      const waits: number[] = [];
      const r = await replay(db, redis, { failedDate: PACED_DAY, apply: true, maxlen: 50, stallTimeoutMs: 10_000, onWait: (w) => waits.push(w.unread) });
      expect(r.counts).toMatchObject({ toPublish: 200, added: 200, duplicates: 0 });
      expect(r.pacing).toMatchObject({ group: 'digest-workers', maxlen: 50, backlogLimit: 45, groupExists: true, unreadBefore: 0 });
      // 200 events cannot all be unread under a limit of 45: the replay had to wait for the worker
      expect(waits.length).toBeGreaterThan(0);
      expect(Math.max(...waits)).toBeLessThanOrEqual(45);
      await waitRead(c, 200);
      expect([...c.delivered.keys()].sort()).toEqual([...ids].sort());
      expect([...c.delivered.values()].every((n) => n === 1)).toBe(true);
    } finally {
      await c.stop();
    }
  });

  it('with nobody reading: stops with exit 4 after the stall timeout, naming what was published; a rerun with a worker sends the rest, nothing twice', async () => {
    await createGroup(redis, DIGEST_STREAM);
    const err = await replay(db, redis, { failedDate: PACED_DAY, apply: true, maxlen: 50, stallTimeoutMs: 500 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'REFUSED', exitCode: 4 });
    expect((err as Error).message).toMatch(/45 of 200 events published \(45 added, 0 already there\), 155 not sent/);
    expect((err as Error).message).toMatch(/run the same replay again/);
    // nothing past the limit: the 45 are all there, unread
    expect(await redis.xlen(DIGEST_STREAM)).toBe(45);
    const c = await consumer();
    try {
      const r = await replay(db, redis, { failedDate: PACED_DAY, apply: true, maxlen: 50, stallTimeoutMs: 10_000 });
      expect(r.counts).toMatchObject({ added: 155, duplicates: 45 });
      await waitRead(c, 200);
      expect([...c.delivered.keys()].sort()).toEqual([...ids].sort());
      expect([...c.delivered.values()].every((n) => n === 1)).toBe(true);
    } finally {
      await c.stop();
    }
  });

  it('with no consumer group at all: refused up front whether or not the events fit, nothing published; with the group created as the worker does, published', async () => {
    for (const maxlen of [50, 1000]) {
      const err = await replay(db, redis, { failedDate: PACED_DAY, apply: true, maxlen }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'REFUSED', exitCode: 4 });
      expect((err as Error).message).toContain(`no stream ${prefix}${DIGEST_STREAM} under key prefix '${prefix}'`);
      expect((err as Error).message).toContain('nothing was published (200 events to replay)');
      expect(await redis.exists(DIGEST_STREAM)).toBe(0);
    }
    // a stream with entries but no group: refused too, the library's advice a bare redis-cli
    await redis.xadd(DIGEST_STREAM, '*', 'data', '{}');
    const err = await replay(db, redis, { failedDate: PACED_DAY, apply: true, maxlen: 1000 }).catch((e: unknown) => e);
    expect((err as Error).message).toContain(`stream ${prefix}${DIGEST_STREAM} has no consumer group "digest-workers"`);
    expect((err as Error).message).toContain(`: redis-cli XGROUP CREATE ${prefix}${DIGEST_STREAM} digest-workers 0 MKSTREAM`);
    expect(await redis.xlen(DIGEST_STREAM)).toBe(1);
    await createGroup(redis, DIGEST_STREAM);
    // 200 and the 1 entry before, unread, fit under MAXLEN 1000 (limit 900)
    const r = await replay(db, redis, { failedDate: PACED_DAY, apply: true, maxlen: 1000 });
    expect(r.counts.added).toBe(200);
    expect(r.pacing).toMatchObject({ groupExists: true, unreadBefore: 1 });
    expect(r.findings).toEqual([]);
  });
});

/** `n` failed rows of `day`, each of its own new user (tenant TENANT). Returns [id, user_id] in insertion order. */
async function failedRowsEachUser(t: TestSchema, n: number, day: string): Promise<Array<{ id: string; userId: string }>> {
  await t.client.query(`INSERT INTO ${t.schema}.tenants (id) VALUES ($1) ON CONFLICT DO NOTHING`, [TENANT]);
  const { rows } = await t.client.query<{ id: string; user_id: string }>(
    `WITH u AS (INSERT INTO ${t.schema}.users (id, tenant_id, telegram_id) SELECT gen_random_uuid(), $1, g FROM generate_series(1, $2) g RETURNING id)
     INSERT INTO ${t.schema}.digest_history (id, user_id, tenant_id, digest_date, content, status, created_at)
     SELECT gen_random_uuid(), u.id, $1, $3::date, '', 'failed', TIMESTAMPTZ '2025-12-03 06:00:00+00' FROM u RETURNING id::text, user_id::text`,
    [TENANT, n, day],
  );
  return rows.map((r) => ({ id: r.id, userId: r.user_id }));
}

describe.each(REDIS_TARGETS)('replay rechecks the (user, day)s right before each publish batch on $name Redis (150 events: batches of 100 and 50)', (target) => {
  const DAY3 = '2025-12-03';
  let t: TestSchema;
  let db: Db;
  let redis: RedisClient;
  let prefix: string;
  let cleanupRedis: () => Promise<void>;
  let rows: Array<{ id: string; userId: string }>;
  beforeAll(() => target.start());
  afterAll(() => target.stop());
  beforeEach(async () => {
    t = await createTestSchema();
    db = await connectPg({ url: t.url, schema: t.schema, stateSchema: t.stateSchema, statementTimeoutMs: 30_000 });
    ({ client: redis, prefix, cleanup: cleanupRedis } = await target.client());
    rows = await failedRowsEachUser(t, 150, DAY3);
    await createGroup(redis, DIGEST_STREAM);
  });
  afterEach(async () => {
    await db.close();
    await cleanupRedis();
    await t.cleanup();
  });

  it.each([false, true])('a row of the day that goes in flight after the plan, before its batch: that event is not published (--force %s), the other 148 are', async (force) => {
    const batches: string[][] = [];
    let clicked: { other: string; reused: string } | undefined;
    const r = await replay(db, redis, {
      failedDate: DAY3,
      apply: true,
      force,
      // between the plan and the second batch's recheck: in two (user, day)s of that batch a row goes in flight
      beforeRecheck: async (batch) => {
        batches.push(batch.map((e) => e.historyId!));
        if (batches.length !== 2) return;
        const [a, b] = batch;
        // a's user: a new pending row of the day (a worker placeholder, a second click's row)
        await insertRows(t, [{ userId: a!.userId!, digestDate: DAY3, status: 'pending', createdAt: new Date() }]);
        // b's user clicks: the newest row of the day is b's failed row, which the service sets back to pending and publishes itself
        await t.client.query(`UPDATE ${t.schema}.digest_history SET status = 'pending' WHERE id = $1`, [b!.historyId]);
        clicked = { other: a!.historyId!, reused: b!.historyId! };
      },
    });
    // the plan published every row (each user has only its failed row); the batches were 100 and 50 events
    expect(batches.map((b) => b.length)).toEqual([100, 50]);
    expect(new Set(batches.flat())).toEqual(new Set(rows.map((x) => x.id)));
    const { other, reused } = clicked!;
    const byId = new Map(r.events.map((e) => [e.historyId, e]));
    expect(byId.get(other)).toMatchObject({ action: 'skip', reason: 'another row of the day is in flight', skippedAt: 'publish', entryId: null, outcome: null });
    expect(byId.get(reused)).toMatchObject({ action: 'skip', reason: 'row went in flight', skippedAt: 'publish', entryId: null, outcome: null });
    const rest = rows.map((x) => x.id).filter((id) => id !== other && id !== reused);
    for (const id of rest) expect(byId.get(id)).toMatchObject({ action: 'publish', reason: null, skippedAt: null, outcome: 'added' });
    expect(r.counts).toMatchObject({ candidates: 150, toPublish: 148, skipped: 2, added: 148, duplicates: 0 });
    // the stream holds the 148, none for the two days that went in flight
    expect(await redis.xlen(DIGEST_STREAM)).toBe(148);
    expect((await entries(redis)).map((e) => e.event.history_id).sort()).toEqual([...rest].sort());
    // nothing was marked for them: a later replay looks at them again
    expect(await markerCount(redis, prefix)).toBe(148);
  });

  it('the dry run plans all 150 and calls no recheck: the rows are read once, nothing is written', async () => {
    let calls = 0;
    const r = await replay(db, redis, { failedDate: DAY3, beforeRecheck: () => void calls++ });
    expect(calls).toBe(0);
    expect(r.counts).toMatchObject({ toPublish: 150, skipped: 0 });
    expect(r.events.every((e) => e.skippedAt === null)).toBe(true);
    expect(await redis.xlen(DIGEST_STREAM)).toBe(0);
  });
});
