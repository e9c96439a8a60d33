// The whole demo, on the embedded engine and on the server. What it must leave: the repaired
// picture (no duplicates, no stuck rows, the unique index, the undone row back to pending).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InspectSummarySchema } from '../../src/ops/inspect-schema.js';
import { runCli } from '../helpers/cli.js';
import { databaseUrl } from '../helpers/pg.js';
import { createTestRedis, type TestRedis } from '../helpers/redis.js';
import { closedPort } from '../helpers/silent-server.js';
import { FRESH_USER } from '../../src/ops/demo.js';

let r: TestRedis;
beforeAll(async () => {
  r = await createTestRedis();
});
afterAll(async () => r?.cleanup());

/** The commands the demo printed, in order. */
const printed = (stdout: string) => stdout.split('\n').filter((l) => l.startsWith('$ digest-doctor ')).map((l) => l.slice(2));

describe('demo', () => {
  it('embedded: runs end to end, check green, and the data dir keeps the state', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dd-demo-'));
    try {
      const dataDir = join(dir, 'db');
      const res = await runCli(['--data-dir', dataDir, '--redis-url', r.url, '--key-prefix', r.prefix, 'demo'], { timeoutMs: 180_000 });
      expect(res.code, res.stdout.slice(-3000) + res.stderr).toBe(0);
      const cmds = printed(res.stdout);
      // global flags come back in the order the program declares them
      const base = `digest-doctor --redis-url ${r.url} --key-prefix ${r.prefix} --data-dir ${dataDir}`;
      expect(cmds.slice(0, 7)).toEqual([`${base} inspect`, `${base} inspect --user 6af5e7d3-e736-46da-bfc1-42786f2ab1c0 --date 2025-11-25`, `${base} fix-duplicates`, `${base} fix-duplicates --apply --yes`, `${base} mark-stale --older-than 1d --apply --yes`, `${base} migrate --apply --yes`, `${base} migrate status`]);
      expect(cmds).toContain(`${base} streams`);
      expect(cmds).toContain(`${base} replay --from-dlq --apply --yes`);
      expect(cmds.some((c) => /^digest-doctor .* undo [0-9a-f-]{36} --apply --yes$/.test(c))).toBe(true);
      expect(res.stdout).toMatch(/^passed: \d+ ok, 0 warn, 0 fail$/m);
      // the notice once for the whole demo, not once for each of its steps
      expect(res.stderr.split('using the embedded database (PGlite)').length - 1, res.stderr).toBe(1);
      expect(res.stderr).toContain(`using the embedded database (PGlite) in ${dataDir}`);
      // the state is kept: inspect on it finds nothing wrong. In flight: the kept row of each of the two
      // fresh double clicks (20 min old) and user 13's row, put back to pending by the undo (10 min old).
      const after = await runCli(['--data-dir', dataDir, 'inspect', '--json']);
      expect(after.code, after.stderr).toBe(0);
      const doc = InspectSummarySchema.parse(JSON.parse(after.stdout));
      expect(doc.duplicates.totalGroups).toBe(0);
      expect(doc.inFlightTotal).toBe(3);
      expect(doc.inFlightByAge['< 1 h']).toBe(3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('embedded, no Redis (REDIS_URL at a closed port): its mark-stale runs carry --include-live and it says why', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dd-demo-'));
    try {
      const dataDir = join(dir, 'db');
      const res = await runCli(['--data-dir', dataDir, 'demo'], { env: { REDIS_URL: `redis://127.0.0.1:${await closedPort()}` }, timeoutMs: 180_000 });
      expect(res.code, res.stdout.slice(-3000) + res.stderr).toBe(0);
      expect(res.stdout).toMatch(/^Redis skipped: Redis at 127\.0\.0\.1:\d+ \(REDIS_URL\) unreachable/m);
      expect(res.stdout).toContain('# no Redis: mark-stale cannot check whether a worker holds a row, so --apply needs --include-live (the demo has no workers)');
      const base = `digest-doctor --data-dir ${dataDir}`;
      const cmds = printed(res.stdout);
      expect(cmds.filter((c) => c.includes(' mark-stale '))).toEqual([`${base} mark-stale --older-than 1d --apply --include-live --yes`, `${base} mark-stale --user ${FRESH_USER} --older-than 5m --apply --include-live --yes`]);
      // the Redis steps are left out; the undo of the mistaken mark-stale still runs
      expect(cmds).not.toContain(`${base} streams`);
      expect(cmds.some((c) => /^digest-doctor .* undo [0-9a-f-]{36} --apply --yes$/.test(c))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('server: runs end to end with check as its last step; a schema with rows is refused without --force', async () => {
    const url = databaseUrl();
    const schema = `demo_${randomBytes(4).toString('hex')}`;
    const args = ['--database-url', url, '--schema', schema, '--state-schema', `${schema}_dd`, '--redis-url', r.url, '--key-prefix', `${r.prefix}s:`];
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      const res = await runCli([...args, 'demo'], { timeoutMs: 180_000 });
      expect(res.code, res.stdout.slice(-3000) + res.stderr).toBe(0);
      expect(printed(res.stdout).at(-1)).toBe(`digest-doctor ${args.join(' ')} check`);
      const { rows } = await c.query(`SELECT status, count(*)::int AS n FROM ${schema}.digest_history WHERE status IN ('pending','processing') GROUP BY 1`);
      // the two fresh double clicks' kept rows and user 13's undone one
      expect(rows).toEqual([{ status: 'pending', n: 3 }]);
      const { rows: idx } = await c.query(`SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = 'ux_digest_history_user_date'`, [schema]);
      expect(idx).toEqual([{ indisvalid: true }]);
      const again = await runCli([...args, 'demo']);
      expect(again.code).toBe(4);
      expect(again.stderr).toMatch(/already holds \d+ digest_history rows.*--force/);
      expect((await runCli([...args, 'demo', '--force'], { timeoutMs: 180_000 })).code).toBe(0);
    } finally {
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE; DROP SCHEMA IF EXISTS ${schema}_dd CASCADE`);
      await c.end();
    }
  });
});
