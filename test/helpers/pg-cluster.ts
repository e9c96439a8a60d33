// A PostgreSQL 15 cluster of the test's own (Debian's pg_createcluster), on a free loopback port,
// with given postgresql.conf settings and trust auth on 127.0.0.1; optionally a hot standby of
// another cluster (pg_basebackup -R). Never touches the shared server on 5432.
//
//   const primary = await startPgCluster({ settings: { max_prepared_transactions: '10' } });
//   const standby = await startPgCluster({ standbyOf: primary });
//   ... primary.url('postgres') ...
//   await standby.stop(); await primary.stop();   // pg_dropcluster --stop
//
// A cluster is also dropped when the test process exits without stopping it (a failed or killed
// test), so none is left running.
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort, pgAnswers, waitUntil } from './ports.js';

const run = promisify(execFile);
const VERSION = '15';

export interface PgCluster {
  name: string;
  port: number;
  dataDir: string;
  /** The settings it was started with (a standby starts with its primary's, which recovery requires). */
  settings: Record<string, string>;
  /** postgresql://postgres@127.0.0.1:<port>/<database> */
  url(database?: string): string;
  /** A connected client as postgres (closed by the caller). */
  client(database?: string): Promise<pg.Client>;
  stop(): Promise<void>;
}

export interface PgClusterOptions {
  /** postgresql.conf settings (written to the cluster's conf.d, values quoted). */
  settings?: Record<string, string>;
  /** Make this cluster a hot standby of `standbyOf` (pg_basebackup -R -X stream from it). */
  standbyOf?: PgCluster;
  /** pg_hba.conf lines put before the generated ones (first match wins), e.g. a role that must log in with SCRAM. */
  hba?: string[];
}

const live = new Set<string>();
let exitHookInstalled = false;

function dropSync(name: string): void {
  try {
    execFileSync('pg_dropcluster', ['--stop', VERSION, name], { stdio: 'ignore', timeout: 30_000 });
  } catch {
    /* already gone */
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const name of live) dropSync(name);
  });
}


export async function startPgCluster(opts: PgClusterOptions = {}): Promise<PgCluster> {
  const port = await freePort();
  const name = `dd_${port}_${randomBytes(3).toString('hex')}`;
  const dataDir = `/var/lib/postgresql/${VERSION}/${name}`;
  // Fast and small: a throwaway server.
  const settings: Record<string, string> = { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off', listen_addresses: '127.0.0.1', ...opts.standbyOf?.settings, ...opts.settings };
  const url = (database = 'postgres') => `postgresql://postgres@127.0.0.1:${port}/${database}`;
  installExitHook();
  live.add(name);
  const stop = async () => {
    live.delete(name);
    await run('pg_dropcluster', ['--stop', VERSION, name], { timeout: 60_000 }).catch(() => dropSync(name));
  };
  try {
    await run('pg_createcluster', ['-p', String(port), VERSION, name, '--', '--auth-host=trust', '--auth-local=trust'], { timeout: 120_000 });
    // Every value quoted (valid for any setting); Debian's postgresql.conf includes conf.d.
    const conf = Object.entries(settings).map(([k, v]) => `${k} = '${v.replace(/'/g, "''")}'`).join('\n');
    writeFileSync(`/etc/postgresql/${VERSION}/${name}/conf.d/digest-doctor-test.conf`, `${conf}\n`);
    if (opts.hba?.length) {
      const hba = `/etc/postgresql/${VERSION}/${name}/pg_hba.conf`;
      writeFileSync(hba, `${opts.hba.join('\n')}\n${readFileSync(hba, 'utf8')}`);
    }
    if (opts.standbyOf) {
      // Replace the fresh data directory with a base backup of the primary; -R writes standby.signal
      // and primary_conninfo. The cluster's own config (its port) stays in /etc/postgresql.
      for (const entry of readdirSync(dataDir)) rmSync(join(dataDir, entry), { recursive: true, force: true });
      const backup = ['pg_basebackup', '-h', '127.0.0.1', '-p', String(opts.standbyOf.port), '-U', 'postgres', '-D', dataDir, '-R', '-X', 'stream', '-c', 'fast'];
      // The data directory belongs to postgres: as root, run the backup as postgres.
      if (process.getuid?.() === 0) await run('su', ['postgres', '-c', backup.join(' ')], { timeout: 120_000 });
      else await run(backup[0]!, backup.slice(1), { timeout: 120_000 });
    }
    await run('pg_ctlcluster', ['--skip-systemctl-redirect', VERSION, name, 'start'], { timeout: 120_000 });
    await waitUntil(() => pgAnswers(url()), `cluster ${name} on port ${port}`);
    if (opts.standbyOf) {
      await waitUntil(async () => {
        const c = new pg.Client({ connectionString: url() });
        c.on('error', () => undefined);
        await c.connect();
        try {
          return (await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r;
        } finally {
          await c.end();
        }
      }, `standby ${name} in recovery`);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    name,
    port,
    dataDir,
    settings,
    url,
    async client(database = 'postgres') {
      const c = new pg.Client({ connectionString: url(database) });
      c.on('error', () => undefined);
      await c.connect();
      return c;
    },
    stop,
  };
}

/** Waits until `standby` has replayed everything `primary` has written so far (bounded). */
export async function waitForReplay(primary: PgCluster, standby: PgCluster, timeoutMs = 30_000): Promise<void> {
  const p = await primary.client();
  try {
    const { rows } = await p.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn');
    const s = await standby.client();
    try {
      await waitUntil(async () => (await s.query<{ ok: boolean }>('SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok', [rows[0]!.lsn])).rows[0]!.ok, 'the standby to replay', timeoutMs);
    } finally {
      await s.end();
    }
  } finally {
    await p.end();
  }
}
