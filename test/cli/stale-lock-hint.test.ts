// inspect's stale-locks fix names the lock's key as Redis knows it: with --key-prefix, the prefix
// included (the bare key it named was another key, so deleting it left the lock in place).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { createTestSchema, type TestSchema } from '../helpers/pg.js';
import { createTestRedis, type TestRedis } from '../helpers/redis.js';

let t: TestSchema;
let r: TestRedis;
beforeAll(async () => {
  t = await createTestSchema();
  r = await createTestRedis();
});
afterAll(async () => {
  await r?.cleanup();
  await t?.cleanup();
});

it('inspect --key-prefix: a lock without TTL: the fix names its key with the prefix', async () => {
  const user = '6af5e7d3-e736-46da-bfc1-42786f2ab1c0';
  await r.client.set(r.key(`digest:lock:${user}`), '1');
  const res = await runCli([...t.cliArgs, ...r.cliArgs, 'inspect', '--json']);
  expect(res.code, res.stderr).toBe(1);
  const stale = (JSON.parse(res.stdout) as { findings: Array<{ check: string; fix: string | null; items: string[] }> }).findings.find((f) => f.check === 'stale-locks');
  expect(stale?.fix).toBe(`check no request is running, then delete them (first: ${r.prefix}digest:lock:${user})`);
});
