// The embedded engine's notice is one line per command: migrate --apply opens a second connection
// for its build, and printed the notice twice.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { createTestSchema, type TestSchema } from '../helpers/pg.js';

let t: TestSchema;
beforeAll(async () => {
  t = await createTestSchema({ engine: 'embedded' });
});
afterAll(() => t?.cleanup());

it('migrate --apply on the embedded engine: the notice once, then the index is built', async () => {
  const res = await runCli([...t.cliArgs, 'migrate', '--apply']);
  expect(res.code, res.stderr + res.stdout).toBe(0);
  expect(res.stderr.split('\n').filter((l) => l.includes('using the embedded database'))).toHaveLength(1);
  expect(res.stdout).toContain('built index ux_digest_history_user_date without CONCURRENTLY');
});
