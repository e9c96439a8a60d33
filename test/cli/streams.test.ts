import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ErrorDocumentSchema } from '../../src/cli/error-document.js';
import { CONTEXT_STREAM, DIGEST_DLQ_GROUP, DIGEST_DLQ_STREAM, DIGEST_GROUP, DIGEST_STREAM } from '../../src/core/contract.js';
import { buildEvent, serializeEvent } from '../../src/core/event.js';
import type { RedisClient } from '../../src/redis/connect.js';
import { StreamsReportSchema } from '../../src/ops/streams.js';
import { runCli } from '../helpers/cli.js';
import { createTestSchema, insertRows, type TestSchema } from '../helpers/pg.js';
import { REDIS_TARGETS } from '../helpers/redis-targets.js';

const TENANT = '0b7a43c2-9d4e-4b8a-9f1e-2c3d4e5f6a7b';
const eventJson = (historyId: string, userId = randomUUID()) =>
  serializeEvent(buildEvent({ userId, tenantId: TENANT, digestDate: '2025-11-25', trigger: 'manual', historyId }, new Date(), randomUUID()));

/** A pipeline where everything was delivered and acked. */
async function healthy(client: RedisClient): Promise<void> {
  for (let i = 0; i < 3; i++) await client.xadd(DIGEST_STREAM, '*', 'data', eventJson(randomUUID()));
  await client.xgroup('CREATE', DIGEST_STREAM, DIGEST_GROUP, '0');
  const read = (await client.xreadgroup('GROUP', DIGEST_GROUP, 'digest-worker-1', 'COUNT', 10, 'STREAMS', DIGEST_STREAM, '>')) as Array<[string, Array<[string, string[]]>]>;
  await client.xack(DIGEST_STREAM, DIGEST_GROUP, ...read[0]![1].map(([id]) => id));
  await client.xgroup('CREATE', DIGEST_DLQ_STREAM, DIGEST_DLQ_GROUP, '$', 'MKSTREAM');
  await client.xadd(CONTEXT_STREAM, '*', 'data', eventJson(randomUUID()));
}

describe.each(REDIS_TARGETS)('digest-doctor streams (the built binary) on $name Redis', (target) => {
  let client: RedisClient;
  let cliArgs: string[];
  let cleanup: () => Promise<void>;
  beforeAll(() => target.start(), 120_000);
  afterAll(() => target.stop());
  beforeEach(async () => {
    ({ client, cliArgs, cleanup } = await target.client());
  });
  afterEach(() => cleanup());

  it('exits 0 on a healthy pipeline; --json parses with the exported schema', async () => {
    await healthy(client);
    const res = await runCli([...cliArgs, 'streams', '--json']);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const doc = StreamsReportSchema.parse(JSON.parse(res.stdout));
    expect(doc).toMatchObject({ schemaVersion: 1, command: 'streams', scan: null, summary: { healthy: true, warn: 0, fail: 0 } });
    expect(doc.server.cluster).toBe(target.name === 'cluster');
  });

  it('exits 1 with a doctor-style line per check, the fix under each problem, and a summary', async () => {
    await healthy(client);
    await client.xadd(DIGEST_STREAM, '*', 'data', eventJson(randomUUID()));
    await client.xreadgroup('GROUP', DIGEST_GROUP, 'someone-by-hand', 'COUNT', 1, 'STREAMS', DIGEST_STREAM, '>');
    await client.xadd(DIGEST_DLQ_STREAM, '*', 'data', JSON.stringify({ ...JSON.parse(eventJson(randomUUID())), dlq_reason: 'boom' }));
    const res = await runCli([...cliArgs, 'streams', '--stream', 'digests.generate', '--stream', 'digests.generate.dlq']);
    expect(res.code).toBe(1);
    expect(res.stdout).toMatch(/\[FAIL\] stream:digests:generate digest-workers stray-consumers: 1 consumer not named digest-worker-<pid>.*someone-by-hand \(1 pending\)/);
    expect(res.stdout).toMatch(/\[warn\] stream:digests:generate:dlq dlq-empty: DLQ holds 1 entry /);
    expect(res.stdout).toMatch(/fix: hand their entries to a worker/);
    expect(res.stdout).toMatch(/\[ok {2}\] stream:digests:generate digest-workers poison/);
    expect(res.stdout).toMatch(/problems found: \d+ ok, 1 warn, 1 fail/);
    expect(res.stdout).not.toContain(CONTEXT_STREAM);
    expect(res.stdout).not.toMatch(/\x1b\[/);
  });

  it('--scan --json reports duplicates and malformed entries, exit 1', async () => {
    const h = randomUUID();
    const first = await client.xadd(DIGEST_STREAM, '*', 'data', eventJson(h));
    const second = await client.xadd(DIGEST_STREAM, '*', 'data', eventJson(h));
    const bad = await client.xadd(DIGEST_STREAM, '*', 'data', 'not json at all');
    const res = await runCli([...cliArgs, 'streams', '--scan', '--stream', DIGEST_STREAM, '--json', '--page-size', '2']);
    expect(res.code).toBe(1);
    const doc = StreamsReportSchema.parse(JSON.parse(res.stdout));
    const scan = doc.scan!.streams[0]!;
    expect(scan.duplicates.examples).toEqual([{ historyId: h, count: 2, entryIds: [first, second] }]);
    expect(scan.malformed.examples.map((m) => m.id)).toEqual([bad]);
    expect(doc.scan!.database).toBe(false);
  });
});

describe('digest-doctor streams --scan with a database', () => {
  let t: TestSchema;
  let client: RedisClient;
  let cliArgs: string[];
  let cleanup: () => Promise<void>;
  const standalone = REDIS_TARGETS.find((x) => x.name === 'standalone')!;
  beforeEach(async () => {
    t = await createTestSchema();
    ({ client, cliArgs, cleanup } = await standalone.client());
  });
  afterEach(async () => {
    await cleanup();
    await t.cleanup();
  });

  it('finds events for rows already sent and for rows that do not exist', async () => {
    const user = randomUUID();
    const [sent] = await insertRows(t, [{ userId: user, digestDate: '2025-11-25', status: 'sent', createdAt: '2025-11-25T06:00:00Z', sentAt: '2025-11-25T06:01:00Z' }]);
    const missing = randomUUID();
    await client.xadd(DIGEST_STREAM, '*', 'data', eventJson(sent!, user));
    await client.xadd(DIGEST_STREAM, '*', 'data', eventJson(missing));
    const res = await runCli([...t.cliArgs, ...cliArgs, 'streams', '--scan', '--stream', DIGEST_STREAM, '--json']);
    expect(res.code).toBe(1);
    const doc = StreamsReportSchema.parse(JSON.parse(res.stdout));
    expect(doc.scan!.database).toBe(true);
    const rows = doc.scan!.streams[0]!.rows!;
    expect(rows.sent.examples.map((e) => e.historyId)).toEqual([sent]);
    expect(rows.missing.examples.map((e) => e.historyId)).toEqual([missing]);
  });
});

describe('digest-doctor streams: bad input and unreachable servers', () => {
  it('a bad threshold is exit 2 with one line naming the flag', async () => {
    const res = await runCli(['--redis-url', 'redis://127.0.0.1:6379', 'streams', '--max-lag', 'lots']);
    expect(res.code).toBe(2);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr).toContain('--max-lag');
    const idle = await runCli(['--redis-url', 'redis://127.0.0.1:6379', 'streams', '--idle', '10 minutes', '--json']);
    expect(idle.code).toBe(2);
    expect(ErrorDocumentSchema.parse(JSON.parse(idle.stdout)).error.code).toBe('BAD_INPUT');
  });

  it('no Redis configured reads the local default; an unreachable one is exit 3', async () => {
    // the default is 127.0.0.1:6379, the suite's own server: under a prefix nothing uses, every default stream is missing (warn)
    const local = await runCli(['--key-prefix', `dd-default-${process.pid}:`, 'streams']);
    expect(local.code).toBe(1);
    expect(local.stdout).toMatch(/stream:digests:generate exists: stream does not exist/);
    const res = await runCli(['--redis-url', 'redis://127.0.0.1:1', 'streams', '--json']);
    expect(res.code).toBe(3);
    expect(ErrorDocumentSchema.parse(JSON.parse(res.stdout)).error.code).toBe('UNREACHABLE');
  });
});
