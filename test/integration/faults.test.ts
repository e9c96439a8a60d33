// Faults are answers, not crashes (issue 12, sections 2-5): a server that never answers, a connection
// that stops carrying traffic or is cut mid-run, a refused login, TLS asked of a server without it, a
// missing privilege, a lock or statement timeout, a URL naming what the server does not have. Every one
// is a documented exit code (never 70) within a bounded time, one line on stderr with no stack trace,
// and no password in stdout, stderr or the --json document. Faults are injected on servers and proxies
// these tests start on free loopback ports (test/helpers/tcp-proxy.ts, silent-server.ts).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, runCli, type CliResult } from '../helpers/cli.js';
import { createTestSchema, seedIncident, type TestSchema } from '../helpers/pg.js';
import { createTestRedis, type TestRedis } from '../helpers/redis.js';
import { seedGroups } from '../helpers/repair.js';
import { closedPort, startSilentServer, type SilentServer } from '../helpers/silent-server.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';

/** A password no output may ever show, in both URLs; distinctive so a grep cannot miss it. */
const PW = 'Zq9xSECRETpw7';

let t: TestSchema;
let r: TestRedis;
let silent: SilentServer;
let deadPort: number;

beforeAll(async () => {
  t = await createTestSchema();
  await seedIncident(t);
  r = await createTestRedis();
  // the state schema exists (a repair applied once), so commands that read it meet its faults
  const applied = await runCli([...t.cliArgs, 'fix-duplicates', '--apply']);
  if (applied.code !== 0) throw new Error(applied.stderr);
  silent = await startSilentServer();
  deadPort = await closedPort();
});
afterAll(async () => {
  await silent.close();
  await r.cleanup();
  await t.cleanup();
});

/** The test database's URL with a user and PW (trust auth: the password is sent, never checked). */
function pgUrl(over: { port?: number; query?: string; user?: string } = {}): string {
  const u = new URL(t.url);
  u.username = over.user ?? 'postgres';
  u.password = PW;
  if (over.port) u.port = String(over.port);
  return u.toString() + (over.query ?? '');
}
const pgArgs = (url: string) => ['--database-url', url, '--schema', t.schema, '--state-schema', t.stateSchema];
const FAST = ['--connect-timeout', '1s', '--redis-command-timeout', '1s'];

/** Exit code, timing, and the invariants of every fault: no stack, one stderr line, no password anywhere. */
async function expectFault(args: string[], exit: number, opts: { env?: NodeJS.ProcessEnv; within?: number } = {}): Promise<CliResult> {
  const started = Date.now();
  const res = await runCli([...FAST, ...args], { env: opts.env, timeoutMs: 60_000 });
  const took = Date.now() - started;
  const where = `${args.join(' ')}\n${res.stderr}`;
  expect(res.code, where).toBe(exit);
  expect(took, where).toBeLessThan(opts.within ?? 15_000);
  const out = res.stdout + res.stderr;
  expect(out, where).not.toContain(PW);
  expect(out, where).not.toContain(encodeURIComponent(PW + '/'));
  expect(res.stderr, where).not.toMatch(/^\s+at /m);
  expect(res.stderr, where).not.toMatch(/internal error/);
  expect(res.stderr.trim().split('\n'), where).toHaveLength(1);
  return res;
}

/** Every command that reads Postgres (and what it needs to run as far as its connect). */
const PG_COMMANDS: string[][] = [
  ['inspect'],
  ['runs'],
  ['fix-duplicates'],
  ['mark-stale', '--older-than', '1h'],
  ['undo', '5b1c3f0e-8d2a-4c61-9e7f-2a3b4c5d6e7f'],
  ['migrate'],
  ['migrate', 'status'],
];

describe('Postgres faults against every command (exit code, one line, no stack, no password)', () => {
  it('unreachable (nothing listens): exit 3', async () => {
    for (const cmd of PG_COMMANDS) {
      const res = await expectFault([...pgArgs(pgUrl({ port: deadPort })), ...cmd], 3);
      expect(res.stderr).toMatch(/cannot reach Postgres/);
    }
  });
  it('a server that accepts and never answers: exit 3 within the connect timeout', async () => {
    for (const cmd of PG_COMMANDS) {
      const res = await expectFault([...pgArgs(pgUrl({ port: silent.port })), ...cmd], 3, { within: 8_000 });
      expect(res.stderr).toMatch(/did not answer within the connect timeout.*--connect-timeout/);
    }
  });
  it('a login refused (a role that does not exist, class 28): exit 3', async () => {
    for (const cmd of PG_COMMANDS) {
      const res = await expectFault([...pgArgs(pgUrl({ user: `nobody_${randomBytes(3).toString('hex')}` })), ...cmd], 3);
      expect(res.stderr).toMatch(/refused the login \(28000/);
    }
  });
  it('sslmode=require against a server without TLS: exit 3, no driver warning', async () => {
    for (const cmd of PG_COMMANDS) {
      const res = await expectFault([...pgArgs(pgUrl({ query: '?sslmode=require' })), ...cmd], 3);
      expect(res.stderr).toMatch(/does not offer TLS.*sslmode=disable/);
    }
  });
  it('--json: the error document carries the code and masks the password too', async () => {
    const res = await expectFault(['--json', ...pgArgs(pgUrl({ port: deadPort })), 'inspect'], 3);
    const doc = JSON.parse(res.stdout);
    expect(doc).toMatchObject({ ok: false, error: { code: 'UNREACHABLE', exitCode: 3 } });
  });
  it('a statement timeout reached by a read: exit 4 naming --statement-timeout', async () => {
    for (const cmd of [['inspect'], ['fix-duplicates'], ['mark-stale', '--older-than', '1h']]) {
      const res = await expectFault([...pgArgs(pgUrl()), '--statement-timeout', '1ms', ...cmd], 4);
      expect(res.stderr).toMatch(/statement timeout.*--statement-timeout/);
    }
  });
  it('permission denied (42501) for a role without grants: exit 4', async () => {
    const role = `dd_noperm_${randomBytes(4).toString('hex')}`;
    await t.client.query(`CREATE ROLE ${role} LOGIN`);
    try {
      for (const cmd of PG_COMMANDS) {
        const res = await runCli([...FAST, ...pgArgs(pgUrl({ user: role })), ...cmd]);
        // a command may say what it could not read in its own words (exit 2 "not the service database"
        // before issue 12 section 7), but never an internal error
        expect(res.code, `${cmd.join(' ')}: ${res.stderr}`).not.toBe(70);
        expect(res.stderr).not.toMatch(/^\s+at /m);
        expect(res.stdout + res.stderr).not.toContain(PW);
      }
      // SELECT on the service's table, nothing on the state schema: runs reads the state schema
      await t.client.query(`GRANT USAGE ON SCHEMA ${t.schema} TO ${role}`);
      await t.client.query(`GRANT SELECT ON ${t.schema}.digest_history TO ${role}`);
      // the missing privilege is found in the catalog before reading (issue 12 section 7): named with its GRANT
      const res = await expectFault([...pgArgs(pgUrl({ user: role })), 'runs'], 4);
      expect(res.stderr).toMatch(new RegExp(`GRANT USAGE ON SCHEMA .*${t.stateSchema}.* TO`));
      // and one the catalog check does not cover reaches the server: 42501 from an UPDATE, exit 4, one line
      // (no digest stream for mark-stale's live check here: --include-live, so what refuses is the privilege)
      const apply = await expectFault([...pgArgs(pgUrl({ user: role })), 'mark-stale', '--older-than', '1h', '--apply', '--include-live', '--yes'], 4);
      expect(apply.stderr).toMatch(/permission denied|may not|GRANT/);

    } finally {
      await t.client.query(`DROP OWNED BY ${role}`);
      await t.client.query(`DROP ROLE ${role}`);
    }
  });
  it("a lock on the tool's own tables is waited out for --lock-timeout, then exit 4", async () => {
    const { rows } = await t.client.query<{ id: string }>(`SELECT id::text FROM ${t.stateSchema}.runs LIMIT 1`);
    const holder = await createTestSchema({ withTables: false });
    try {
      await holder.client.query('BEGIN');
      await holder.client.query(`LOCK TABLE ${t.stateSchema}.runs IN ACCESS EXCLUSIVE MODE`);
      for (const cmd of [
        ['undo', rows[0]?.id ?? '5b1c3f0e-8d2a-4c61-9e7f-2a3b4c5d6e7f', '--apply', '--lock-timeout', '1s'],
        ['mark-stale', '--older-than', '1h', '--apply', '--include-live', '--lock-timeout', '1s'],
      ]) {
        const res = await expectFault([...pgArgs(pgUrl()), ...cmd], 4, { within: 10_000 });
        expect(res.stderr).toMatch(/lock.*--lock-timeout/);
      }
      const runs = await expectFault([...pgArgs(pgUrl()), '--statement-timeout', '2s', 'runs'], 4, { within: 10_000 });
      expect(runs.stderr).toMatch(/timeout/);
    } finally {
      await holder.client.query('ROLLBACK');
      await holder.cleanup();
    }
  });
});

describe('Redis faults', () => {
  const redisCommands = (url: string): string[][] => [
    [...pgArgs(pgUrl()), '--redis-url', url, 'inspect'],
    [...pgArgs(pgUrl()), '--redis-url', url, 'mark-stale', '--older-than', '1h'],
    ['--redis-url', url, 'streams'],
    ['--redis-url', url, 'streams', '--scan'],
    [...pgArgs(pgUrl()), '--redis-url', url, 'replay', '--from-dlq'],
  ];
  it('unreachable, silent, a refused login, TLS to a plain server: exit 3 with --redis-url', async () => {
    const cases: Array<[string, RegExp]> = [
      [`redis://:${PW}@127.0.0.1:${deadPort}`, /cannot reach Redis/],
      [`redis://:${PW}@127.0.0.1:${silent.port}`, /did not answer within/],
      [`redis://nobody:${PW}@127.0.0.1:6379`, /refused us \(WRONGPASS/],
      [`rediss://:${PW}@127.0.0.1:6379`, /did not complete a TLS handshake .*rediss:\/\/ asks for TLS; if the server on this port takes plain connections, use redis:\/\//],
      // a silent server behind rediss:// is the same: no handshake comes back
      [`rediss://:${PW}@127.0.0.1:${silent.port}`, /did not complete a TLS handshake/],
    ];
    for (const [url, why] of cases) {
      for (const args of redisCommands(url)) {
        const res = await expectFault(args, 3, { within: 10_000 });
        expect(res.stderr).toMatch(why);
      }
    }
  });
  it('configured through REDIS_URL, an unreachable or silent Redis is skipped with the reason where Redis is optional', async () => {
    for (const port of [deadPort, silent.port]) {
      const env = { REDIS_URL: `redis://:${PW}@127.0.0.1:${port}` };
      for (const cmd of [['inspect'], ['mark-stale', '--older-than', '1h']]) {
        const started = Date.now();
        const res = await runCli([...FAST, ...pgArgs(pgUrl()), ...cmd], { env });
        expect(Date.now() - started).toBeLessThan(10_000);
        expect([0, 1]).toContain(res.code);
        expect(res.stdout).toMatch(/skipped: .*Redis at 127\.0\.0\.1:\d+/);
        expect(res.stdout + res.stderr).not.toContain(PW);
      }
      // streams needs Redis: exit 3 however it is configured
      await expectFault(['streams'], 3, { env, within: 10_000 });
    }
  });
  it('a database index the server does not have is exit 2, by flag or environment, before anything is written', async () => {
    const url = `redis://127.0.0.1:6379/99`;
    for (const args of redisCommands(url)) {
      const res = await expectFault(args, 2);
      expect(res.stderr).toMatch(/no such database.*\/<db>/);
    }
    await expectFault([...pgArgs(pgUrl()), 'inspect'], 2, { env: { REDIS_URL: url } });
    // replay --apply to db 99 writes nowhere: not into database 0 either
    const stream = `${r.prefix}stream:digests:generate`;
    await expectFault([...pgArgs(pgUrl()), '--redis-url', url, '--key-prefix', r.prefix, 'replay', '--history-id', 'dac58a5d-522f-4e94-b803-caee803b53c6', '--force', '--apply'], 2);
    expect(await r.client.exists(stream)).toBe(0);
  });
  it('the scan connection refused its login while the main one works: exit 3', async () => {
    // own redis-server with an ACL user; the proxy changes the user's password before the 2nd connection
    const port = await closedPort();
    const srv = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    try {
      const { Redis } = await import('ioredis');
      const admin = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null });
      admin.on('error', () => undefined);
      for (let i = 0; ; i++) {
        // the server takes a moment to listen
        try {
          await admin.connect();
          break;
        } catch (e) {
          if (i > 100) throw e;
          await new Promise((res) => setTimeout(res, 50));
        }
      }
      await admin.call('ACL', 'SETUSER', 'scanner', 'on', `>${PW}`, '~*', '+@all');
      await admin.xadd('stream:digests:generate', '*', 'data', '{}');
      const proxy = await startTcpProxy({ port }, { beforeConnect: async (n) => void (n === 2 && (await admin.call('ACL', 'SETUSER', 'scanner', 'resetpass', '>other-pw'))) });
      try {
        const res = await expectFault(['--redis-url', `redis://scanner:${PW}@${proxy.address}`, 'streams', '--scan', '--stream', 'digests.generate'], 3);
        expect(res.stderr).toMatch(/refused us \(WRONGPASS/);
      } finally {
        await proxy.close();
        admin.disconnect();
      }
    } finally {
      srv.kill('SIGTERM');
      await once(srv, 'exit');
    }
  });
});

describe('a URL the tool cannot honour is exit 2 before anything is read, its password masked', () => {
  it('bad ports, unknown parameters, a password with an unencoded /', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--database-url', `postgresql://u@127.0.0.1:99999/db?password=${PW}`, 'inspect'], /port 99999 is out of range/],
      [['--database-url', `postgresql://u:pa/${PW}@127.0.0.1/db`, 'inspect'], /does not parse.*percent-encoded/],
      [['--database-url', `postgresql://u:${PW}@127.0.0.1:0/db`, 'inspect'], /port 0/],
      [['--database-url', `${pgUrl()}?frobnicate=1`, 'inspect'], /parameter "frobnicate" not supported/],
      [['--database-url', `${pgUrl()}?sslmode=prefer`, 'inspect'], /sslmode=prefer cannot be honoured/],
      [['--redis-url', `redis://:${PW}@127.0.0.1:70000`, 'streams'], /port 70000 is out of range/],
      [['--redis-url', `redis://:${PW}@127.0.0.1:6379/0?family=6`, 'streams'], /query parameters \(family\)/],
      [['--redis-url', `redis://:${PW}@127.0.0.1:6379/x`, 'streams'], /database "x" that is not a number/],
    ];
    for (const [args, why] of cases) {
      const plain = await expectFault(args, 2);
      expect(plain.stderr).toMatch(why);
      const json = await expectFault(['--json', ...args], 2);
      expect(JSON.parse(json.stdout).error).toMatchObject({ code: 'BAD_INPUT', exitCode: 2 });
    }
  });
});

describe('nothing hangs: traffic stopped or cut mid-run', () => {
  const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

  /** Runs the CLI, and `fault()` once `ready()` says the run is under way (polled every 20 ms, at most 20 s). */
  async function faultMidRun(args: string[], ready: () => Promise<boolean>, fault: () => void, env: NodeJS.ProcessEnv = {}) {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    const killer = setTimeout(() => child.kill('SIGKILL'), 75_000);
    for (let i = 0; i < 1000 && !(await ready()); i++) {
      if (child.exitCode !== null) throw new Error(`finished before the fault: ${stderr}`);
      await sleep(20);
    }
    fault();
    const faultAt = Date.now();
    const code = await closed;
    clearTimeout(killer);
    return { code, stdout, stderr, afterFaultMs: Date.now() - faultAt };
  }

  for (const command of [
    // no digest stream for mark-stale's live check here: --include-live (the fault is Postgres's)
    ['mark-stale', '--older-than', '1d', '--apply', '--include-live', '--batch-size', '5'],
    ['fix-duplicates', '--apply', '--batch-size', '5'],
  ]) {
    it(`Postgres blackholed mid ${command[0]} --apply: exit 3 within the query timeout; the run is recorded interrupted or said how to see it`, async () => {
      const s = await createTestSchema();
      const proxy = await startTcpProxy({ port: Number(new URL(s.url).port || 5432) });
      const cleanups: Array<() => Promise<void>> = [];
      try {
        await seedGroups(s, { tag: 'h', groups: 3000, perGroup: 2, day: '2025-11-20', base: '2025-11-20T08:00:00Z' });
        const url = new URL(s.url);
        url.port = String(proxy.port);
        url.password = PW;
        const rows = async () => (await s.client.query(`SELECT coalesce(max(rows_changed), 0)::int AS n FROM ${s.stateSchema}.runs`).catch(() => ({ rows: [{ n: 0 }] }))).rows[0].n as number;
        // blackhole the run's session only: the new session that records the run still gets through
        const res = await faultMidRun(
          ['--database-url', url.toString(), '--schema', s.schema, '--state-schema', s.stateSchema, '--statement-timeout', '2s', '--query-timeout', '3s', '--connect-timeout', '1s', ...command],
          async () => (await rows()) >= 20,
          () => proxy.blackhole(true),
        );
        expect(res.code, res.stderr).toBe(3);
        expect(res.afterFaultMs).toBeLessThan(15_000);
        expect(res.stderr.trim().split('\n')).toHaveLength(1);
        expect(res.stderr).toMatch(/stopped answering.*recorded as interrupted/);
        expect(res.stderr).not.toContain(PW);
        const run = (await s.client.query(`SELECT status, rows_changed FROM ${s.stateSchema}.runs`)).rows[0];
        expect(run.status).toBe('interrupted');
        expect(res.stderr).toContain(`stopped after ${run.rows_changed} rows changed`);
        // and when nothing gets through, the message says what was done and where to look; the first
        // proxy goes (the lost session ends, freeing the repair lock) and a new one is blackholed whole
        await proxy.close();
        const proxy2 = await startTcpProxy({ port: Number(new URL(s.url).port || 5432) });
        cleanups.push(() => proxy2.close());
        url.port = String(proxy2.port);
        const again = await faultMidRun(
          ['--database-url', url.toString(), '--schema', s.schema, '--state-schema', s.stateSchema, '--statement-timeout', '2s', '--query-timeout', '3s', '--connect-timeout', '1s', ...command],
          async () => (await s.client.query(`SELECT count(*)::int AS n FROM ${s.stateSchema}.runs WHERE rows_changed >= 20 AND status = 'running'`)).rows[0].n > 0,
          () => proxy2.blackhole(),
        );
        expect(again.code, again.stderr).toBe(3);
        expect(again.afterFaultMs).toBeLessThan(15_000);
        // the hint carries this run's flags (issue 15), so it runs as printed
        expect(again.stderr).toMatch(/could not be recorded.*`digest-doctor --database-url \S+ --schema \S+ --state-schema \S+ .*runs`/);
      } finally {
        await proxy.close();
        for (const c of cleanups) await c();
        await s.cleanup();
      }
    });
  }

  it('Redis blackholed 1.3 s into replay --apply, or cut: exit 3 within the command timeout', async () => {
    const s = await createTestSchema();
    try {
      await seedGroups(s, { tag: 'r', groups: 4000, perGroup: 1, day: '2025-11-20', base: '2025-11-20T08:00:00Z' });
      await s.client.query(`UPDATE ${s.schema}.digest_history SET status = 'failed'`);
      for (const fault of ['blackhole', 'cut'] as const) {
        const proxy = await startTcpProxy({ port: 6379 });
        const prefix = `${r.prefix}${fault}:`;
        // the workers' group, as the worker creates it: replay publishes only where a group reads
        await r.client.xgroup('CREATE', `${prefix}stream:digests:generate`, 'digest-workers', '0', 'MKSTREAM');
        try {
          const started = Date.now();
          const res = await faultMidRun(
            [...FAST, '--database-url', s.url, '--schema', s.schema, '--state-schema', s.stateSchema, '--redis-url', `redis://${proxy.address}`, '--key-prefix', prefix, 'replay', '--failed', '--date', '2025-11-20', '--apply', '--rate', '1000'],
            async () => Date.now() - started >= 1_300 && (await r.client.xlen(`${prefix}stream:digests:generate`)) > 0,
            () => (fault === 'cut' ? proxy.cut() : proxy.blackhole()),
          );
          expect(res.code, res.stderr).toBe(3);
          expect(res.afterFaultMs).toBeLessThan(8_000);
          expect(res.stderr.trim().split('\n').filter((l) => l.startsWith('digest-doctor:'))).toHaveLength(1);
          expect(res.stderr).toMatch(fault === 'cut' ? /connection to Redis .* was lost/ : /stopped answering.*--redis-command-timeout/);
        } finally {
          await proxy.close();
        }
      }
    } finally {
      await s.cleanup();
    }
  });

  it("Redis cut during mark-stale's live check: exit 3 and nothing marked", async () => {
    const s = await createTestSchema();
    const proxy = await startTcpProxy({ port: 6379 });
    try {
      await seedGroups(s, { tag: 'l', groups: 50, perGroup: 1, day: '2025-11-20', base: '2025-11-20T08:00:00Z' });
      await r.client.xgroup('CREATE', `${r.prefix}stream:digests:generate`, 'digest-workers', '0', 'MKSTREAM');
      proxy.faultOn('XPENDING', 'cut');
      for (const env of [{}, { REDIS_URL: `redis://${proxy.address}` }]) {
        proxy.resume();
        proxy.faultOn('XPENDING', 'cut');
        const redisArgs = 'REDIS_URL' in env ? [] : ['--redis-url', `redis://${proxy.address}`];
        const res = await expectFault([...redisArgs, '--key-prefix', r.prefix, '--database-url', s.url, '--schema', s.schema, '--state-schema', s.stateSchema, 'mark-stale', '--older-than', '1d', '--apply'], 3, { env });
        expect(res.stderr).toMatch(/Redis/);
      }
      expect((await s.client.query(`SELECT count(*)::int AS n FROM ${s.schema}.digest_history WHERE status = 'failed'`)).rows[0].n).toBe(0);
    } finally {
      await proxy.close();
      await s.cleanup();
    }
  });
});
