import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ErrorDocumentSchema } from '../../src/cli/error-document.js';
import { DIGEST_STREAM } from '../../src/core/contract.js';
import { serializeEvent } from '../../src/core/event.js';
import { ReplayResultSchema } from '../../src/ops/replay.js';
import { masters, type RedisClient } from '../../src/redis/connect.js';
import { escapeGlob } from '../../src/redis/locks.js';
import { BIN, runCli } from '../helpers/cli.js';
import { createTestSchema, insertRows, type TestSchema } from '../helpers/pg.js';
import { REDIS_TARGETS } from '../helpers/redis-targets.js';
import { DAY, USERS, originalEvent, seedReplayScene, type ReplayScene } from '../helpers/replay-fixtures.js';
import { createGroup } from '../helpers/stream-consumer.js';

/** Keys under `prefix` as the server knows them, on every master (SCAN: the client's own keyPrefix is not applied to MATCH). */
async function keysUnder(redis: RedisClient, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for (const node of masters(redis)) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${escapeGlob(prefix)}*`, 'COUNT', 1000);
      cursor = next;
      out.push(...keys);
    } while (cursor !== '0');
  }
  return out;
}

describe.each(REDIS_TARGETS)('digest-doctor replay (the built binary) on $name Redis', (target) => {
  let t: TestSchema;
  let redis: RedisClient;
  let args: string[];
  let prefix: string;
  let cleanupRedis: () => Promise<void>;
  let scene: ReplayScene;
  beforeAll(() => target.start());
  afterAll(() => target.stop());
  beforeEach(async () => {
    t = await createTestSchema();
    const r = await target.client();
    ({ client: redis, prefix, cleanup: cleanupRedis } = r);
    args = [...t.cliArgs, ...r.cliArgs];
    scene = await seedReplayScene(t, redis);
  });
  afterEach(async () => {
    await cleanupRedis();
    await t.cleanup();
  });

  it('dry run: exit 1, --json parsed by ReplayResultSchema, nothing written', async () => {
    const res = await runCli([...args, '--json', 'replay', '--from-dlq', '--failed', '--date', DAY]);
    expect(res.code).toBe(1);
    const doc = ReplayResultSchema.parse(JSON.parse(res.stdout));
    expect(doc.applied).toBe(false);
    // DLQ: 2 publishable (the embedded one repeats a failed row), 2 skipped; rows: 3 failed
    expect(doc.counts).toMatchObject({ candidates: 8, toPublish: 4, invalid: 1 });
    expect(doc.events.find((e) => e.sourceId === scene.dlqIds.sent)).toMatchObject({ action: 'skip', reason: 'row already sent' });
    expect(await redis.exists(DIGEST_STREAM)).toBe(0);
  });

  it('--apply: exit 0 and a table; applying again adds nothing and exits 0', async () => {
    await createGroup(redis, DIGEST_STREAM);
    const first = await runCli([...args, 'replay', '--from-dlq', '--apply']);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('2 added, 0 already published');
    expect(first.stdout).toContain('skip: row already sent');
    expect(first.stdout).toContain(scene.dlqIds.malformed);
    const again = await runCli([...args, '--json', 'replay', '--from-dlq', '--apply']);
    expect(again.code).toBe(0);
    expect(ReplayResultSchema.parse(JSON.parse(again.stdout)).counts).toMatchObject({ added: 0, duplicates: 2 });
    expect(await redis.xlen(DIGEST_STREAM)).toBe(2);
  });

  it('two processes replaying the same sources at once add each event once', async () => {
    await createGroup(redis, DIGEST_STREAM);
    const cmd = [...args, '--json', 'replay', '--from-dlq', '--failed', '--date', DAY, '--history-id', scene.pending, '--apply'];
    const [a, b] = await Promise.all([runCli(cmd), runCli(cmd)]);
    expect([a.code, b.code]).toEqual([0, 0]);
    const [da, db] = [a, b].map((r) => ReplayResultSchema.parse(JSON.parse(r.stdout)));
    // distinct jobs: the pending row and the three failed rows
    expect(da!.counts.added + db!.counts.added).toBe(4);
    expect(await redis.xlen(DIGEST_STREAM)).toBe(4);
  });

  it('a replayed event trimmed before any worker read it: the next replay adds it (not "already there"); once delivered, "already delivered"', async () => {
    await createGroup(redis, DIGEST_STREAM);
    const cmd = [...args, 'replay', '--history-id', scene.pending, '--apply'];
    expect((await runCli(cmd)).code).toBe(0);
    await redis.xtrim(DIGEST_STREAM, 'MAXLEN', 0);
    const again = await runCli(cmd);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('1 added, 0 already published');
    expect(again.stdout).toContain('re-added: the earlier entry was trimmed unread');
    expect(again.stdout).not.toContain('already there');
    await redis.xreadgroup('GROUP', 'digest-workers', 'digest-worker-1', 'COUNT', 10, 'STREAMS', DIGEST_STREAM, '>');
    await redis.xtrim(DIGEST_STREAM, 'MAXLEN', 0);
    const delivered = await runCli([...cmd, '--force']);
    expect(delivered.code).toBe(0);
    expect(delivered.stdout).toContain('0 added, 1 already published');
    expect(delivered.stdout).toContain('already delivered, trimmed since');
  });

  it('nobody reads the group: exit 4 after --stall-timeout, one line naming what was published and how to resume', async () => {
    await createGroup(redis, DIGEST_STREAM);
    // 3 failed rows + 1 pending row under --maxlen 2: limit floor(0.9 * 2) = 1 unread at a time
    const cmd = [...args, 'replay', '--failed', '--date', DAY, '--history-id', scene.pending, '--apply', '--maxlen', '2', '--stall-timeout', '500ms'];
    const res = await runCli(cmd);
    expect(res.code).toBe(4);
    const lines = res.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/1 of 4 events published .* 3 not sent.*run the same replay again/);
    expect(res.stderr).not.toMatch(/\n\s+at /);
    expect(await redis.xlen(DIGEST_STREAM)).toBe(1);
    const json = await runCli([...args, '--json', ...cmd.slice(args.length)]);
    expect(json.code).toBe(4);
    expect(ErrorDocumentSchema.parse(JSON.parse(json.stdout)).error).toMatchObject({ exitCode: 4 });
  });

  it('nothing to replay is exit 0', async () => {
    const res = await runCli([...args, 'replay', '--failed', '--date', '2020-01-01']);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('nothing to replay');
  });

  it('bad input is exit 2 with one line naming the fix, and nothing written', async () => {
    for (const bad of [['replay'], ['replay', '--failed'], ['replay', '--history-id', 'nope'], ['replay', '--from-dlq', '--rate', '0'], ['replay', '--date', DAY], ['replay', '--from-dlq', '--maxlen', '0'], ['replay', '--from-dlq', '--stall-timeout', 'soon'], ['replay', '--from-dlq', '--group', '']]) {
      const res = await runCli([...args, ...bad]);
      expect(res.code, bad.join(' ')).toBe(2);
      expect(res.stderr.trim().split('\n')).toHaveLength(1);
    }
    const json = await runCli([...args, '--json', 'replay', '--failed']);
    expect(ErrorDocumentSchema.parse(JSON.parse(json.stdout)).error.message).toContain('--date');
    expect(await redis.exists(DIGEST_STREAM)).toBe(0);
  });

  // ---- a replay never lands beside an in-flight row of its (user, day)
  // The day below is the scene's only rows of 2025-11-27: user 0 has a failed row and, created after it, a pending
  // one (the incident's second click): a worker has that digest. Nothing may be published for (user 0, that day).
  const DAY2 = '2025-11-27';

  it('--failed --force --apply beside a pending row of the same (user, day): nothing published, exit 0 (nothing to replay), the reason named', async () => {
    const [failed, pending] = await insertRows(t, [
      { userId: USERS[0], digestDate: DAY2, status: 'failed', createdAt: `${DAY2}T10:00:00Z` },
      { userId: USERS[0], digestDate: DAY2, status: 'pending', createdAt: `${DAY2}T10:05:00Z` },
    ]);
    // the workers' group exists: a skip here is the in-flight rule, not a refusal of the target
    await createGroup(redis, DIGEST_STREAM);
    const text = await runCli([...args, 'replay', '--failed', '--date', DAY2, '--force', '--apply']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain('skip: another row of the day is in flight');
    expect(text.stdout).toContain('0 added, 0 already published, 1 skipped');
    expect(text.stdout).toContain('--force does not change that');
    const json = await runCli([...args, '--json', 'replay', '--failed', '--date', DAY2, '--force', '--apply']);
    expect(json.code, json.stderr).toBe(0);
    const doc = ReplayResultSchema.parse(JSON.parse(json.stdout));
    expect(doc.events).toEqual([expect.objectContaining({ source: 'failed', historyId: failed, userId: USERS[0], digestDate: DAY2, action: 'skip', reason: 'another row of the day is in flight', entryId: null })]);
    expect(doc.counts).toMatchObject({ candidates: 1, toPublish: 0, skipped: 1, added: 0 });
    expect(await redis.xlen(DIGEST_STREAM)).toBe(0);
    // once the pending row is sent, --force is a resend asked for on purpose: published
    await t.client.query(`UPDATE ${t.schema}.digest_history SET status = 'sent', sent_at = now() WHERE id = $1`, [pending]);
    const resend = await runCli([...args, '--json', 'replay', '--failed', '--date', DAY2, '--force', '--apply']);
    expect(resend.code, resend.stderr).toBe(0);
    expect(ReplayResultSchema.parse(JSON.parse(resend.stdout)).events[0]).toMatchObject({ action: 'publish', reason: 'another row of the day is sent', outcome: 'added' });
    expect(await redis.xlen(DIGEST_STREAM)).toBe(1);
  });

  it('DLQ events with no history_id, or whose row is gone, are blocked by an in-flight row of their (user, day), --force or not; another user of the day is not', async () => {
    await insertRows(t, [{ userId: USERS[0], digestDate: DAY2, status: 'pending', createdAt: `${DAY2}T10:05:00Z` }]);
    await insertRows(t, [{ userId: USERS[1], digestDate: DAY2, status: 'sent', createdAt: `${DAY2}T09:00:00Z`, sentAt: `${DAY2}T09:01:00Z` }]);
    await createGroup(redis, DIGEST_STREAM);
    const dlq = 'stream:test:replay-dlq';
    const noHistory = (await redis.xadd(dlq, '*', 'data', serializeEvent(originalEvent(USERS[0], undefined, undefined, DAY2))))!;
    const gone = (await redis.xadd(dlq, '*', 'data', serializeEvent(originalEvent(USERS[0], randomUUID(), undefined, DAY2))))!;
    // user 1's day has only a sent row: --force may resend it
    const otherUser = (await redis.xadd(dlq, '*', 'data', serializeEvent(originalEvent(USERS[1], undefined, undefined, DAY2))))!;
    const run = (extra: string[]) => runCli([...args, '--json', 'replay', '--from-dlq', '--dlq', dlq, ...extra]);
    const plain = ReplayResultSchema.parse(JSON.parse((await run([])).stdout));
    expect(Object.fromEntries(plain.events.map((e) => [e.sourceId, [e.action, e.reason]]))).toEqual({
      [noHistory]: ['skip', 'another row of the day is in flight'],
      [gone]: ['skip', 'another row of the day is in flight'],
      [otherUser]: ['skip', 'no history_id'],
    });
    const forced = await run(['--force', '--apply']);
    expect(forced.code, forced.stderr).toBe(0);
    const doc = ReplayResultSchema.parse(JSON.parse(forced.stdout));
    expect(Object.fromEntries(doc.events.map((e) => [e.sourceId, [e.action, e.reason]]))).toEqual({
      [noHistory]: ['skip', 'another row of the day is in flight'],
      [gone]: ['skip', 'another row of the day is in flight'],
      [otherUser]: ['publish', 'no history_id'],
    });
    // one entry: user 1's; none for (user 0, that day)
    const entries = (await redis.xrange(DIGEST_STREAM, '-', '+')) as Array<[string, string[]]>;
    expect(entries.map(([, f]) => JSON.parse(f[f.indexOf('data') + 1]!).user_id)).toEqual([USERS[1]]);
  });

  // ---- a replay never goes where no worker reads
  it('a --key-prefix with no stream: exit 4, one line naming the key looked at and the fix; nothing written under that prefix; the dry run says so', async () => {
    // the deployment: its stream and group under this test's prefix; the run is given a wrong one
    await createGroup(redis, DIGEST_STREAM);
    const typo = `${prefix}typo:`;
    const typoArgs = [...args, '--key-prefix', typo];
    const key = `${typo}${DIGEST_STREAM}`;
    const res = await runCli([...typoArgs, 'replay', '--history-id', scene.pending, '--apply']);
    expect(res.code, res.stderr).toBe(4);
    const lines = res.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`no stream ${key} under key prefix '${typo}'`);
    expect(lines[0]).toContain('nothing was published (1 event to replay)');
    expect(await keysUnder(redis, typo)).toEqual([]);
    expect(await redis.xlen(DIGEST_STREAM)).toBe(0);
    const dry = await runCli([...typoArgs, 'replay', '--history-id', scene.pending]);
    expect(dry.code).toBe(1);
    expect(dry.stdout).toContain(`[FAIL] no stream ${key}`);
    expect(dry.stdout).toContain('--apply refuses until that is fixed');
    expect(dry.stdout).not.toContain('--apply to publish');
    const dryJson = ReplayResultSchema.parse(JSON.parse((await runCli([...typoArgs, '--json', 'replay', '--history-id', scene.pending])).stdout));
    expect(dryJson.findings).toEqual([expect.objectContaining({ check: 'delivery', verdict: 'fail', items: [key] })]);
    const refusedJson = await runCli([...typoArgs, '--json', 'replay', '--history-id', scene.pending, '--apply']);
    expect(refusedJson.code).toBe(4);
    const err = ErrorDocumentSchema.parse(JSON.parse(refusedJson.stdout)).error;
    expect(err).toMatchObject({ code: 'REFUSED', exitCode: 4, details: { finding: { check: 'delivery', items: [key] } } });
    expect(await keysUnder(redis, typo)).toEqual([]);
    if (target.name === 'cluster') {
      // this file's own cluster holds no other deployment: the prefix named is the right one, and its command runs as printed
      expect(lines[0]).toContain(`it exists under key prefix '${prefix}'`);
      const fix = lines[0]!.slice(lines[0]!.indexOf('rerun with that key prefix: ') + 'rerun with that key prefix: '.length);
      expect(fix).toMatch(new RegExp(`^digest-doctor .*--key-prefix ${prefix} replay --history-id ${scene.pending} --apply$`));
      // run through a shell as printed, `digest-doctor` being the built binary (bash: dash takes no '-' in a function name)
      const rerun = spawnSync('bash', ['-c', `digest-doctor() { ${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} "$@"; }; ${fix}`], { encoding: 'utf8', timeout: 30_000 });
      expect(rerun.status, rerun.stderr).toBe(0);
      expect(await redis.xlen(DIGEST_STREAM)).toBe(1);
    } else {
      // the shared server holds other tests' streams too: the line names some prefix, or the group to create
      expect(lines[0]).toMatch(/it exists under key prefix|XGROUP CREATE/);
    }
  });

  it('a stream with no consumer group: exit 4 and the redis-cli command that creates it as the worker does; run as printed, the replay publishes', async () => {
    // an entry the service published with no worker group on the stream
    await redis.xadd(DIGEST_STREAM, '*', 'data', serializeEvent(originalEvent(USERS[2], scene.failed[2])));
    const cmd = [...args, '--json', 'replay', '--history-id', scene.pending, '--apply'];
    const res = await runCli(cmd);
    expect(res.code, res.stderr).toBe(4);
    const key = `${prefix}${DIGEST_STREAM}`;
    const line = res.stderr.trim();
    expect(line.split('\n')).toHaveLength(1);
    expect(line).toContain(`stream ${key} has no consumer group "digest-workers"`);
    const fix = line.slice(line.indexOf('redis-cli '));
    const url = args[args.indexOf('--redis-url') + 1]!.split(',')[0]!;
    expect(fix).toBe(`redis-cli ${target.name === 'cluster' ? '-c ' : ''}-u ${url} XGROUP CREATE ${key} digest-workers 0 MKSTREAM`);
    expect(await redis.xlen(DIGEST_STREAM)).toBe(1);
    const ran = spawnSync('sh', ['-c', fix], { encoding: 'utf8', timeout: 10_000 });
    expect(ran.status, ran.stderr).toBe(0);
    const again = await runCli(cmd);
    expect(again.code, again.stderr).toBe(0);
    expect(ReplayResultSchema.parse(JSON.parse(again.stdout)).counts).toMatchObject({ added: 1 });
    expect(await redis.xlen(DIGEST_STREAM)).toBe(2);
    // created at 0, as the worker does: the group's first read gets the earlier entry and the replayed one
    const read = (await redis.xreadgroup('GROUP', 'digest-workers', 'digest-worker-1', 'COUNT', 10, 'STREAMS', DIGEST_STREAM, '>')) as Array<[string, unknown[]]>;
    expect(read[0]![1]).toHaveLength(2);
  });
});
