// Progress on a terminal: the first report of a repair comes after its first batch, at the moment
// the clock starts; it shows done of total and no rate (a rate over no time read as millions of rows
// per second and "about 0s left" before).
import { afterEach, beforeEach, expect, it } from 'vitest';
import { createTestSchema, TENANT, type TestSchema } from '../helpers/pg.js';
import { runOnPty } from '../helpers/pty.js';

let t: TestSchema;
beforeEach(async () => {
  t = await createTestSchema();
});
afterEach(() => t.cleanup());

it('mark-stale --apply on a terminal: the first progress line has no rate and no time left', async () => {
  // 1,000 rows two days old, each its own (user, day): 10 batches of 100
  await t.client.query(`INSERT INTO ${t.schema}.tenants (id) VALUES ($1)`, [TENANT]);
  await t.client.query(`INSERT INTO ${t.schema}.users SELECT gen_random_uuid(), $1, g FROM generate_series(1, 1000) g`, [TENANT]);
  await t.client.query(`INSERT INTO ${t.schema}.digest_history (id, user_id, digest_date, content, status, created_at)
    SELECT gen_random_uuid(), id, date '2026-01-01', '', 'pending', now() - interval '2 days' FROM ${t.schema}.users`);
  const res = await runOnPty(['--database-url', t.url, '--schema', t.schema, '--state-schema', t.stateSchema, 'mark-stale', '--older-than', '1d', '--batch-size', '100', '--apply', '--include-live', '--yes'], { cols: 80, env: { CI: undefined } });
  expect(res.code, res.output).toBe(0);
  // each redraw starts with CR and erase-line
  const reports = res.output.split(/\r\x1b\[2K|\r?\n/).filter((s) => s.startsWith('rows changed: '));
  expect(reports.length, res.output).toBeGreaterThan(0);
  expect(reports[0]).toMatch(/^rows changed: [\d,]+ of 1,000 rows \(\d+%\)$/);
  const { rows } = await t.client.query(`SELECT count(*)::int AS n FROM ${t.schema}.digest_history WHERE status = 'failed'`);
  expect(rows).toEqual([{ n: 1000 }]);
});
