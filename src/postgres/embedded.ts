// The embedded engine: PGlite (real Postgres compiled to WebAssembly, @electric-sql/pglite) behind
// the same SqlSession / Db as node-postgres, so the same sql/ files run on it. Loaded lazily (dynamic
// import) by the commands that open a database without a URL.
//
// What differs from a server, and what the tool does instead:
// - one connection: a "second connection" (migrate's build session) is another Db over the same
//   instance; CREATE/DROP INDEX run as written in sql/migrations (no CONCURRENTLY; nothing else
//   writes while they run);
// - advisory locks only exclude sessions of one process: another process is kept out by a lock file
//   beside the data directory (`<dir>.lock`, holding the pid), so a second digest-doctor on the same
//   directory is BUSY (exit 4) instead of corrupting it;
// - no statement_timeout or lock_timeout is enforced (one single-threaded backend), and
//   pg_stat_progress_* / pg_stat_activity show only this session.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { QueryResultRow } from 'pg';
import { DoctorError } from '../errors.js';
import { Db, fixSessionSettings, type PgConfig, type SqlSession } from './db.js';

export { DEFAULT_DATA_DIR } from './embedded-defaults.js';

/** The one-line notice every command that falls back to the embedded engine writes to stderr. */
export function embeddedNotice(dataDir: string): string {
  return `digest-doctor: no --database-url or DATABASE_URL: using the embedded database (PGlite) in ${dataDir}; one process at a time, indexes built without CONCURRENTLY, no statement_timeout`;
}

export interface PGliteLike {
  query<R>(text: string, params?: unknown[], options?: { parsers?: Record<number, (v: string, typeId: number) => unknown> }): Promise<{ rows: R[]; affectedRows?: number; fields: unknown[] }>;
  exec(text: string, options?: { parsers?: Record<number, (v: string, typeId: number) => unknown> }): Promise<Array<{ rows: unknown[]; affectedRows?: number; fields: unknown[] }>>;
  close(): Promise<void>;
}

interface Shared {
  pg: PGliteLike;
  refs: number;
  lockFile: string | null;
  /** The session whose transaction block is open: the others' statements wait for its end. */
  txOwner: symbol | null;
  waiters: Array<() => void>;
}

const BEGINS = /^\s*(?:BEGIN|START\s+TRANSACTION)\b/i;
const ENDS = /^\s*(?:COMMIT|END|ROLLBACK|ABORT)\s*;?\s*$/i;

// One instance per data directory and process; Db sessions share it and the last close closes it.
const open = new Map<string, Promise<Shared>>();

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes `<dir>.lock` (O_EXCL, our pid inside); a lock whose pid is gone is taken over. BUSY otherwise. */
function takeLock(dir: string): string {
  const file = `${dir}.lock`;
  mkdirSync(dirname(file), { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return file;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number(readFileSync(file, 'utf8').trim());
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && pidAlive(holder)) {
        throw new DoctorError('BUSY', `the embedded database ${dir} is in use by another digest-doctor (pid ${holder}): wait for it to finish, or pass --data-dir`);
      }
      rmSync(file, { force: true });
    }
  }
  throw new DoctorError('BUSY', `could not take the lock file ${file}: remove it if no digest-doctor is running`);
}

/** The PGlite package's version (the template is only valid for the Postgres build it was made by). */
function pgliteVersion(): string {
  let d = dirname(fileURLToPath(import.meta.resolve('@electric-sql/pglite')));
  for (let i = 0; i < 5; i++, d = dirname(d)) {
    const f = join(d, 'package.json');
    if (existsSync(f)) {
      const p = JSON.parse(readFileSync(f, 'utf8')) as { name?: string; version?: string };
      if (p.name === '@electric-sql/pglite' && p.version) return p.version;
    }
  }
  return 'unknown';
}

/**
 * Where the freshly initialised data directory of this PGlite version is kept, as PGlite's
 * dumpDataDir writes it (gzip tar, ~4.5 MB): beside the compiled code (`dist/pglite-template/`),
 * made by `npm run build` (scripts/embedded-template.mjs).
 */
export function embeddedTemplatePath(): string {
  // the package root is two levels up from both src/postgres and dist/postgres
  return fileURLToPath(new URL(`../../dist/pglite-template/pglite-${pgliteVersion()}.tar.gz`, import.meta.url));
}

/**
 * Writes embeddedTemplatePath(): an empty database initialised in memory (initdb, the 5-15 s a new
 * data directory otherwise costs), dumped with dumpDataDir. Does nothing when it exists. Returns its path.
 */
export async function writeEmbeddedTemplate(): Promise<string> {
  const file = embeddedTemplatePath();
  if (existsSync(file)) return file;
  const { PGlite } = await import('@electric-sql/pglite');
  const pg = await PGlite.create();
  try {
    const blob = await pg.dumpDataDir('gzip');
    mkdirSync(dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, Buffer.from(await blob.arrayBuffer()));
    renameSync(tmp, file);
  } finally {
    await pg.close();
  }
  return file;
}

const PARSERS = async () => {
  const { types } = await import('@electric-sql/pglite');
  // As node-postgres is set up in connectPg: dates stay 'YYYY-MM-DD', bigint counts are numbers.
  return { [types.DATE]: (v: string) => v, [types.INT8]: (v: string) => Number(v) };
};

/**
 * Opens (creating if need be) the data directory. A new directory is loaded from the template when
 * there is one (PGlite's loadDataDir: the cluster initdb made, ~1 s instead of 5-15 s); if the
 * template is missing or cannot be loaded, initdb runs as PGlite does by default.
 */
async function createPglite(dir: string | null): Promise<PGliteLike> {
  const { PGlite } = await import('@electric-sql/pglite');
  const parsers = await PARSERS();
  if (dir && !existsSync(join(dir, 'PG_VERSION'))) {
    const template = embeddedTemplatePath();
    if (existsSync(template)) {
      try {
        mkdirSync(dir, { recursive: true });
        return (await PGlite.create(dir, { parsers, loadDataDir: new Blob([readFileSync(template)]) })) as unknown as PGliteLike;
      } catch {
        // a damaged or foreign template: start afresh with initdb
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  if (dir) mkdirSync(dir, { recursive: true });
  return (await PGlite.create(dir ?? undefined, { parsers })) as unknown as PGliteLike;
}

async function start(dir: string | null): Promise<Shared> {
  const lockFile = dir ? takeLock(dir) : null;
  try {
    const pg = await createPglite(dir);
    return { pg, refs: 0, lockFile, txOwner: null, waiters: [] };
  } catch (err) {
    if (lockFile) rmSync(lockFile, { force: true });
    if (err instanceof DoctorError) throw err;
    throw new DoctorError('UNREACHABLE', `the embedded database ${dir ?? '(in memory)'} could not be opened (${(err as Error).message}): remove the directory to start afresh, or pass --data-dir`, { cause: err });
  }
}

/**
 * One Db session over the shared instance. The instance is one backend, so sessions would see each
 * other's transaction blocks: a session that opens one (BEGIN) owns the backend until its COMMIT or
 * ROLLBACK, and the other sessions' statements wait (as a server makes them wait on row locks, but
 * for every statement). Session-level state (settings, advisory locks) stays shared: see the header.
 */
function session(shared: Shared, key: string): SqlSession {
  let ended = false;
  const me = Symbol('session');
  const release = () => {
    if (shared.txOwner !== me) return;
    shared.txOwner = null;
    for (const w of shared.waiters.splice(0)) w();
  };
  return {
    async query<R extends QueryResultRow>(text: string, params?: unknown[]) {
      while (shared.txOwner && shared.txOwner !== me) await new Promise<void>((r) => shared.waiters.push(r));
      const begins = BEGINS.test(text);
      if (begins) shared.txOwner = me;
      try {
        if (params && params.length) return await shared.pg.query<R>(text, params);
        // No parameters: the simple protocol, which (like node-postgres) accepts several statements;
        // the last statement's rows are the result.
        const results = await shared.pg.exec(text);
        return { rows: (results[results.length - 1]?.rows ?? []) as R[] };
      } catch (err) {
        if (begins) release();
        throw err;
      } finally {
        if (ENDS.test(text)) release();
      }
    },
    async end() {
      if (ended) return;
      ended = true;
      if (shared.txOwner === me) {
        await shared.pg.exec('ROLLBACK').catch(() => undefined);
        release();
      }
      shared.refs--;
      if (shared.refs === 0) {
        open.delete(key);
        await shared.pg.close().catch(() => undefined);
        if (shared.lockFile) rmSync(shared.lockFile, { force: true });
      }
    },
  };
}

/** A new session on the instance open under `key` in this process, starting it on `dir` if none is. */
async function attach(dir: string | null, key: string): Promise<{ shared: Shared; s: SqlSession }> {
  let p = open.get(key);
  if (!p) {
    p = start(dir);
    open.set(key, p);
    p.catch(() => open.delete(key));
  }
  const shared = await p;
  shared.refs++;
  return { shared, s: session(shared, key) };
}

/**
 * Opens a session on the embedded database in `dataDir` (created if missing; null: in memory, for
 * tests), sharing one PGlite instance per directory in this process. The config's url is ignored;
 * statement and lock timeouts are set (Postgres accepts them) but a single-threaded backend cannot
 * enforce them. Errors: BUSY when another process holds the directory, UNREACHABLE when it cannot
 * be opened.
 */
export async function connectEmbedded(dataDir: string | null, config: Omit<PgConfig, 'url'>): Promise<Db> {
  const dir = dataDir === null ? null : resolve(dataDir);
  const key = dir ?? `memory:${Math.random()}`;
  const { s } = await attach(dir, key);
  const db = new Db(s, { ...config, url: `embedded:${dataDir ?? 'memory'}` }, 'embedded', () => connectEmbedded(dataDir, config));
  try {
    // The same settings connectPg fixes (DateStyle, TimeZone, ...); the timeouts are accepted, not enforced.
    const timeouts: Record<string, string> = { statement_timeout: String(config.statementTimeoutMs), application_name: config.applicationName ?? 'digest-doctor' };
    if (config.lockTimeoutMs !== undefined) timeouts.lock_timeout = String(config.lockTimeoutMs);
    await fixSessionSettings(s, timeouts);
  } catch (err) {
    await s.end();
    throw err;
  }
  return db;
}

/**
 * The PGlite instance of `dataDir` itself, shared with this process's Db sessions on it (same lock
 * file, same reference count), for a caller that needs PGlite's own API (the test suite's client).
 * `release` drops this reference; the last one closes the instance and frees the directory.
 */
export async function openEmbeddedPglite(dataDir: string): Promise<{ pg: PGliteLike; release(): Promise<void> }> {
  const key = resolve(dataDir);
  const { shared, s } = await attach(key, key);
  return { pg: shared.pg, release: () => s.end() };
}

/** Wraps an already open PGlite instance (the test suite's) as a Db; closing the Db leaves it open. */
export function embeddedDb(pg: PGliteLike, config: Omit<PgConfig, 'url'>): Db {
  const shared: Shared = { pg, refs: 2, lockFile: null, txOwner: null, waiters: [] };
  const db = new Db(session(shared, 'external'), { ...config, url: 'embedded:memory' }, 'embedded', async () => embeddedDb(pg, config));
  return db;
}
