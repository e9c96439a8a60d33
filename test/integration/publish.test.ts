import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIGEST_STREAM } from '../../src/core/contract.js';
import { buildEvent, parseEventJson } from '../../src/core/event.js';
import { connectRedis, closeRedis, isCluster, masters, versionAtLeast, type RedisClient } from '../../src/redis/connect.js';
import { BacklogStallError, cachedVersion, clientKeyPrefix, markerKeyFor, planPublish, publishBatch, publishIdempotent } from '../../src/redis/publish.js';
import { createGroup, startConsumer } from '../helpers/stream-consumer.js';
import { REDIS_TARGETS } from '../helpers/redis-targets.js';
import { SCRIPT_CODES, SCRIPTS, scriptSource, withScripts } from '../../src/redis/scripts.js';

const USER = '6af5e7d3-e736-46da-bfc1-42786f2ab1c0';
const TENANT = '0b7a43c2-9d4e-4b8a-9f1e-2c3d4e5f6a7b';

async function waitFor(check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

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

  it('the IDMP script, loaded as the others with its prelude, runs its prelude (group, backlog count) up to its XADD; before 8.6 the server refuses the IDMP argument there', async () => {
    const stream = `idmp:${DIGEST_STREAM}`;
    // two entries, the group has read the first: counting walks the entries after its last-delivered-id
    const read = (await client.xadd(stream, '*', 'data', '{}'))!;
    await client.xadd(stream, '*', 'data', '{}');
    await client.xgroup('CREATE', stream, 'digest-workers', read);
    const source = scriptSource(SCRIPTS.publishIdmp);
    const xaddLine = source.split('\n').findIndex((l) => l.includes("redis.call('XADD', s.key, 'IDMP'")) + 1;
    expect(xaddLine).toBeGreaterThan(1);
    // a backlog limit: openStream reads the group, atLimit counts the 1 unread entry
    const native = versionAtLeast(await cachedVersion(client), 8, 6);
    const call = withScripts(client).publishIdmp(stream, 'svc', 10_000, 'digest-workers', 10, 'iid-1', '{}');
    if (native) {
      const reply = (await call) as unknown[];
      expect(reply.slice(0, 3)).toEqual([2, 1, read]);
      expect(reply[4]).toBe(SCRIPT_CODES.ADDED);
    } else {
      // the first error is the XADD's own, at its line: nothing before it failed
      await expect(call).rejects.toThrow(new RegExp(`@user_script:${xaddLine}\\b`));
      expect(await client.xlen(stream)).toBe(2);
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

  describe('a marker blocks a repeat only while its entry is there or was delivered to the group', () => {
    const readAndAck = async (stream: string, count: number) => {
      const reply = (await client.xreadgroup('GROUP', 'digest-workers', 'digest-worker-1', 'COUNT', count, 'STREAMS', stream, '>')) as Array<[string, Array<[string, string[]]>]>;
      const ids = reply[0]![1].map(([id]) => id);
      await client.xack(stream, 'digest-workers', ...ids);
      return ids;
    };

    it('an entry trimmed before the group read it does not block: the event is added again and the marker moved', async () => {
      const stream = `m1:${DIGEST_STREAM}`;
      await createGroup(client, stream);
      const historyId = randomUUID();
      const first = await publishIdempotent(client, { stream, event: event(historyId) });
      expect(first.outcome).toBe('added');
      // the service's own traffic trims it before any worker read it
      await client.xtrim(stream, 'MAXLEN', 0);
      expect(await client.xlen(stream)).toBe(0);
      const again = await publishIdempotent(client, { stream, event: event(historyId) });
      expect(again.outcome).toBe('re-added');
      expect(again.duplicate).toBe(false);
      expect(again.id).not.toBe(first.id);
      expect(await client.xlen(stream)).toBe(1);
      expect(await client.get(first.markerKey)).toBe(again.id);
      // and the new entry blocks the next repeat, as an entry that is there does
      expect(await publishIdempotent(client, { stream, event: event(historyId) })).toMatchObject({ id: again.id, outcome: 'repeat', duplicate: true });
      // the group reads the event: once
      expect(await readAndAck(stream, 10)).toEqual([again.id]);
    });

    it('the same with no group at all (nobody can have read it) and after an XDEL instead of a trim', async () => {
      const stream = `m2:${DIGEST_STREAM}`;
      const h = randomUUID();
      const first = await publishIdempotent(client, { stream, event: event(h) });
      await client.xtrim(stream, 'MAXLEN', 0);
      expect((await publishIdempotent(client, { stream, event: event(h) })).outcome).toBe('re-added');
      const stream2 = `m3:${DIGEST_STREAM}`;
      await createGroup(client, stream2);
      const h2 = randomUUID();
      const a = await publishIdempotent(client, { stream: stream2, event: event(h2) });
      await client.xdel(stream2, a.id);
      const b = await publishIdempotent(client, { stream: stream2, event: event(h2) });
      expect(b.outcome).toBe('re-added');
      expect(first.id).not.toBe(b.id);
    });

    it('an entry delivered to the group and trimmed since blocks: the job was handed to a worker', async () => {
      const stream = `m4:${DIGEST_STREAM}`;
      await createGroup(client, stream);
      const historyId = randomUUID();
      const first = await publishIdempotent(client, { stream, event: event(historyId) });
      expect(await readAndAck(stream, 10)).toEqual([first.id]);
      await client.xtrim(stream, 'MAXLEN', 0);
      const again = await publishIdempotent(client, { stream, event: event(historyId) });
      expect(again).toMatchObject({ id: first.id, outcome: 'repeat-delivered', duplicate: true });
      expect(await client.xlen(stream)).toBe(0);
    });

    it('delivered but not acked (pending in the group) and still there: a plain repeat', async () => {
      const stream = `m5:${DIGEST_STREAM}`;
      await createGroup(client, stream);
      const historyId = randomUUID();
      const first = await publishIdempotent(client, { stream, event: event(historyId) });
      await client.xreadgroup('GROUP', 'digest-workers', 'digest-worker-1', 'COUNT', 10, 'STREAMS', stream, '>');
      expect(await publishIdempotent(client, { stream, event: event(historyId) })).toMatchObject({ id: first.id, outcome: 'repeat' });
      expect(await client.xlen(stream)).toBe(1);
    });

    it('only the named group counts: delivery to another group does not block for digest-workers', async () => {
      const stream = `m6:${DIGEST_STREAM}`;
      await createGroup(client, stream);
      await createGroup(client, stream, 'someone-else');
      const historyId = randomUUID();
      const first = await publishIdempotent(client, { stream, event: event(historyId) });
      await client.xreadgroup('GROUP', 'someone-else', 'x', 'COUNT', 10, 'STREAMS', stream, '>');
      await client.xtrim(stream, 'MAXLEN', 0);
      expect((await publishIdempotent(client, { stream, event: event(historyId) })).outcome).toBe('re-added');
      // and naming that group makes it count
      const h2 = randomUUID();
      const a = await publishIdempotent(client, { stream, event: event(h2), group: 'someone-else' });
      await client.xreadgroup('GROUP', 'someone-else', 'x', 'COUNT', 10, 'STREAMS', stream, '>');
      await client.xtrim(stream, 'MAXLEN', 0);
      expect(await publishIdempotent(client, { stream, event: event(h2), group: 'someone-else' })).toMatchObject({ id: a.id, outcome: 'repeat-delivered' });
      expect(first.id).not.toBe(a.id);
    });

    it('a marker holding something that is not an entry id is refused by name', async () => {
      const stream = `m7:${DIGEST_STREAM}`;
      const historyId = randomUUID();
      const marker = markerKeyFor(stream, historyId, { keyPrefix: clientKeyPrefix(client) });
      await client.set(marker, 'not-an-id');
      await expect(publishIdempotent(client, { stream, event: event(historyId) })).rejects.toMatchObject({ code: 'REFUSED', message: expect.stringContaining('not a stream entry id') });
      expect(await client.exists(stream)).toBe(0);
    });
  });

  describe('publishing paced to the group: never more unread entries than the limit under MAXLEN', () => {
    const plansFor = async (stream: string, n: number, maxlen: number) => {
      const version = await cachedVersion(client);
      return Array.from({ length: n }, () => planPublish({ stream, event: event(randomUUID()), maxlen }, version, clientKeyPrefix(client)));
    };

    it('publishBatch of 200 with MAXLEN 50 and a worker draining the group: every event delivered once, none trimmed', async () => {
      const stream = `p1:${DIGEST_STREAM}`;
      const consumer = await startConsumer({ url: cliArgs[1]!, keyPrefix: prefix, cluster: target.name === 'cluster', stream, count: 10 });
      try {
        const plans = await plansFor(stream, 200, 50);
        const results = await publishBatch(client, plans, { stallTimeoutMs: 10_000 });
        expect(results.filter((r) => r.outcome === 'added')).toHaveLength(200);
        await waitFor(() => consumer.read() >= 200);
        const expected = plans.map((p) => JSON.parse(p.json).history_id as string).sort();
        expect([...consumer.delivered.keys()].sort()).toEqual(expected);
        expect([...consumer.delivered.values()].every((n) => n === 1)).toBe(true);
      } finally {
        await consumer.stop();
      }
    });

    it('with nobody reading it stops at the limit (45 of MAXLEN 50) after the stall timeout; publishing again resumes without adding twice', async () => {
      const stream = `p2:${DIGEST_STREAM}`;
      await createGroup(client, stream);
      const plans = await plansFor(stream, 200, 50);
      const err = await publishBatch(client, plans, { stallTimeoutMs: 500 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BacklogStallError);
      // floor(0.9 * 50) = 45 unread at most; the first 45 plans published, 155 not sent
      expect(err).toMatchObject({ code: 'REFUSED', exitCode: 4, published: 45, remaining: 155 });
      expect((err as Error).message).toMatch(/published 45, 155 not sent/);
      expect(await client.xlen(stream)).toBe(45);
      // a single publish meets the same limit
      await expect(publishIdempotent(client, { stream, event: event(randomUUID()), maxlen: 50, stallTimeoutMs: 200 })).rejects.toBeInstanceOf(BacklogStallError);
      const consumer = await startConsumer({ url: cliArgs[1]!, keyPrefix: prefix, cluster: target.name === 'cluster', stream, count: 10 });
      try {
        const results = await publishBatch(client, plans, { stallTimeoutMs: 10_000 });
        expect(results.filter((r) => r.outcome === 'repeat' || r.outcome === 'repeat-delivered')).toHaveLength(45);
        expect(results.filter((r) => r.outcome === 'added')).toHaveLength(155);
        await waitFor(() => consumer.read() >= 200);
        expect(consumer.delivered.size).toBe(200);
        expect([...consumer.delivered.values()].every((n) => n === 1)).toBe(true);
      } finally {
        await consumer.stop();
      }
    });

    it('backlogLimit 0 turns pacing off (the old behaviour: MAXLEN trims what nobody read)', async () => {
      const stream = `p3:${DIGEST_STREAM}`;
      await createGroup(client, stream);
      const version = await cachedVersion(client);
      const plans = Array.from({ length: 300 }, () => planPublish({ stream, event: event(randomUUID()), maxlen: 50, backlogLimit: 0 }, version, clientKeyPrefix(client)));
      await publishBatch(client, plans);
      // MAXLEN ~ 50 trims whole nodes of 100 entries: fewer than 300 are left, none was read
      expect(await client.xlen(stream)).toBeLessThan(300);
    });
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
