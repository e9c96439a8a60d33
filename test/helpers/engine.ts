// The two engines the database tests run on: the Postgres server of the run (global-setup's
// database) and the embedded engine (PGlite, src/postgres/embedded.ts) in a temp data directory of
// this test file. Parameterise with `describe.each(ENGINES)('... (%s)', (engine) => ...)` and pass the
// engine to createTestSchema; CLI tests then get `--data-dir <dir>` and no --database-url in cliArgs,
// library tests a Db from connectEmbedded (openTestDb).
//
// The test process and a CLI subprocess cannot have the data directory open at once (one process at
// a time: the engine's lock file). The test's own handle is opened lazily by its first query and
// released by runCli (test/helpers/cli.ts) before the subprocess starts.
//
// Server-only, with the reason (what PGlite lacks):
// - pooler.test.ts, and the pgbouncer cases of server-settings / faults: pgbouncer in front of a server;
// - read-only.test.ts, cli/permissions.test.ts, dry-run's read-only role, migrate's role that does not
//   own the table: roles and GRANTs (PGlite runs as its one superuser);
// - locks.test.ts, fix-duplicates/undo/repair "held by another session" cases, migrate's concurrent
//   writers, lock timeouts, pg_cancel_backend: a second connection holding locks meanwhile;
// - build-failures.test.ts and migrate's progress / someone else's build / build-timeout cases: CREATE
//   INDEX CONCURRENTLY by another session, pg_stat_progress_create_index, statement_timeout (not
//   enforced embedded: migrate.test.ts pins that the embedded build runs to the end), a build
//   cancelled from another session;
// - URLs: inspect's DATABASE_URL with a driver suffix, migrate's pooler port and read-only URL options,
//   fix-duplicates' read-only session in server-judge (the embedded engine has no URL);
// - check: never runs on the embedded database (exit 2, even with --data-dir: cli/check.test.ts pins
//   the refusal);
// - faults.test.ts (server killed, TCP proxy cut, TLS, auth), cluster-harness, standby/hot-standby
//   (server-judge's read-only standby case): server processes and the network;
// - repair-kill.test.ts: SIGKILL of a server session and the server rolling back its open batch
//   (the embedded engine's crash recovery is PGlite's, not under test here);
// - request-digest, streams*, publish: Redis only, no database engine to vary.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll } from 'vitest';
import { openEmbeddedPglite, type PGliteLike } from '../../src/postgres/embedded.js';

export type TestEngine = 'server' | 'embedded';
export const ENGINES: readonly TestEngine[] = ['server', 'embedded'];

let dir: string | undefined;
let handle: Promise<{ pg: PGliteLike; release(): Promise<void> }> | undefined;

/** This test file's embedded data directory (created on first use, removed after the file's tests). */
export function embeddedDataDir(): string {
  if (!dir) dir = join(mkdtempSync(join(tmpdir(), 'dd-embedded-')), 'db');
  return dir;
}

afterAll(async () => {
  await releaseEmbedded();
  if (dir) rmSync(join(dir, '..'), { recursive: true, force: true });
  dir = undefined;
});

/** The test's own handle on the data directory, opened on demand. */
async function pglite(): Promise<PGliteLike> {
  if (!handle) {
    handle = openEmbeddedPglite(embeddedDataDir());
    handle.catch(() => (handle = undefined));
  }
  return (await handle).pg;
}

/** Releases the test's handle (the next query reopens it); runCli calls this before starting the CLI. */
export async function releaseEmbedded(): Promise<void> {
  const h = handle;
  handle = undefined;
  if (h) await (await h).release();
}

// Results typed as node-postgres types them (int8 and numeric as strings, date as a local Date, ...),
// so a test reads the same values from both engines.
const PG_PARSED = [16, 20, 21, 23, 26, 114, 700, 701, 1082, 1114, 1184, 1186, 1700, 3802, 1000, 1005, 1007, 1009, 1015, 1016, 1021, 1022, 1115, 1182, 1185, 2951, 3807];
const parsers: Record<number, (v: string) => unknown> = Object.fromEntries(PG_PARSED.map((oid) => [oid, pg.types.getTypeParser(oid, 'text') as (v: string) => unknown]));

export interface QueryClient {
  query<R = any>(text: string, params?: unknown[]): Promise<{ rows: R[]; rowCount: number | null }>;
  end(): Promise<void>;
}

/** A client on the embedded data directory with node-postgres' query shape (`rows`, `rowCount`). */
export function embeddedClient(): QueryClient {
  return {
    async query<R>(text: string, params?: unknown[]) {
      const p = await pglite();
      if (params && params.length) {
        const r = await p.query<R>(text, params, { parsers });
        return { rows: r.rows, rowCount: r.fields.length ? r.rows.length : (r.affectedRows ?? 0) };
      }
      // no parameters: the simple protocol, several statements allowed; the last one's result
      const all = await p.exec(text, { parsers });
      const last = all[all.length - 1];
      const rows = (last?.rows ?? []) as R[];
      return { rows, rowCount: last && last.fields.length ? rows.length : (last?.affectedRows ?? 0) };
    },
    end: releaseEmbedded,
  };
}
