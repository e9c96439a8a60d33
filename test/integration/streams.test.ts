import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CONTEXT_STREAM, DIGEST_DLQ_GROUP, DIGEST_DLQ_STREAM, DIGEST_GROUP, DIGEST_STREAM } from '../../src/core/contract.js';
import { buildEvent, serializeEvent } from '../../src/core/event.js';
import type { StreamFinding } from '../../src/core/stream-health.js';
import { connectPg, type Db } from '../../src/postgres/db.js';
import type { RedisClient } from '../../src/redis/connect.js';
import { streamKeyPrefixes } from '../../src/redis/stream-info.js';
import { streamsReport, StreamsReportSchema, type StreamsInput, type StreamsReport } from '../../src/ops/streams.js';
import { createTestSchema, insertRows, type TestSchema } from '../helpers/pg.js';
import { REDIS_TARGETS } from '../helpers/redis-targets.js';

const TENANT = '0b7a43c2-9d4e-4b8a-9f1e-2c3d4e5f6a7b';
const DAY = '2025-11-25';

function eventJson(historyId: string, userId: string = randomUUID()): string {
  return serializeEvent(buildEvent({ userId, tenantId: TENANT, digestDate: DAY, trigger: 'scheduler', historyId }, new Date(), randomUUID()));
}

async function addEvents(client: RedisClient, key: string, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push((await client.xadd(key, '*', 'data', eventJson(randomUUID())))!);
  return ids;
}

const find = (r: StreamsReport, stream: string, check: string, group: string | null = null): StreamFinding => {
  const f = r.findings.find((x) => x.stream === stream && x.check === check && (group === null || x.group === group));
  if (!f) throw new Error(`no ${check} finding for ${stream} ${group ?? ''}: ${JSON.stringify(r.findings.map((x) => [x.stream, x.group, x.check]))}`);
  return f;
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(REDIS_TARGETS)('streams on $name Redis', (target) => {
  let client: RedisClient;
  let prefix: string;
  let cleanup: () => Promise<void>;
  beforeAll(() => target.start(), 120_000);
  afterAll(() => target.stop());
  beforeEach(async () => {
    ({ client, prefix, cleanup } = await target.client());
  });
  afterEach(() => cleanup());

  const report = async (input: Partial<StreamsInput> = {}) =>
    StreamsReportSchema.parse(await streamsReport(client, undefined, { streams: [], discover: false, keyPrefix: prefix, ...input }));

  it('plants every health finding on the digest stream and finds each', async () => {
    const ids = await addEvents(client, DIGEST_STREAM, 10);
    await client.xgroup('CREATE', DIGEST_STREAM, DIGEST_GROUP, '0');
    // a worker takes three entries; the first is redelivered twice more (poison)
    await client.xreadgroup('GROUP', DIGEST_GROUP, 'digest-worker-4242', 'COUNT', 3, 'STREAMS', DIGEST_STREAM, '>');
    await client.xclaim(DIGEST_STREAM, DIGEST_GROUP, 'digest-worker-4242', 0, ids[0]!);
    await client.xclaim(DIGEST_STREAM, DIGEST_GROUP, 'digest-worker-4242', 0, ids[0]!);
    // someone diagnosing by hand read one through the group
    await client.xreadgroup('GROUP', DIGEST_GROUP, 'alice-debug', 'COUNT', 1, 'STREAMS', DIGEST_STREAM, '>');
    // MAXLEN trims the first five: four pending ids dangle, and ids[4] was never delivered
    await client.xtrim(DIGEST_STREAM, 'MAXLEN', 5);
    await client.xadd(DIGEST_DLQ_STREAM, '*', 'original_stream', DIGEST_STREAM, 'original_message_id', ids[0]!, 'error', 'boom', 'retry_count', '3', 'failed_at', new Date().toISOString(), 'data', eventJson(randomUUID()));
    await client.xadd(DIGEST_DLQ_STREAM, '*', 'data', JSON.stringify({ ...JSON.parse(eventJson(randomUUID())), dlq_reason: 'max_retries', retry_count: 3, origin_stream: DIGEST_STREAM }));
    await client.xgroup('CREATE', DIGEST_DLQ_STREAM, DIGEST_DLQ_GROUP, '$');
    await addEvents(client, CONTEXT_STREAM, 1);
    await sleep(20);

    const r = await report({ thresholds: { maxPending: 2, idleMs: 5 } });
    expect(r.summary.healthy).toBe(false);
    expect(r.streams.map((s) => s.key)).toEqual([DIGEST_STREAM, DIGEST_DLQ_STREAM, CONTEXT_STREAM]);
    const main = r.streams[0]!;
    expect(main.info).toMatchObject({ length: 5, firstEntryId: ids[5], lastEntryId: ids[9], entriesAdded: 10, lastGeneratedId: ids[9] });
    const g = main.groups[0]!;
    expect(g).toMatchObject({ name: DIGEST_GROUP, pending: 4, consumers: 2, lastDeliveredId: ids[3] });
    expect(g.pendingSummary).toMatchObject({ count: 4, oldestId: ids[0], complete: true });
    expect(g.pendingSummary.mostDelivered).toMatchObject({ id: ids[0], deliveries: 3 });

    expect(find(r, DIGEST_STREAM, 'group').verdict).toBe('ok');
    expect(find(r, DIGEST_STREAM, 'pending')).toMatchObject({ verdict: 'warn' });
    const idle = find(r, DIGEST_STREAM, 'idle-consumers');
    expect(idle.verdict).toBe('warn');
    expect(idle.items.sort()).toEqual(['alice-debug', 'digest-worker-4242']);
    expect(find(r, DIGEST_STREAM, 'stray-consumers')).toMatchObject({ verdict: 'fail', items: ['alice-debug'] });
    const trimmed = find(r, DIGEST_STREAM, 'trimmed');
    expect(trimmed.verdict).toBe('fail');
    expect(trimmed.message).toContain('(1)');
    const dangling = find(r, DIGEST_STREAM, 'dangling');
    expect(dangling.verdict).toBe('warn');
    expect(dangling.items).toEqual(ids.slice(0, 4));
    expect(find(r, DIGEST_STREAM, 'poison')).toMatchObject({ verdict: 'fail', items: [ids[0]] });
    expect(find(r, DIGEST_DLQ_STREAM, 'dlq-empty')).toMatchObject({ verdict: 'warn' });
    expect(find(r, DIGEST_DLQ_STREAM, 'group', DIGEST_DLQ_GROUP).verdict).toBe('ok');
    expect(find(r, CONTEXT_STREAM, 'exists').verdict).toBe('ok');
    // every failing check carries its fix; passing ones none
    for (const f of r.findings) expect(f.fix === null).toBe(f.verdict === 'ok');
  });

  it('streamKeyPrefixes names the prefixes a stream key lives under (streams only), and stops at its SCAN budget', async () => {
    const key = `probe:${randomUUID()}`;
    await client.xadd(key, '*', 'f', '1'); // under the client's own prefix
    await client.xadd(`other:${key}`, '*', 'f', '1');
    await client.set(`plain:${key}`, 'not a stream');
    expect(await streamKeyPrefixes(client, key)).toEqual([prefix, `${prefix}other:`]);
    // `limit` 1: whichever SCAN meets first, one of the two
    const one = await streamKeyPrefixes(client, key, 1);
    expect(one).toHaveLength(1);
    expect([prefix, `${prefix}other:`]).toContain(one[0]);
    // no SCAN call allowed: nothing is looked at, so nothing is found
    expect(await streamKeyPrefixes(client, key, 5, 0)).toEqual([]);
  });

  it('a healthy pipeline is all ok: worker acked everything, DLQ empty', async () => {
    await addEvents(client, DIGEST_STREAM, 3);
    await client.xgroup('CREATE', DIGEST_STREAM, DIGEST_GROUP, '0');
    const read = (await client.xreadgroup('GROUP', DIGEST_GROUP, 'digest-worker-7', 'COUNT', 10, 'STREAMS', DIGEST_STREAM, '>')) as Array<[string, Array<[string, string[]]>]>;
    await client.xack(DIGEST_STREAM, DIGEST_GROUP, ...read[0]![1].map(([id]) => id));
    await client.xgroup('CREATE', DIGEST_DLQ_STREAM, DIGEST_DLQ_GROUP, '$', 'MKSTREAM');
    await addEvents(client, CONTEXT_STREAM, 1);
    const r = await report();
    expect(r.findings.filter((f) => f.verdict !== 'ok')).toEqual([]);
    expect(r.summary).toMatchObject({ healthy: true, warn: 0, fail: 0 });
    expect(r.streams[0]!.groups[0]).toMatchObject({ lag: 0, pending: 0, entriesRead: 3 });
  });

  it('reports a missing stream and a missing expected group without crashing', async () => {
    await addEvents(client, DIGEST_STREAM, 2);
    await client.set('stream:digests:context:prepared', 'not a stream');
    const r = await report();
    expect(find(r, DIGEST_STREAM, 'group')).toMatchObject({ verdict: 'fail', group: DIGEST_GROUP });
    expect(find(r, DIGEST_DLQ_STREAM, 'dlq-empty').verdict).toBe('ok');
    expect(r.streams[1]).toMatchObject({ state: 'missing', info: null });
    expect(find(r, CONTEXT_STREAM, 'exists')).toMatchObject({ verdict: 'fail' });
    expect(r.streams[2]).toMatchObject({ state: 'wrong-type', type: 'string' });
  });

  it('lag over the threshold warns; lag is counted from ids where Redis gives up, and unknown (with bounds) only where nothing tells', async () => {
    const ids = await addEvents(client, DIGEST_STREAM, 5);
    await client.xgroup('CREATE', DIGEST_STREAM, DIGEST_GROUP, '0');
    let r = await report({ streams: [DIGEST_STREAM], thresholds: { maxLag: 2 } });
    expect(r.streams[0]!.groups[0]!.lag).toBe(5);
    expect(find(r, DIGEST_STREAM, 'lag')).toMatchObject({ verdict: 'warn' });
    // deleting an entry in the unread range makes Redis give up on lag; the group is before the first
    // entry, so every one of the 4 left is still to deliver
    await client.xdel(DIGEST_STREAM, ids[1]!);
    r = await report({ streams: [DIGEST_STREAM], thresholds: { maxLag: 2 } });
    expect(r.streams[0]!.groups[0]!).toMatchObject({ redisLag: null, lag: 4, lagSource: 'ids' });
    // the group reads ids[0] and ids[2]; ids[3] is deleted after it: Redis gives up again, and with the
    // group between the first and the last entry only 1..2 (length 3 minus the first) is known (it is 1)
    await client.xreadgroup('GROUP', DIGEST_GROUP, 'digest-worker-1', 'COUNT', 2, 'STREAMS', DIGEST_STREAM, '>');
    await client.xdel(DIGEST_STREAM, ids[3]!);
    r = await report({ streams: [DIGEST_STREAM], thresholds: { maxLag: 2 } });
    expect(r.streams[0]!.groups[0]!).toMatchObject({ redisLag: null, lag: null, lagMin: 1, lagMax: 2, lagSource: 'bounds' });
  });

  it('discovers stream:digests:* streams on every master, with the key prefix added and stripped', async () => {
    const extra = ['stream:digests:context:prepared:dlq', 'stream:digests:other', 'stream:digests:third'];
    for (const k of extra) await addEvents(client, k, 1);
    await client.set('stream:digests:not-a-stream', 'x');
    const r = await report();
    expect(r.streams.map((s) => s.key).sort()).toEqual([DIGEST_STREAM, DIGEST_DLQ_STREAM, CONTEXT_STREAM, ...extra].sort());
    // named streams only, unless --discover
    const named = await report({ streams: ['stream:digests:other'] });
    expect(named.streams.map((s) => s.key)).toEqual(['stream:digests:other']);
    const both = await report({ streams: ['stream:digests:other'], discover: true });
    expect(both.streams.map((s) => s.key).sort()).toEqual([...extra].sort());
  });

  it('scan: duplicate history_ids, idempotency keys with several history_ids, malformed entries of every kind', async () => {
    const dup = randomUUID();
    const user = randomUUID();
    const a = await client.xadd(DIGEST_STREAM, '*', 'data', eventJson(dup));
    await addEvents(client, DIGEST_STREAM, 3);
    const b = await client.xadd(DIGEST_STREAM, '*', 'data', eventJson(dup));
    const c = await client.xadd(DIGEST_STREAM, '*', 'data', eventJson(dup));
    const h1 = randomUUID();
    const h2 = randomUUID();
    await client.xadd(DIGEST_STREAM, '*', 'data', eventJson(h1, user));
    await client.xadd(DIGEST_STREAM, '*', 'data', eventJson(h2, user));
    const notJson = await client.xadd(DIGEST_STREAM, '*', 'data', '{not json');
    const badSchema = await client.xadd(DIGEST_STREAM, '*', 'data', JSON.stringify({ user_id: 'nope', digest_date: DAY }));
    const noData = await client.xadd(DIGEST_STREAM, '*', 'payload', '{}');
    await client.xadd(DIGEST_DLQ_STREAM, '*', 'original_stream', DIGEST_STREAM, 'original_message_id', a!, 'error', 'x', 'retry_count', '3', 'failed_at', 'now', 'data', eventJson(randomUUID()));
    await client.xadd(DIGEST_DLQ_STREAM, '*', 'data', JSON.stringify({ ...JSON.parse(eventJson(randomUUID())), dlq_reason: 'r', retry_count: 3 }));
    const badDlq = await client.xadd(DIGEST_DLQ_STREAM, '*', 'data', JSON.stringify({ dlq_reason: 'r' }));

    const r = await report({ scan: { pageSize: 3, examples: 10, idsPerExample: 10, batchSize: 2 } });
    const main = r.scan!.streams.find((s) => s.key === DIGEST_STREAM)!;
    expect(main).toMatchObject({ entries: 11, valid: 8, distinctHistoryIds: 6, rows: null });
    expect(main.duplicates).toEqual({ historyIds: 1, extraEntries: 2, examples: [{ historyId: dup, count: 3, entryIds: [a, b, c] }] });
    expect(main.idempotencyConflicts.keys).toBe(1);
    expect(main.idempotencyConflicts.examples[0]).toEqual({ key: `digest:${user}:${DAY}`, historyIds: [h1, h2] });
    expect(main.malformed.count).toBe(3);
    expect(main.malformed.examples.map((m) => m.id)).toEqual([notJson, badSchema, noData]);
    expect(main.malformed.examples[0]!.error).toMatch(/not JSON/);
    expect(main.malformed.examples[1]!.error).toMatch(/user_id/);
    const dlq = r.scan!.streams.find((s) => s.key === DIGEST_DLQ_STREAM)!;
    expect(dlq).toMatchObject({ dlq: true, entries: 3, valid: 2 });
    expect(dlq.malformed.examples.map((m) => m.id)).toEqual([badDlq]);
    expect(find(r, DIGEST_STREAM, 'scan-duplicates')).toMatchObject({ verdict: 'warn', items: [dup] });
    expect(find(r, DIGEST_STREAM, 'scan-idempotency')).toMatchObject({ verdict: 'warn', items: [`digest:${user}:${DAY}`] });
    expect(find(r, DIGEST_STREAM, 'scan-malformed')).toMatchObject({ verdict: 'fail' });
    // by default only the streams of DigestGenerateEvent are read whole
    expect(r.scan!.streams.map((s) => s.key)).toEqual([DIGEST_STREAM, DIGEST_DLQ_STREAM]);
    // a named stream that does not exist is scanned as empty, no crash
    const none = await report({ streams: [CONTEXT_STREAM], scan: { pageSize: 3, examples: 10, idsPerExample: 10, batchSize: 2 } });
    expect(none.scan!.streams).toMatchObject([{ key: CONTEXT_STREAM, exists: false, entries: 0 }]);
  });

  it('scan caps the listed examples but counts every case', async () => {
    for (let i = 0; i < 6; i++) {
      const h = randomUUID();
      for (let j = 0; j < 3; j++) await client.xadd(DIGEST_STREAM, '*', 'data', eventJson(h));
    }
    const r = await report({ streams: [DIGEST_STREAM], scan: { pageSize: 4, examples: 2, idsPerExample: 2, batchSize: 10 } });
    const d = r.scan!.streams[0]!.duplicates;
    expect(d.historyIds).toBe(6);
    expect(d.extraEntries).toBe(12);
    expect(d.examples).toHaveLength(2);
    expect(d.examples[0]!.entryIds).toHaveLength(2);
    expect(d.examples[0]!.count).toBe(3);
  });

  describe('scan with a database', () => {
    let t: TestSchema;
    let db: Db;
    beforeEach(async () => {
      t = await createTestSchema();
      db = await connectPg({ url: t.url, schema: t.schema, stateSchema: t.stateSchema, statementTimeoutMs: 10_000 });
    });
    afterEach(async () => {
      await db.close();
      await t.cleanup();
    });

    it('finds events whose row is already sent or does not exist', async () => {
      const user = randomUUID();
      const [sent, pending] = await insertRows(t, [
        { userId: user, digestDate: DAY, status: 'sent', createdAt: '2025-11-25T06:00:00Z', sentAt: '2025-11-25T06:01:00Z' },
        { userId: user, digestDate: '2025-11-26', status: 'pending', createdAt: '2025-11-26T06:00:00Z' },
      ]);
      const missing = randomUUID();
      const sentEntry = await client.xadd(DIGEST_STREAM, '*', 'data', eventJson(sent!, user));
      await client.xadd(DIGEST_STREAM, '*', 'data', eventJson(pending!, user));
      const missingEntry = await client.xadd(DIGEST_STREAM, '*', 'data', eventJson(missing, user));
      await client.xadd(DIGEST_STREAM, '*', 'data', eventJson(sent!, user));
      const r = StreamsReportSchema.parse(
        await streamsReport(client, db, { streams: [DIGEST_STREAM], discover: false, keyPrefix: prefix, scan: { pageSize: 2, examples: 10, idsPerExample: 10, batchSize: 1 } }),
      );
      const rows = r.scan!.streams[0]!.rows!;
      expect(rows.checked).toBe(3);
      expect(rows.sent).toEqual({ count: 1, examples: [{ historyId: sent, firstEntryId: sentEntry, entries: 2 }] });
      expect(rows.missing).toEqual({ count: 1, examples: [{ historyId: missing, firstEntryId: missingEntry, entries: 1 }] });
      expect(find(r, DIGEST_STREAM, 'scan-sent')).toMatchObject({ verdict: 'warn', items: [sent] });
      expect(find(r, DIGEST_STREAM, 'scan-missing')).toMatchObject({ verdict: 'warn', items: [missing] });
    });
  });

  it('never reads through a group: no consumer is created, nothing becomes pending', async () => {
    await addEvents(client, DIGEST_STREAM, 4);
    await client.xgroup('CREATE', DIGEST_STREAM, DIGEST_GROUP, '0');
    await report({ scan: { pageSize: 2, examples: 5, idsPerExample: 5, batchSize: 10 } });
    const groups = (await client.xinfo('GROUPS', DIGEST_STREAM)) as unknown[][];
    expect(groups[0]).toEqual(expect.arrayContaining(['consumers', 0, 'pending', 0]));
  });
});
