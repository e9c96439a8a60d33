// Counts in the repairs' own output, on both engines, after one 1,200-row mark-stale run: `runs`
// prints rows changed with thousands separators, as every other count is printed ("1,200", as the
// repair's own "run ...: 1,200 rows in 3 batches" says it), and undo's dry run on more rows than
// --show lists says how to see the rest, as fix-duplicates and mark-stale do.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { createTestSchema, ENGINES, TENANT, type TestSchema } from '../helpers/pg.js';

describe.each(ENGINES)('repair counts (%s)', (engine) => {
  let t: TestSchema;
  let runId: string;
  beforeAll(async () => {
    t = await createTestSchema({ engine });
    await t.client.query(`INSERT INTO ${t.schema}.tenants (id) VALUES ($1)`, [TENANT]);
    await t.client.query(`INSERT INTO ${t.schema}.users SELECT gen_random_uuid(), $1, g FROM generate_series(1, 1200) g`, [TENANT]);
    await t.client.query(`INSERT INTO ${t.schema}.digest_history (id, user_id, digest_date, content, status, created_at)
      SELECT gen_random_uuid(), id, date '2026-01-01', '', 'pending', now() - interval '2 days' FROM ${t.schema}.users`);
    // no digest stream for the live check to read here: the test is about counts, so the run marks without the check on purpose
    const mark = await runCli([...t.cliArgs, 'mark-stale', '--older-than', '1d', '--apply', '--include-live', '--json']);
    expect(mark.code, mark.stderr).toBe(0);
    runId = (JSON.parse(mark.stdout) as { applied: { runId: string } }).applied.runId;
  });
  afterAll(() => t?.cleanup());

  it('runs: rows changed reads 1,200', async () => {
    const res = await runCli([...t.cliArgs, 'runs', '--wide']);
    expect(res.code, res.stderr).toBe(0);
    const row = res.stdout.split('\n').find((l) => l.includes('mark-stale'));
    expect(row?.split('│').map((c) => c.trim())).toContain('1,200');
  });

  it('undo --show 5: "1,200 rows to put back (showing 5; --show for more, --json for all)"', async () => {
    const res = await runCli([...t.cliArgs, 'undo', runId, '--show', '5']);
    expect(res.code, res.stderr).toBe(1);
    expect(res.stdout).toContain('1,200 rows to put back (showing 5; --show for more, --json for all)');
  });
});
