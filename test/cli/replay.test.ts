import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ErrorDocumentSchema } from '../../src/cli/output.js';
import { DIGEST_STREAM } from '../../src/core/contract.js';
import { ReplayResultSchema } from '../../src/ops/replay.js';
import type { RedisClient } from '../../src/redis/connect.js';
import { runCli } from '../helpers/cli.js';
import { createTestSchema, type TestSchema } from '../helpers/pg.js';
import { REDIS_TARGETS } from '../helpers/redis-targets.js';
import { DAY, seedReplayScene, type ReplayScene } from '../helpers/replay-fixtures.js';

describe.each(REDIS_TARGETS)('digest-doctor replay (the built binary) on $name Redis', (target) => {
  let t: TestSchema;
  let redis: RedisClient;
  let args: string[];
  let cleanupRedis: () => Promise<void>;
  let scene: ReplayScene;
  beforeAll(() => target.start());
  afterAll(() => target.stop());
  beforeEach(async () => {
    t = await createTestSchema();
    const r = await target.client();
    ({ client: redis, cleanup: cleanupRedis } = r);
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
    const cmd = [...args, '--json', 'replay', '--from-dlq', '--failed', '--date', DAY, '--history-id', scene.pending, '--apply'];
    const [a, b] = await Promise.all([runCli(cmd), runCli(cmd)]);
    expect([a.code, b.code]).toEqual([0, 0]);
    const [da, db] = [a, b].map((r) => ReplayResultSchema.parse(JSON.parse(r.stdout)));
    // distinct jobs: the pending row and the three failed rows
    expect(da!.counts.added + db!.counts.added).toBe(4);
    expect(await redis.xlen(DIGEST_STREAM)).toBe(4);
  });

  it('nothing to replay is exit 0', async () => {
    const res = await runCli([...args, 'replay', '--failed', '--date', '2020-01-01']);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('nothing to replay');
  });

  it('bad input is exit 2 with one line naming the fix, and nothing written', async () => {
    for (const bad of [['replay'], ['replay', '--failed'], ['replay', '--history-id', 'nope'], ['replay', '--from-dlq', '--rate', '0'], ['replay', '--date', DAY]]) {
      const res = await runCli([...args, ...bad]);
      expect(res.code, bad.join(' ')).toBe(2);
      expect(res.stderr.trim().split('\n')).toHaveLength(1);
    }
    const json = await runCli([...args, '--json', 'replay', '--failed']);
    expect(ErrorDocumentSchema.parse(JSON.parse(json.stdout)).error.message).toContain('--date');
    expect(await redis.exists(DIGEST_STREAM)).toBe(0);
  });
});
