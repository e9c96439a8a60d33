import type { Cluster } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { closeRedis, connectRedis, masters, type RedisClient } from '../../src/redis/connect.js';
import { canReadRaw, xrangePages, xrangeRawPages, type RawEntry } from '../../src/redis/stream-reader.js';
import { redisUrl } from '../helpers/redis.js';
import { REDIS_TARGETS } from '../helpers/redis-targets.js';
import { DIGEST_STREAM } from '../../src/core/contract.js';
import { ScanAccumulator } from '../../src/core/stream-scan/index.js';
import { scanStream } from '../../src/ops/streams.js';

/** A raw page as xrangePages would give it: [id, [field, value]] with only the data field kept. */
function decode(page: { bytes: Buffer; at: Int32Array; count: number }): Array<[string, string | null]> {
  const out: Array<[string, string | null]> = [];
  for (let k = 0; k < page.count * 4; k += 4) {
    const id = page.bytes.toString('latin1', page.at[k]!, page.at[k + 1]!);
    out.push([id, page.at[k + 2]! < 0 ? null : page.bytes.toString('utf8', page.at[k + 2]!, page.at[k + 3]!)]);
  }
  return out;
}
const dataOf = (e: RawEntry): string | null => {
  let d: string | null = null;
  for (let i = 0; i + 1 < e[1].length; i += 2) if (e[1][i] === 'data') d = e[1][i + 1]!;
  return d;
};

describe.each(REDIS_TARGETS)('xrangeRawPages on $name Redis', (target) => {
  let client: RedisClient;
  let prefix: string;
  let cleanup: () => Promise<void>;
  beforeAll(() => target.start(), 120_000);
  afterAll(() => target.stop());
  beforeEach(async () => {
    ({ client, prefix, cleanup } = await target.client());
  });
  afterEach(() => cleanup());

  it('reads the same entries as xrangePages, page by page, under the key prefix, on whichever node holds the key', async () => {
    expect(canReadRaw(client)).toBe(true);
    // keys in several hash slots: on a cluster some live on another node than the first (MOVED)
    const keys = ['{a}:s', '{b}:s', '{c}:s', '{d}:s', '{e}:s', '{f}:s'];
    for (const key of keys) {
      const p = client.pipeline();
      for (let i = 0; i < 23; i++) {
        if (i === 5) p.xadd(key, '*', 'other', 'x');
        else if (i === 6) p.xadd(key, '*', 'data', 'é "quoted" \r\n', 'data', `last ${i}`);
        else p.xadd(key, '*', 'data', `{"n":${i},"text":"${'x'.repeat(i * 500)}"}`, 'tail', 'y');
      }
      await p.exec();
    }
    for (const key of keys) {
      for (const pageSize of [1, 5, 23, 100]) {
        const raw: Array<Array<[string, string | null]>> = [];
        for await (const page of xrangeRawPages(client, key, { pageSize })) raw.push(decode(page));
        const viaClient: Array<Array<[string, string | null]>> = [];
        for await (const page of xrangePages(client, key, { pageSize })) viaClient.push(page.map((e) => [e[0], dataOf(e)]));
        expect(raw, `${key} pages of ${pageSize}`).toEqual(viaClient);
        expect(raw.flat()).toHaveLength(23);
      }
      const ranged: string[] = [];
      const all: string[] = [];
      for await (const page of xrangePages(client, key, { pageSize: 100 })) all.push(...page.map((e) => e[0]));
      for await (const page of xrangeRawPages(client, key, { pageSize: 4, start: all[3], end: all[17] })) ranged.push(...decode(page).map((e) => e[0]));
      expect(ranged).toEqual(all.slice(3, 18));
    }
    if (target.name === 'cluster') {
      // the reader starts at the first master: some of the keys must have been found by MOVED
      const first = masters(client)[0]!;
      const firstNode = `${first.options.host}:${first.options.port}`;
      const slots = (client as Cluster).slots;
      const holders = await Promise.all(keys.map(async (k) => slots[Number(await first.call('CLUSTER', 'KEYSLOT', prefix + k))]![0]));
      expect(holders.filter((h) => h !== firstNode).length).toBeGreaterThan(0);
    }
  });

  it('scanStream (raw pages) reports exactly what the ioredis pages fed to ScanAccumulator.add report', async () => {
    const user = randomUUID();
    const ev = (over: Record<string, unknown> = {}) =>
      JSON.stringify({ schema_version: 'v1', idempotency_key: `digest:${user}:2025-11-25`, user_id: user, tenant_id: randomUUID(), digest_date: '2025-11-25', trigger: 'manual', history_id: randomUUID(), ...over });
    const dup = randomUUID();
    const values = [
      ev({ history_id: dup }), ev({ history_id: dup.toUpperCase() }), ev(), ev({ requested_by: 'José \\ "x"' }), ev({ window_size_hours: 12 }),
      ev({ window_size_hours: 5 }), ev({ digest_date: '2024-02-29' }), ev({ user_id: 'nope' }), '{"user_id":', 'plain text', ev({ history_id: null }),
      ev({ idempotency_key: 'other', history_id: dup }), ` ${ev({ extra: [1, { a: 'b' }] })}\n`,
    ];
    const key = DIGEST_STREAM;
    for (let i = 0; i < 60; i++) await client.xadd(key, '*', 'data', values[i % values.length]!);
    await client.xadd(key, '*', 'other', 'no data field');
    const opts = { pageSize: 7, examples: 50, idsPerExample: 50, batchSize: 100 };
    const got = await scanStream(client, undefined, key, true, opts);
    const acc = new ScanAccumulator({ examples: 50, idsPerExample: 50 });
    for await (const page of xrangePages(client, key, { pageSize: 7 })) for (const [id, flat] of page) acc.add(id, flat, false);
    const { durationMs: _, key: __, dlq: ___, exists: ____, rows: _____, ...totals } = got;
    expect(totals).toEqual(acc.result());
    // each value is written four or five times: every event with a history_id is duplicated
    expect(got.entries).toBe(61);
    expect(got.duplicates.historyIds).toBeGreaterThan(5);
    expect(got.idempotencyConflicts.keys).toBe(1);
    expect(got.malformed.count).toBeGreaterThan(10);
  });

  it('a missing key is no pages; a key of another type is the server error', async () => {
    const pages = [];
    for await (const page of xrangeRawPages(client, 'nothing-here', { pageSize: 10 })) pages.push(page);
    expect(pages).toEqual([]);
    await client.set('plain', 'x');
    await expect(async () => {
      for await (const _ of xrangeRawPages(client, 'plain', { pageSize: 10 })) void _;
    }).rejects.toThrow(/WRONGTYPE/);
  });
});

describe('xrangeRawPages with the client\'s database number', () => {
  it('reads from the database the client selected', async () => {
    const url = new URL(redisUrl());
    url.pathname = '/3';
    const prefix = `ddt:${randomBytes(5).toString('hex')}:`;
    const db3 = await connectRedis({ url: url.toString(), keyPrefix: prefix });
    const db0 = await connectRedis({ url: redisUrl(), keyPrefix: prefix });
    try {
      await db3.xadd('s', '*', 'data', 'in three');
      await db0.xadd('s', '*', 'data', 'in zero');
      const seen: string[] = [];
      for await (const page of xrangeRawPages(db3, 's', { pageSize: 10 })) seen.push(...decode(page).map((e) => e[1]!));
      expect(seen).toEqual(['in three']);
    } finally {
      await db3.del('s');
      await db0.del('s');
      await closeRedis(db3);
      await closeRedis(db0);
    }
  });
});

describe('xrangeRawPages on a server with a password and an ACL user', () => {
  let server: ChildProcess | undefined;
  let port = 0;
  beforeAll(async () => {
    port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const p = (probe.address() as { port: number }).port;
        probe.close(() => resolve(p));
      });
    });
    server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--requirepass', 'adminpw'], { stdio: 'ignore' });
    for (let i = 0; ; i++) {
      try {
        const admin = await connectRedis({ url: `redis://:adminpw@127.0.0.1:${port}` });
        // a reader that may read keys but not name its connection
        await admin.call('ACL', 'SETUSER', 'reader', 'on', '>readerpw', '~*', '+@all', '-client|setname');
        await closeRedis(admin);
        break;
      } catch (e) {
        if (i > 100) throw e;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }, 30_000);
  afterAll(() => {
    server?.kill('SIGKILL');
  });

  it('authenticates as the client does (password alone, or user and password) and selects its database', async () => {
    for (const url of [`redis://:adminpw@127.0.0.1:${port}/2`, `redis://reader:readerpw@127.0.0.1:${port}/2`]) {
      const client = await connectRedis({ url, keyPrefix: 'p:' });
      try {
        await client.del('s');
        await client.xadd('s', '1-1', 'data', 'one');
        await client.xadd('s', '1-2', 'data', 'two');
        const seen: string[] = [];
        for await (const page of xrangeRawPages(client, 's', { pageSize: 1 })) seen.push(...decode(page).map((e) => `${e[0]} ${e[1]}`));
        expect(seen, url).toEqual(['1-1 one', '1-2 two']);
      } finally {
        await closeRedis(client);
      }
    }
  });

  it('a wrong password is AUTH_FAILED, as from connectRedis', async () => {
    const client = await connectRedis({ url: `redis://:adminpw@127.0.0.1:${port}` });
    try {
      (client.options as { password?: string }).password = 'wrong';
      await expect(async () => {
        for await (const _ of xrangeRawPages(client, 's')) void _;
      }).rejects.toMatchObject({ code: 'AUTH_FAILED' });
    } finally {
      await closeRedis(client);
    }
  });
});

