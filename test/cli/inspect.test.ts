import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorDocumentSchema } from '../../src/cli/error-document.js';
import { InspectSummarySchema, InspectUserSchema } from '../../src/ops/inspect-schema.js';
import { runCli } from '../helpers/cli.js';
import { createTestSchema, databaseUrl, ENGINES, INCIDENT, seedIncident, type TestSchema } from '../helpers/pg.js';
import { createTestRedis, type TestRedis } from '../helpers/redis.js';

let t: TestSchema;
let r: TestRedis;

describe.each(ENGINES)('inspect on a database (%s)', (engine) => { // not reindented
// a DATABASE_URL in the environment names a server: the server only
const serverIt = (engine === 'server' ? it : () => undefined) as typeof it;
/** The flags that name the database and nothing else (no --schema). */
const databaseArgs = () => (t.dataDir ? ['--data-dir', t.dataDir] : ['--database-url', t.url]);
beforeAll(async () => {
  t = await createTestSchema({ engine });
  await seedIncident(t);
  r = await createTestRedis();
});
afterAll(async () => {
  await t.cleanup();
  await r.cleanup();
});

describe('digest-doctor inspect (the built binary)', () => {
  it('exits 1 on the incident and prints tables without colour under NO_COLOR', async () => {
    const res = await runCli([...t.cliArgs, 'inspect']);
    expect(res.code).toBe(1);
    expect(res.stdout).toContain('In-flight duplicates');
    expect(res.stdout).toContain(INCIDENT.user);
    expect(res.stdout).not.toMatch(/\x1b\[/);
  });

  it('with colour (FORCE_COLOR): headings bold and underlined, the table drawn (chalk and cli-table3 load after the queries)', async () => {
    const res = await runCli([...t.cliArgs, 'inspect'], { env: { NO_COLOR: undefined, FORCE_COLOR: '1' } });
    expect(res.code).toBe(1);
    // ANSI: bold 1/22, underline 4/24, as chalk writes them at level 1
    expect(res.stdout).toContain('\x1b[1m\x1b[4mIn-flight duplicates\x1b[24m\x1b[22m');
    expect(res.stdout).toContain('┌');
    expect(res.stdout).toContain(INCIDENT.user);
  });

  it('--json: one document the exported schema accepts', async () => {
    const res = await runCli([...t.cliArgs, 'inspect', '--json']);
    expect(res.code).toBe(1);
    const doc = InspectSummarySchema.parse(JSON.parse(res.stdout));
    expect(doc.schemaVersion).toBe(2);
    expect(doc.duplicates.totalGroups).toBe(1);
  });

  it('--key-prefix, a lock without TTL: the stale-locks fix names its key with the prefix (the bare key is another key: deleting it left the lock)', async () => {
    const user = '6af5e7d3-e736-46da-bfc1-42786f2ab1c0';
    await r.client.set(r.key(`digest:lock:${user}`), '1');
    try {
      const res = await runCli([...t.cliArgs, ...r.cliArgs, 'inspect', '--json']);
      expect(res.code, res.stderr).toBe(1);
      const stale = (JSON.parse(res.stdout) as { findings: Array<{ check: string; fix: string | null }> }).findings.find((f) => f.check === 'stale-locks');
      expect(stale?.fix).toBe(`check no request is running, then delete them (first: ${r.prefix}digest:lock:${user})`);
    } finally {
      await r.client.del(r.key(`digest:lock:${user}`));
    }
  });

  serverIt('takes DATABASE_URL with a +asyncpg suffix from the environment', async () => {
    const url = t.url.replace('postgresql://', 'postgresql+asyncpg://');
    const res = await runCli(['--schema', t.schema, 'inspect', '--json', '--date', '2025-11-20'], { env: { DATABASE_URL: url } });
    expect(res.code).toBe(1);
    expect(InspectSummarySchema.parse(JSON.parse(res.stdout)).statusCounts).toEqual({ pending: 1 });
  });

  it('--user with Redis: the timeline and the Redis part', async () => {
    const res = await runCli([...t.cliArgs, ...r.cliArgs, 'inspect', '--user', INCIDENT.user, '--date', INCIDENT.day, '--json']);
    expect(res.code).toBe(1);
    const doc = InspectUserSchema.parse(JSON.parse(res.stdout));
    expect(doc.rows).toHaveLength(3);
    expect(doc.redis.skipped).toBe(false);
  });

  it('Redis from the environment but unreachable: the database part runs, the Redis part is skipped', async () => {
    const res = await runCli([...t.cliArgs, 'inspect', '--user', INCIDENT.user, '--date', INCIDENT.day, '--json'], { env: { REDIS_URL: 'redis://127.0.0.1:1' } });
    expect(res.code).toBe(1);
    const doc = InspectUserSchema.parse(JSON.parse(res.stdout));
    expect(doc.redis).toMatchObject({ skipped: true, reason: expect.stringContaining('unreachable') });
  });

  it('an unreachable --redis-url given on the command line is exit 3', async () => {
    const res = await runCli([...t.cliArgs, '--redis-url', 'redis://127.0.0.1:1', 'inspect', '--user', INCIDENT.user]);
    expect(res.code).toBe(3);
    expect(res.stderr).toMatch(/cannot reach Redis at 127.0.0.1:1/);
  });

  it('a clean day exits 0', async () => {
    const res = await runCli([...t.cliArgs, 'inspect', '--user', INCIDENT.cleanUser, '--date', INCIDENT.day]);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('[ok  ] nothing wrong');
  });
});

describe('bad input: one line, exit 2, no stack trace', () => {
  const cases: Array<[string, string[], RegExp]> = [
    ['a malformed UUID', ['inspect', '--user', 'not-a-uuid'], /--user "not-a-uuid" is not a UUID/],
    ['a malformed date', ['inspect', '--date', '2025-02-30'], /--date "2025-02-30" is not a calendar date/],
    ['an unknown option', ['inspect', '--frobnicate'], /unknown option '--frobnicate'/],
    ['a bad duration', ['inspect', '--stuck-after', 'soon'], /--stuck-after "soon" is not a duration/],
    ['a bad limit', ['inspect', '--limit', '0'], /--limit "0" is not a positive whole number/],
    ['an unknown zone', ['--tz', 'Moon/Base', 'inspect'], /unknown time zone/],
    ['an unknown command', ['inpsect'], /unknown command 'inpsect'/],
  ];
  for (const [what, args, message] of cases) {
    it(what, async () => {
      const res = await runCli([...t.cliArgs, ...args]);
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(message);
      expect(res.stderr.trim().split('\n').length).toBeLessThanOrEqual(2);
      expect(res.stderr).not.toMatch(/\n\s+at /);
      // refused before any database is opened: no embedded notice (no PGlite start-up for a typo)
      expect(res.stderr).not.toContain('using the embedded database');
    });
  }

  it('a schema without digest_history names the schemas that have it', async () => {
    const res = await runCli([...databaseArgs(), '--schema', 'nowhere', 'inspect']);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(new RegExp(`schema "nowhere" has no table digest_history.*${t.schema}`));
  });

  it('a table whose columns differ from the contract', async () => {
    const other = await createTestSchema({ engine });
    try {
      await other.client.query(`ALTER TABLE ${other.schema}.digest_history DROP COLUMN sent_at`);
      const res = await runCli([...other.cliArgs, 'inspect']);
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(/does not match the service contract: sent_at \(timestamptz\) is missing/);
    } finally {
      await other.cleanup();
    }
  });

  it('--json errors are a document too', async () => {
    const res = await runCli([...t.cliArgs, 'inspect', '--json', '--user', 'x']);
    expect(res.code).toBe(2);
    const doc = ErrorDocumentSchema.parse(JSON.parse(res.stdout));
    expect(doc.error).toMatchObject({ code: 'BAD_INPUT', exitCode: 2 });
  });

  it('DEBUG=1 adds the stack trace', async () => {
    const res = await runCli([...t.cliArgs, 'inspect', '--user', 'x'], { env: { DEBUG: '1' } });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/\n\s+at /);
  });
});

});

// Engine-independent: no database of a test is named.
describe('the database flags', () => {
  it('a database URL that does not parse', async () => {
    const res = await runCli(['--database-url', 'postgresql://u:pw@[::1', 'inspect']);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/does not parse/);
  });

  it('no database configured: the embedded database, with a notice; an empty one has no digest_history (exit 2)', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'dd-embedded-'));
    try {
      const res = await runCli(['--data-dir', join(dir, 'db'), 'inspect']);
      expect(res.code).toBe(2);
      expect(res.stderr).toContain(`no --database-url or DATABASE_URL: using the embedded database (PGlite) in ${join(dir, 'db')}`);
      expect(res.stderr).toMatch(/schema "public" has no table digest_history/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// A server's URL: the login and the network are the server's.
describe('connections', () => {
  it('an unreachable database is exit 3, and the password never shows', async () => {
    const res = await runCli(['--database-url', 'postgresql://app:hunter2@127.0.0.1:1/app', 'inspect', '--json']);
    expect(res.code).toBe(3);
    expect(res.stderr).toMatch(/cannot reach Postgres at 127.0.0.1:1/);
    expect(res.stdout + res.stderr).not.toContain('hunter2');
    expect(ErrorDocumentSchema.parse(JSON.parse(res.stdout)).error.code).toBe('UNREACHABLE');
  });

  it('a refused login is exit 3 and masks the password the driver may echo', async () => {
    const u = new URL(databaseUrl());
    u.username = 'no_such_role_dd';
    u.password = 'Sup3rSecret';
    const res = await runCli(['--database-url', u.toString(), 'inspect']);
    expect(res.code).toBe(3);
    expect(res.stdout + res.stderr).not.toContain('Sup3rSecret');
  });

  it('--help and --version exit 0 and list the exit codes', async () => {
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Exit codes:[\s\S]*70 {2}internal error/);
    const v = await runCli(['--version']);
    expect(v.code).toBe(0);
    expect(v.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});
