// check, run under a key prefix that holds no digest stream: the prefixes that hold it are named
// with a noun that agrees with their count, as inspect and streams say it.
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

it('check --key-prefix <empty one>: "it exists under key prefixes" naming both that hold the stream', async () => {
  for (const p of ['a:', 'b:']) await r.client.xadd(`${r.prefix}${p}stream:digests:generate`, '*', 'data', '{}');
  const res = await runCli(['--database-url', t.url, '--schema', t.schema, '--state-schema', t.stateSchema, '--redis-url', r.url, '--key-prefix', `${r.prefix}c:`, 'check', '--format', 'json']);
  const doc = JSON.parse(res.stdout) as { checks: Array<{ check: string; subject: string; verdict: string; message: string; fix: string | null }> };
  const exists = doc.checks.find((c) => c.check === 'exists' && c.subject === 'stream:digests:generate');
  expect(exists?.message).toMatch(/; it exists under key prefixes '/);
  expect(exists?.message).toContain(`'${r.prefix}a:'`);
  expect(exists?.message).toContain(`'${r.prefix}b:'`);
  // several candidates: the rerun is a choice, said so
  expect(exists?.message).toContain("rerun with your deployment's prefix (the command carries the first listed");
  // no DLQ beside no digest stream under this prefix: not "[ok] nothing ever failed", and no replay advice for a DLQ that is not there
  const dlq = doc.checks.find((c) => c.check === 'dlq-empty');
  expect(dlq).toMatchObject({ verdict: 'warn' });
  expect(dlq?.message).toContain('nor does the digest stream');
  expect(dlq?.fix ?? '').not.toContain('replay');
});
