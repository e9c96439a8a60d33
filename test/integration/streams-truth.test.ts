// Issue 11: stream verdicts that hold under trimming, deletion, old servers, ACLs and reshards.
// Every expected value below is worked out by hand from what the test did to the stream.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { randomBytes, randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DIGEST_DLQ_STREAM, DIGEST_GROUP, DIGEST_STREAM } from '../../src/core/contract.js';
import { buildEvent, serializeEvent } from '../../src/core/event.js';
import { StreamsReportSchema, type StreamsReport } from '../../src/ops/streams.js';
import { ReplayResultSchema } from '../../src/ops/replay.js';
import { runCli } from '../helpers/cli.js';
import { createTestSchema, type TestSchema } from '../helpers/pg.js';
import { startRedisCluster, type TestCluster } from '../helpers/redis-cluster.js';
import { createTestRedis, type TestRedis } from '../helpers/redis.js';
import { redis6, startRedisServer, type TestServer } from '../helpers/redis-server.js';

const run = promisify(execFile);
const TENANT = '0b7a43c2-9d4e-4b8a-9f1e-2c3d4e5f6a7b';
const event = (historyId: string = randomUUID()) =>
  serializeEvent(buildEvent({ userId: randomUUID(), tenantId: TENANT, digestDate: '2025-11-25', trigger: 'scheduler', historyId }, new Date(), randomUUID()));

async function addMany(r: Redis, key: string, n: number, extra: string[] = []): Promise<void> {
  for (let i = 0; i < n; i += 500) {
    const p = r.pipeline();
    for (let j = i; j < Math.min(n, i + 500); j++) p.xadd(key, ...extra, '*', 'data', event());
    await p.exec();
  }
}

async function streams(args: string[]): Promise<{ code: number | null; doc: StreamsReport; stderr: string }> {
  const res = await runCli([...args, '--json', 'streams', '--stream', DIGEST_STREAM]);
  if (!res.stdout) throw new Error(`no output (exit ${res.code}): ${res.stderr}`);
  return { code: res.code, doc: StreamsReportSchema.parse(JSON.parse(res.stdout)), stderr: res.stderr };
}
const check = (doc: StreamsReport, name: string) => doc.findings.find((f) => f.check === name && f.stream === DIGEST_STREAM)!;

describe('group accounting (issue 11 §1), through the CLI on the shared Redis', () => {
  let r: TestRedis;
  beforeEach(async () => {
    r = await createTestRedis();
  });
  afterEach(() => r.cleanup());

  it('3000 entries, group at 0, one read, XTRIM MAXLEN 1, the last read: lag 0 and 2998 trimmed unread (FAIL)', async () => {
    const key = r.key(DIGEST_STREAM);
    await addMany(r.client, key, 3000);
    await r.client.xgroup('CREATE', key, DIGEST_GROUP, '0');
    const [[, first]] = (await r.client.xreadgroup('GROUP', DIGEST_GROUP, 'digest-worker-1', 'COUNT', 1, 'STREAMS', key, '>')) as [string, [string, string[]][]][];
    await r.client.xack(key, DIGEST_GROUP, first![0]![0]);
    await r.client.xtrim(key, 'MAXLEN', 1);
    const [[, last]] = (await r.client.xreadgroup('GROUP', DIGEST_GROUP, 'digest-worker-1', 'COUNT', 1, 'STREAMS', key, '>')) as [string, [string, string[]][]][];
    await r.client.xack(key, DIGEST_GROUP, last![0]![0]);
    const { code, doc } = await streams(r.cliArgs);
    // entries 2..2999 were trimmed while the group stood at entry 1: 2998, none of them delivered
    const g = doc.streams[0]!.groups[0]!;
    expect(g).toMatchObject({ lag: 0, trimmed: { min: 2998, max: 2998 } });
    expect(check(doc, 'lag')).toMatchObject({ verdict: 'ok' });
    expect(check(doc, 'trimmed').verdict).toBe('fail');
    expect(check(doc, 'trimmed').message).toContain('(2998)');
    expect(code).toBe(1);
  });

  it('group created as the worker does (0 MKSTREAM), 20 events, XTRIM MAXLEN 5: 15 lost, FAIL', async () => {
    const key = r.key(DIGEST_STREAM);
    await r.client.xgroup('CREATE', key, DIGEST_GROUP, '0', 'MKSTREAM');
    await addMany(r.client, key, 20);
    await r.client.xtrim(key, 'MAXLEN', 5);
    const { code, doc } = await streams(r.cliArgs);
    expect(doc.streams[0]!.groups[0]!).toMatchObject({ lag: 5, trimmed: { min: 15, max: 15 } });
    expect(check(doc, 'trimmed')).toMatchObject({ verdict: 'fail' });
    expect(check(doc, 'trimmed').message).toContain('(15)');
    expect(code).toBe(1);
  });

  it("the service's own XADD MAXLEN ~ past the limit: every entry it trimmed is counted lost", async () => {
    const key = r.key(DIGEST_STREAM);
    await r.client.xgroup('CREATE', key, DIGEST_GROUP, '0', 'MKSTREAM');
    // stream-node-max-entries is 100: MAXLEN ~ 10 drops whole nodes of 100 as the stream grows
    await addMany(r.client, key, 250, ['MAXLEN', '~', '10']);
    const len = await r.client.xlen(key);
    expect(len).toBeLessThan(250);
    const { doc } = await streams(r.cliArgs);
    // the group never read and nothing was XDEL'd: each of the 250 added and not present was trimmed unread
    expect(doc.streams[0]!.groups[0]!.trimmed).toEqual({ min: 250 - len, max: 250 - len });
    expect(check(doc, 'trimmed').verdict).toBe('fail');
  });

  it('group created at $ on a non-empty stream, 20 events, XTRIM MAXLEN 5: never ok, "possibly trimmed" up to 18', async () => {
    const key = r.key(DIGEST_STREAM);
    await addMany(r.client, key, 3);
    await r.client.xgroup('CREATE', key, DIGEST_GROUP, '$');
    await addMany(r.client, key, 20);
    await r.client.xtrim(key, 'MAXLEN', 5);
    const { code, doc } = await streams(r.cliArgs);
    // 18 gone (23 added, 5 left); 15 of them after the group's position, 3 before: the counters cannot
    // tell how many of the 18 came after it, so a bound and a warning
    expect(doc.streams[0]!.groups[0]!).toMatchObject({ lag: 5, trimmed: { min: 0, max: 18 } });
    expect(check(doc, 'trimmed')).toMatchObject({ verdict: 'warn' });
    expect(check(doc, 'trimmed').message).toMatch(/^possibly trimmed/);
    expect(code).toBe(1);
  });

  it("a duplicate deleted on the tool's own advice is not a trim: the next streams does not FAIL", async () => {
    const key = r.key(DIGEST_STREAM);
    await r.client.xgroup('CREATE', key, DIGEST_GROUP, '$', 'MKSTREAM');
    const dup = randomUUID();
    await r.client.xadd(key, '1000-0', 'data', event(dup));
    await r.client.xadd(key, '2000-0', 'data', event(dup));
    await r.client.xadd(key, '3000-0', 'data', event());
    const scan = await runCli([...r.cliArgs, '--json', 'streams', '--stream', DIGEST_STREAM, '--scan']);
    const doc = StreamsReportSchema.parse(JSON.parse(scan.stdout));
    const fix = doc.findings.find((f) => f.check === 'scan-duplicates')!.fix!;
    const command = /XDEL [^;)]+/.exec(fix)![0].trim();
    expect(command).toBe(`XDEL ${key} 2000-0`);
    // run the advice exactly as printed
    const { stdout } = await run('redis-cli', ['-u', r.url, ...command.split(' ')]);
    expect(stdout.trim()).toBe('1');
    const after = await streams(r.cliArgs);
    // 3 added, 2 left, the one gone is 2000-0 (max-deleted-entry-id): nothing was trimmed
    expect(after.doc.streams[0]!.groups[0]!).toMatchObject({ lag: 2, trimmed: { min: 0, max: 0 } });
    expect(check(after.doc, 'trimmed').verdict).toBe('ok');
    expect(after.code).toBe(0);
  });
});

describe('a key prefix with glob characters (SCAN MATCH escaped)', () => {
  let r: TestRedis;
  afterEach(() => r.cleanup());
  it('discovery finds the streams under a prefix holding [ ] * ?', async () => {
    r = await createTestRedis();
    const prefix = `${r.prefix}[x]*?:`;
    await r.client.xadd(`${prefix}stream:digests:extra`, '*', 'data', event());
    // a key the unescaped pattern would match instead
    await r.client.xadd(`${r.prefix}xYZ:stream:digests:decoy`, '*', 'data', event());
    const res = await runCli(['--redis-url', r.url, '--key-prefix', prefix, '--json', 'streams']);
    const doc = StreamsReportSchema.parse(JSON.parse(res.stdout));
    const keys = doc.streams.map((s) => s.key);
    expect(keys).toContain('stream:digests:extra');
    expect(keys.some((k) => k.includes('decoy'))).toBe(false);
  });
});

describe('text read as UTF-8 is decoded strictly', () => {
  let r: TestRedis;
  beforeEach(async () => {
    r = await createTestRedis();
  });
  afterEach(() => r.cleanup());
  it('an entry whose data is not UTF-8 is malformed, in the raw path (digest stream) and the client path (DLQ)', async () => {
    const good = event();
    const bad = Buffer.concat([Buffer.from(good.slice(0, -1) + ',"requested_by":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
    for (const s of [DIGEST_STREAM, DIGEST_DLQ_STREAM]) {
      await r.client.xadd(r.key(s), '*', 'data', good);
      await r.client.xadd(r.key(s), '*', 'data', bad);
    }
    const res = await runCli([...r.cliArgs, '--json', 'streams', '--scan']);
    const doc = StreamsReportSchema.parse(JSON.parse(res.stdout));
    for (const s of [DIGEST_STREAM, DIGEST_DLQ_STREAM]) {
      const scan = doc.scan!.streams.find((x) => x.key === s)!;
      expect(scan).toMatchObject({ entries: 2, valid: 1, malformed: { count: 1 } });
      expect(scan.malformed.examples[0]!.error).toMatch(/not valid UTF-8/);
    }
  });
});

describe('Redis 6.0 (Debian bullseye 6.0.16)', () => {
  let server: TestServer;
  let t: TestSchema;
  beforeAll(async () => {
    const got = await redis6();
    if (!got.binary) throw new Error(`${got.reason} (run .ci/run once with network, or set DIGEST_DOCTOR_TEST_CACHE)`);
    expect(got.binary.version).toBe('6.0.16');
    server = await startRedisServer({ binary: got.binary });
    t = await createTestSchema();
  }, 180_000);
  afterAll(async () => {
    await server?.stop();
    await t?.cleanup();
  });

  it('streams on a healthy stream is ok (no FAIL for fields 6.x lacks); --scan and replay --from-dlq page over many pages', async () => {
    const p = `dd6:${randomBytes(4).toString('hex')}:`;
    const key = p + DIGEST_STREAM;
    await server.admin.xgroup('CREATE', key, DIGEST_GROUP, '0', 'MKSTREAM');
    await addMany(server.admin, key, 7);
    // a worker read and acked all
    const [[, got]] = (await server.admin.xreadgroup('GROUP', DIGEST_GROUP, 'digest-worker-1', 'COUNT', 100, 'STREAMS', key, '>')) as [string, [string, string[]][]][];
    await server.admin.xack(key, DIGEST_GROUP, ...got!.map((e) => e[0]));
    const args = ['--redis-url', server.url(), '--key-prefix', p];
    const plain = await runCli([...args, '--json', 'streams', '--stream', DIGEST_STREAM]);
    const doc = StreamsReportSchema.parse(JSON.parse(plain.stdout));
    expect(doc.server.version).toBe('5.0-6.2');
    expect(check(doc, 'trimmed').verdict).toBe('ok');
    expect(plain.code).toBe(0);
    // 7 entries in pages of 2: four pages
    const scan = await runCli([...args, '--json', 'streams', '--stream', DIGEST_STREAM, '--scan', '--page-size', '2']);
    expect(scan.stderr).not.toMatch(/Invalid stream ID|internal error/);
    expect(StreamsReportSchema.parse(JSON.parse(scan.stdout)).scan!.streams[0]).toMatchObject({ entries: 7, valid: 7, malformed: { count: 0 } });
    // replay reads the DLQ in pages of 1000: 1001 entries take two
    await addMany(server.admin, p + DIGEST_DLQ_STREAM, 1001);
    const replay = await runCli([...t.cliArgs, ...args, '--json', 'replay', '--from-dlq']);
    expect(replay.stderr).not.toMatch(/Invalid stream ID|internal error/);
    expect(ReplayResultSchema.parse(JSON.parse(replay.stdout)).counts.candidates).toBe(1001);
  });

  it('a group at 0 that never read, on a stream trimmed under it: "possibly trimmed" (6.x cannot count), never ok or FAIL', async () => {
    const p = `dd6:${randomBytes(4).toString('hex')}:`;
    const key = p + DIGEST_STREAM;
    await server.admin.xgroup('CREATE', key, DIGEST_GROUP, '0', 'MKSTREAM');
    await addMany(server.admin, key, 20);
    await server.admin.xtrim(key, 'MAXLEN', 5);
    const res = await runCli(['--redis-url', server.url(), '--key-prefix', p, '--json', 'streams', '--stream', DIGEST_STREAM]);
    const doc = StreamsReportSchema.parse(JSON.parse(res.stdout));
    expect(doc.streams[0]!.groups[0]!).toMatchObject({ lag: 5, trimmed: { min: 0, max: null } });
    expect(check(doc, 'trimmed').verdict).toBe('warn');
  });
});

// README's lines as printed there (README.md, "Redis permissions"): the ACL SETUSER arguments after the user name, the password ours.
function readmeAcl(user: string, password: string): string[] {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const line = readme.split('\n').find((l) => l.startsWith(`ACL SETUSER ${user} `));
  if (!line) throw new Error(`README.md has no "ACL SETUSER ${user}" line`);
  return line.split(/\s+/).slice(3).map((a) => (a === '>PASSWORD' ? `>${password}` : a));
}
const READ_ONLY = readmeAcl('digest-doctor-ro', 'ro-secret');
const APPLY = readmeAcl('digest-doctor-apply', 'apply-secret');

describe('ACL users with exactly the commands README lists', () => {
  let server: TestServer;
  let t: TestSchema;
  beforeAll(async () => {
    server = await startRedisServer({ acl: [['digest-ro', ...READ_ONLY], ['digest-apply', ...APPLY]] });
    t = await createTestSchema();
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
    await t?.cleanup();
  });

  it('inspect, streams and streams --scan as the read-only user; replay --apply as the applying user; no command refused', async () => {
    const p = `ddacl:${randomBytes(4).toString('hex')}:`;
    const key = p + DIGEST_STREAM;
    await server.admin.xgroup('CREATE', key, DIGEST_GROUP, '0', 'MKSTREAM');
    await addMany(server.admin, key, 5);
    await addMany(server.admin, p + DIGEST_DLQ_STREAM, 2);
    await server.admin.set(`${p}digest:lock:${randomUUID()}`, 'x');
    await server.admin.call('ACL', 'LOG', 'RESET');
    const ro = ['--redis-url', server.url('digest-ro', 'ro-secret'), '--key-prefix', p];
    for (const cmd of [['inspect'], ['streams'], ['streams', '--scan', '--page-size', '2']]) {
      const res = await runCli([...t.cliArgs, ...ro, ...cmd]);
      expect(res.stderr, cmd.join(' ')).not.toMatch(/NOPERM|internal error|refused/);
      expect([0, 1], `${cmd.join(' ')}: ${res.stderr}`).toContain(res.code);
    }
    const apply = ['--redis-url', server.url('digest-apply', 'apply-secret'), '--key-prefix', p];
    const res = await runCli([...t.cliArgs, ...apply, '--json', 'replay', '--from-dlq', '--force', '--apply']);
    expect(res.stderr).not.toMatch(/NOPERM|internal error/);
    expect(res.code).toBe(0);
    expect(ReplayResultSchema.parse(JSON.parse(res.stdout)).counts.added).toBe(2);
    // the server logged no refusal of a command we rely on (CLIENT SETNAME is a courtesy: its refusal is ignored)
    const log = (await server.admin.call('ACL', 'LOG')) as unknown[][];
    const refused = log.map((e) => String(e[e.indexOf('object') + 1])).filter((o) => !o.startsWith('client'));
    expect(refused).toEqual([]);
  });

  it('a user without a command digest-doctor needs gets one line naming it, exit 4 (a missing privilege), never 70', async () => {
    await server.admin.call('ACL', 'SETUSER', 'digest-noxinfo', ...READ_ONLY.filter((a) => a !== '+xinfo').map((a) => a.replace('ro-secret', 'nx-secret')));
    const p = `ddacl:${randomBytes(4).toString('hex')}:`;
    await server.admin.xadd(p + DIGEST_STREAM, '*', 'data', event());
    const res = await runCli(['--redis-url', server.url('digest-noxinfo', 'nx-secret'), '--key-prefix', p, 'streams']);
    expect(res.code).toBe(4);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr).toMatch(/refused a command \(NOPERM[^)]*'xinfo/i);
    expect(res.stderr).not.toContain('nx-secret');
  });
});

describe('streams --scan during a live reshard (ASK)', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await startRedisCluster();
  }, 120_000);
  afterAll(() => cluster?.stop());

  it('follows ASK (ASKING, then the command) to the node the stream moved to', async () => {
    const { Redis } = await import('ioredis');
    const p = `ddask:${randomBytes(4).toString('hex')}:`;
    const key = p + DIGEST_STREAM;
    const nodes = cluster.ports.map((port) => new Redis({ port, host: '127.0.0.1', lazyConnect: true }));
    try {
      for (const n of nodes) await n.connect();
      const slot = Number(await nodes[0]!.call('CLUSTER', 'KEYSLOT', key));
      const ids = await Promise.all(nodes.map((n) => n.call('CLUSTER', 'MYID') as Promise<string>));
      const slots = (await nodes[0]!.call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number, string]]>;
      const ownerPort = slots.find(([a, b]) => slot >= a && slot <= b)![2][1];
      const src = cluster.ports.indexOf(ownerPort);
      const dst = (src + 1) % nodes.length;
      for (let i = 0; i < 9; i++) await nodes[src]!.xadd(key, '*', 'data', event());
      await nodes[dst]!.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', ids[src]!);
      await nodes[src]!.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', ids[dst]!);
      await nodes[src]!.call('MIGRATE', '127.0.0.1', cluster.ports[dst]!, '', 0, 5000, 'KEYS', key);
      // the source now answers ASK for the key
      await expect(nodes[src]!.xlen(key)).rejects.toThrow(/^ASK /);
      const res = await runCli(['--redis-url', cluster.url, '--redis-cluster', '--key-prefix', p, '--json', 'streams', '--stream', DIGEST_STREAM, '--scan', '--page-size', '4']);
      expect(res.stderr).not.toMatch(/ASK|internal error/);
      const doc = StreamsReportSchema.parse(JSON.parse(res.stdout));
      expect(doc.scan!.streams[0]).toMatchObject({ entries: 9, valid: 9 });
    } finally {
      for (const n of nodes) n.disconnect();
    }
  });
});
