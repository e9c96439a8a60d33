// A pgbouncer of the test's own (/usr/sbin/pgbouncer, Debian's package) in front of a given
// Postgres, on a free loopback port, its ini and log in a temp dir; pool_mode transaction unless
// told otherwise, auth trust (any user).
//
//   const bouncer = await startPgBouncer({ target: databaseUrl() });
//   bouncer.url('dd_test_x')   // postgresql://postgres@127.0.0.1:<port>/dd_test_x
//   await bouncer.stop();
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, pgAnswers, waitUntil } from './ports.js';

export const PGBOUNCER_BIN = '/usr/sbin/pgbouncer';

export interface PgBouncer {
  port: number;
  dir: string;
  /** The target URL with host and port replaced by the bouncer's (same user and database unless given). */
  url(database?: string): string;
  /** The bouncer's log so far (for a failing test's message). */
  log(): string;
  stop(): Promise<void>;
}

export interface PgBouncerOptions {
  /** The Postgres it forwards to (host, port, user and database are taken from it). */
  target: string;
  poolMode?: 'transaction' | 'session' | 'statement';
  /** Server connections per (database, user). */
  poolSize?: number;
  /**
   * Startup parameters pgbouncer drops instead of refusing the login (node-postgres sends
   * statement_timeout and lock_timeout as startup parameters).
   */
  ignoreStartupParameters?: string[];
  /** Extra [pgbouncer] settings. */
  settings?: Record<string, string>;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

export async function startPgBouncer(opts: PgBouncerOptions): Promise<PgBouncer> {
  const target = new URL(opts.target);
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'dd-pgbouncer-'));
  // pgbouncer will not run as root: it drops to postgres (-u), which must read and write here.
  chmodSync(dir, 0o777);
  const logFile = join(dir, 'pgbouncer.log');
  const settings: Record<string, string> = {
    listen_addr: '127.0.0.1',
    listen_port: String(port),
    unix_socket_dir: '',
    auth_type: 'trust',
    auth_file: join(dir, 'userlist.txt'),
    pool_mode: opts.poolMode ?? 'transaction',
    default_pool_size: String(opts.poolSize ?? 5),
    max_client_conn: '200',
    logfile: logFile,
    pidfile: join(dir, 'pgbouncer.pid'),
    ignore_startup_parameters: (opts.ignoreStartupParameters ?? ['extra_float_digits', 'statement_timeout', 'lock_timeout', 'options', 'idle_in_transaction_session_timeout']).join(','),
    admin_users: 'postgres',
    ...opts.settings,
  };
  const ini = [
    '[databases]',
    `* = host=${target.hostname} port=${target.port || '5432'}`,
    '',
    '[pgbouncer]',
    ...Object.entries(settings).map(([k, v]) => `${k} = ${v}`),
    '',
  ].join('\n');
  writeFileSync(join(dir, 'pgbouncer.ini'), ini);
  writeFileSync(join(dir, 'userlist.txt'), `"${decodeURIComponent(target.username || 'postgres')}" ""\n`);
  writeFileSync(logFile, '');
  chmodSync(logFile, 0o666);
  const args = [join(dir, 'pgbouncer.ini')];
  if (process.getuid?.() === 0) args.unshift('-u', 'postgres');
  const child = spawn(PGBOUNCER_BIN, args, { stdio: 'ignore' });
  live.add(child);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
  const url = (database?: string) => {
    const u = new URL(opts.target);
    u.hostname = '127.0.0.1';
    u.port = String(port);
    if (database) u.pathname = `/${database}`;
    return u.toString();
  };
  const log = () => {
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    live.delete(child);
    if (child.exitCode === null) {
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await gone;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitUntil(async () => {
      if (child.exitCode !== null) throw new Error(`pgbouncer exited with ${child.exitCode}: ${log()}`);
      return pgAnswers(url());
    }, `pgbouncer on port ${port}`, 20_000);
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}\n${log()}`, { cause: err });
  }
  return { port, dir, url, log, stop };
}

/** Whether the pgbouncer binary is installed (.ci/run installs it). */
export function pgbouncerInstalled(): boolean {
  try {
    execFileSync(PGBOUNCER_BIN, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
