// undo's dry run on a run of more rows than --show lists: the line under the table says how to see
// the rest, as fix-duplicates and mark-stale do.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { createTestSchema, TENANT, type TestSchema } from '../helpers/pg.js';

let t: TestSchema;
beforeAll(async () => {
  t = await createTestSchema();
});
afterAll(() => t?.cleanup());

it('undo of a 12-row mark-stale run with --show 5: "12 rows to put back (showing 5; --show for more, --json for all)"', async () => {
  await t.client.query(`INSERT INTO ${t.schema}.tenants (id) VALUES ($1)`, [TENANT]);
  await t.client.query(`INSERT INTO ${t.schema}.users SELECT gen_random_uuid(), $1, g FROM generate_series(1, 12) g`, [TENANT]);
  await t.client.query(`INSERT INTO ${t.schema}.digest_history (id, user_id, digest_date, content, status, created_at)
    SELECT gen_random_uuid(), id, date '2026-01-01', '', 'pending', now() - interval '2 days' FROM ${t.schema}.users`);
  const mark = await runCli([...t.cliArgs, 'mark-stale', '--older-than', '1d', '--apply', '--json']);
  expect(mark.code, mark.stderr).toBe(0);
  const runId = (JSON.parse(mark.stdout) as { applied: { runId: string } }).applied.runId;
  const res = await runCli([...t.cliArgs, 'undo', runId, '--show', '5']);
  expect(res.code, res.stderr).toBe(1);
  expect(res.stdout).toContain('12 rows to put back (showing 5; --show for more, --json for all)');
});
