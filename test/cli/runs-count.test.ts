// runs prints rows changed as every other count is printed, with thousands separators ("1,200",
// as the repair's own "[ok  ] run ...: 1,200 rows in 3 batches" said it).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { createTestSchema, TENANT, type TestSchema } from '../helpers/pg.js';

let t: TestSchema;
beforeAll(async () => {
  t = await createTestSchema();
});
afterAll(() => t?.cleanup());

it('runs after a 1,200-row mark-stale: rows changed reads 1,200', async () => {
  await t.client.query(`INSERT INTO ${t.schema}.tenants (id) VALUES ($1)`, [TENANT]);
  await t.client.query(`INSERT INTO ${t.schema}.users SELECT gen_random_uuid(), $1, g FROM generate_series(1, 1200) g`, [TENANT]);
  await t.client.query(`INSERT INTO ${t.schema}.digest_history (id, user_id, digest_date, content, status, created_at)
    SELECT gen_random_uuid(), id, date '2026-01-01', '', 'pending', now() - interval '2 days' FROM ${t.schema}.users`);
  expect((await runCli([...t.cliArgs, 'mark-stale', '--older-than', '1d', '--apply'])).code).toBe(0);
  const res = await runCli([...t.cliArgs, 'runs', '--wide']);
  expect(res.code, res.stderr).toBe(0);
  const row = res.stdout.split('\n').find((l) => l.includes('mark-stale'));
  expect(row?.split('│').map((c) => c.trim())).toContain('1,200');
});
