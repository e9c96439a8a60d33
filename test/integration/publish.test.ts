import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIGEST_STREAM } from '../../src/core/contract.js';
import { buildEvent, parseEventJson } from '../../src/core/event.js';
import { connectRedis, closeRedis, isCluster, masters, type RedisClient } from '../../src/redis/connect.js';
import { clientKeyPrefix, markerKeyFor, publishIdempotent } from '../../src/redis/publish.js';
import { REDIS_TARGETS } from '../helpers/redis-targets.js';
import { SCRIPTS, scriptSource } from '../../src/redis/scripts.js';

const USER = '6af5e7d3-e736-46da-bfc1-42786f2ab1c0';
const TENANT = '0b7a43c2-9d4e-4b8a-9f1e-2c3d4e5f6a7b';

function event(historyId: string) {
  return buildEvent({ userId: USER, tenantId: TENANT, digestDate: '2025-11-25', trigger: 'manual', historyId }, new Date(), randomUUID());
}

describe.each(REDIS_TARGETS)('publishIdempotent on $name Redis', (target) => {
  let client: RedisClient;
  let prefix: string;
  let cliArgs: string[];
  let cleanup: () => Promise<void>;
  beforeAll(() => target.start());
  afterAll(() => target.stop());
  beforeAll(async () => {
    ({ client, prefix, cliArgs, cleanup } = await target.client());
  });
  afterAll(() => cleanup());

  it('every script file compiles on the server (SCRIPT LOAD), the 8.6 IDMP one included', async () => {
    for (const file of Object.values(SCRIPTS)) {
      for (const node of masters(client)) expect(await node.script('LOAD', scriptSource(file))).toMatch(/^[0-9a-f]{40}$/);
    }
  });

  it('adds once; a repeat returns the first id and adds nothing', async () => {
    const stream = `s1:${DIGEST_STREAM}`;
    const historyId = randomUUID();
    const first = await publishIdempotent(client, { stream, event: event(historyId) });
    expect(first.duplicate).toBe(false);
    expect(first.mode).toBe('lua');
    const again = await publishIdempotent(client, { stream, event: event(historyId) });
    expect(first.outcome).toBe('added');
    expect(again).toEqual({ ...first, duplicate: true, outcome: 'repeat' });
    expect(await client.xlen(stream)).toBe(1);
    const [[id, fields]] = (await client.xrange(stream, '-', '+')) as Array<[string, string[]]>;
    expect(id).toBe(first.id);
    expect(fields[0]).toBe('data');
    const parsed = parseEventJson(fields[1]!);
    expect(parsed.ok && parsed.event.history_id).toBe(historyId);
    // the marker holds the entry id and expires (24 h by default)
    expect(await client.get(first.markerKey)).toBe(first.id);
    const ttl = await client.pttl(first.markerKey);
    expect(ttl).toBeGreaterThan(86_000_000);
    expect(ttl).toBeLessThanOrEqual(86_400_000);
  });

  it('a different history_id is a different job: it is added', async () => {
    const stream = `s2:${DIGEST_STREAM}`;
    await publishIdempotent(client, { stream, event: event(randomUUID()) });
    await publishIdempotent(client, { stream, event: event(randomUUID()) });
    expect(await client.xlen(stream)).toBe(2);
  });

  it('takes the marker key, TTL and MAXLEN as options', async () => {
    const stream = `s3:${DIGEST_STREAM}`;
    const markerKey = markerKeyFor(stream, 'custom-1', { keyPrefix: clientKeyPrefix(client), markerPrefix: 'mine:' });
    expect(markerKey.endsWith(':mine:custom-1')).toBe(true);
    const r = await publishIdempotent(client, { stream, event: event(randomUUID()), markerKey, markerTtlMs: 5_000, maxlen: 100 });
    expect(r.markerKey).toBe(markerKey);
    expect(await client.pttl(markerKey)).toBeLessThanOrEqual(5_000);
    // the marker key decides: another history under the same marker is a repeat
    const again = await publishIdempotent(client, { stream, event: event(randomUUID()), markerKey });
    expect(again.duplicate).toBe(true);
    expect(await client.xlen(stream)).toBe(1);
  });

  it('many parallel publishers on two clients add once and all get the first id', async () => {
    const stream = `s4:${DIGEST_STREAM}`;
    const other = await connectRedis({ url: cliArgs[1]!, keyPrefix: prefix, cluster: target.name === 'cluster' });
    try {
      const historyId = randomUUID();
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) => publishIdempotent(i % 2 ? client : other, { stream, event: event(historyId) })),
      );
      expect(await client.xlen(stream)).toBe(1);
      expect(new Set(results.map((r) => r.id)).size).toBe(1);
      expect(results.filter((r) => !r.duplicate)).toHaveLength(1);
    } finally {
      await closeRedis(other);
    }
  });

  it('refuses a marker key that holds another type, naming it, and adds nothing for it', async () => {
    const stream = `s6:${DIGEST_STREAM}`;
    const historyId = randomUUID();
    const marker = markerKeyFor(stream, historyId, { keyPrefix: clientKeyPrefix(client) });
    await client.sadd(marker, 'x');
    await expect(publishIdempotent(client, { stream, event: event(historyId) })).rejects.toMatchObject({ code: 'REFUSED', message: expect.stringContaining(marker) });
    expect(await client.exists(stream)).toBe(0);
  });

  it('refuses to publish into a key that is not a stream, with a named error', async () => {
    const stream = `s5:${DIGEST_STREAM}`;
    await client.set(stream, 'oops');
    await expect(publishIdempotent(client, { stream, event: event(randomUUID()) })).rejects.toMatchObject({ code: 'REFUSED', message: expect.stringContaining('is not a stream') });
  });
});

describe('marker keys on a real cluster', () => {
  const target = REDIS_TARGETS.find((t) => t.name === 'cluster')!;
  let client: RedisClient;
  let prefix: string;
  let cleanup: () => Promise<void>;
  beforeAll(() => target.start());
  afterAll(() => target.stop());
  beforeAll(async () => {
    ({ client, prefix, cleanup } = await target.client());
  });
  afterAll(() => cleanup());

  it('the marker of the real, untagged stream key hashes to the stream slot (CLUSTER KEYSLOT)', async () => {
    const node = masters(client)[0]!;
    expect(isCluster(client)).toBe(true);
    for (const keyPrefix of ['', prefix, 'app{tenant-7}:']) {
      const marker = markerKeyFor(DIGEST_STREAM, randomUUID(), { keyPrefix });
      const streamSlot = await node.call('CLUSTER', 'KEYSLOT', keyPrefix + DIGEST_STREAM);
      const markerSlot = await node.call('CLUSTER', 'KEYSLOT', keyPrefix + marker);
      expect(markerSlot).toBe(streamSlot);
    }
    // without the tag the two would land apart: that is why the marker carries it
    expect(await node.call('CLUSTER', 'KEYSLOT', `${DIGEST_STREAM}:idem:x`)).not.toBe(await node.call('CLUSTER', 'KEYSLOT', DIGEST_STREAM));
    // and the publish itself runs on the real key names without CROSSSLOT
    const r = await publishIdempotent(client, { stream: DIGEST_STREAM, event: event(randomUUID()) });
    expect(r.duplicate).toBe(false);
  });
});
