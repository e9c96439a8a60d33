// A server that asks for a password (SCRAM, Postgres 15's default password_encryption): no password
// given is a refused login (exit 3) naming where to put one, not a driver error the tool calls its
// own bug (exit 70: node-postgres throws 'SASL: SCRAM-SERVER-FIRST-MESSAGE: client password must be a
// string' before the server says anything); a wrong one is the server's 28P01; the right one, from
// PGPASSWORD, logs in. The cluster is the test's own (test/helpers/pg-cluster.ts), its role dd_pw
// bound to scram-sha-256 in pg_hba.conf.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from '../helpers/cli.js';
import { startPgCluster, type PgCluster } from '../helpers/pg-cluster.js';

const ROLE = 'dd_pw';
const PW = 'Kx7pSCRAMsecret2';
let cluster: PgCluster;

beforeAll(async () => {
  cluster = await startPgCluster({ hba: [`host all ${ROLE} 127.0.0.1/32 scram-sha-256`] });
  const c = await cluster.client();
  try {
    await c.query(`CREATE ROLE ${ROLE} LOGIN PASSWORD '${PW}'`);
  } finally {
    await c.end();
  }
}, 180_000);
afterAll(async () => {
  await cluster?.stop();
});

/** The role's URL on the cluster, with `password` in it when given. */
function url(password?: string): string {
  const u = new URL(cluster.url('postgres'));
  u.username = ROLE;
  if (password) u.password = password;
  return u.toString();
}

/** Runs with PGPASSWORD set only as `env` says (never inherited from the test's environment). */
const run = (args: string[], pgPassword?: string): Promise<CliResult> =>
  runCli(['--connect-timeout', '5s', ...args], { env: { PGPASSWORD: pgPassword, PGPASSFILE: '/nonexistent' } });

const COMMANDS: string[][] = [['inspect'], ['runs'], ['fix-duplicates'], ['mark-stale', '--older-than', '1h'], ['migrate'], ['migrate', 'status']];

describe('a role that logs in with SCRAM', () => {
  it('no password anywhere: exit 3, one line naming PGPASSWORD, no stack', async () => {
    for (const cmd of COMMANDS) {
      const res = await run(['--database-url', url(), ...cmd]);
      const where = `${cmd.join(' ')}\n${res.stderr}`;
      expect(res.code, where).toBe(3);
      expect(res.stderr, where).toMatch(/asks for a password and none was given: export PGPASSWORD/);
      expect(res.stderr.trim().split('\n'), where).toHaveLength(1);
      expect(res.stderr, where).not.toMatch(/internal error|^\s+at /m);
    }
  });
  it('--json: the error document says AUTH_FAILED, exit 3', async () => {
    const res = await run(['--json', '--database-url', url(), 'inspect']);
    expect(res.code).toBe(3);
    expect(JSON.parse(res.stdout)).toMatchObject({ ok: false, error: { code: 'AUTH_FAILED', exitCode: 3 } });
  });
  it('a wrong password: the server refuses it (28P01), exit 3, neither password printed', async () => {
    const res = await run(['--database-url', url('not-the-password'), 'inspect']);
    expect(res.code).toBe(3);
    expect(res.stderr).toMatch(/refused the login \(28P01/);
    expect(res.stdout + res.stderr).not.toContain('not-the-password');
  });
  it('the password from PGPASSWORD logs in (this database has no digest_history: exit 2 saying so)', async () => {
    const res = await run(['--database-url', url(), 'inspect'], PW);
    expect(res.code, res.stderr).toBe(2);
    expect(res.stderr).toMatch(/digest_history/);
    expect(res.stderr).not.toMatch(/refused the login|asks for a password/);
    expect(res.stdout + res.stderr).not.toContain(PW);
  });
});
