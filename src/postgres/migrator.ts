// The Postgres half of `migrate`: reads migration files, the catalog, the session, the lock and the
// ledger, and runs statements. Decisions live in core/migration.ts; the lock, build, drop and
// verification loops in postgres/index-build.ts; orchestration in ops/migrate.ts.
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { STATUSES, UNIQUE_INDEX_NAME, UNIQUE_INDEX_STATUSES, TABLE } from '../core/contract.js';
import { serverMessageOf, sqlstateOf } from '../core/faults.js';
import {
  buildMigration,
  compareIndexShapes,
  expectedUniqueIndex,
  indexFactDifferences,
  type IndexFacts,
  type IndexShape,
  parseMigrationFileName,
  type CatalogIndex,
  type LedgerEntry,
  type Migration,
  type SessionFacts,
} from '../core/migration.js';
import { DoctorError } from '../errors.js';
import type { Db } from './db.js';
import { SQL_DIR, renderSql } from './sql.js';
import { ensureState, readState } from './state.js';
import { evaluateOverStatuses } from './checks.js';
import { proveSession } from './session.js';

export const TOOL_VERSION: string = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;

/** Every migration under sql/migrations, in version order, checked against the service contract. */
export function loadMigrations(dir = `${SQL_DIR}migrations/`): Migration[] {
  const byVersion = new Map<number, { name: string; up?: string; down?: string }>();
  for (const file of readdirSync(dir).sort()) {
    const p = parseMigrationFileName(file);
    if (!p) continue;
    const entry = byVersion.get(p.version) ?? { name: p.name };
    if (entry.name !== p.name) throw new DoctorError('INTERNAL', `sql/migrations: version ${p.version} has two names (${entry.name}, ${p.name})`);
    entry[p.direction] = readFileSync(dir + file, 'utf8');
    byVersion.set(p.version, entry);
  }
  const out: Migration[] = [];
  for (const [version, e] of [...byVersion].sort((a, b) => a[0] - b[0])) {
    if (e.up === undefined || e.down === undefined) throw new DoctorError('INTERNAL', `sql/migrations: version ${version} needs both .up.sql and .down.sql`);
    const m = buildMigration({ version, name: e.name, up: e.up, down: e.down });
    // The unique index must be exactly the one the contract (UNIQUE_INDEX_STATUSES) describes.
    if (m.index.name === UNIQUE_INDEX_NAME) {
      const diffs = compareIndexShapes(expectedUniqueIndex(), m.index);
      if (diffs.length) throw new DoctorError('INTERNAL', `sql/migrations/${version}: disagrees with the service contract: ${diffs.join('; ')}`);
    }
    out.push(m);
  }
  return out;
}

/** The statement with the service schema substituted. */
export function renderStatement(db: Db, statement: string): string {
  return renderSql(statement, db.ids);
}

/** A status no contract value equals: the live predicate must not hold for it either. */
const PROBE_STATUS = 'digest-doctor:not-a-status';

/**
 * One index, read from the catalog and judged by the server against the migration's `expected`
 * shape: structural fields (indisunique, the access method, indkey, indclass, indcollation,
 * indoption, INCLUDE columns, NULLS NOT DISTINCT, DEFERRABLE), the predicate evaluated by the
 * server for every contract status (src/postgres/checks.ts), and, for the service's unique index
 * when everything else matches, the arbiter proof (EXPLAIN of the service's upsert must list it).
 * pg_get_indexdef is only shown, never parsed. Must not run inside a caller's transaction.
 */
export async function readIndex(db: Db, expected: IndexShape): Promise<CatalogIndex> {
  const [row] = await db.query<{
    is_valid: boolean;
    is_ready: boolean;
    definition: string;
    build_pid: number | null;
    build_phase: string | null;
    build_user: string | null;
    build_application: string | null;
  }>('migrate_index_state', [db.ids.schema, expected.name]);
  if (!row) return { exists: false, valid: false, ready: false, definition: null, building: null, differences: [] };
  const c: CatalogIndex = {
    exists: true,
    valid: row.is_valid,
    ready: row.is_ready,
    definition: row.definition,
    building: row.build_pid ? { pid: row.build_pid, phase: row.build_phase ?? 'unknown', user: row.build_user, application: row.build_application } : null,
    differences: [],
  };
  const [f] = await db.query<{
    table_schema: string;
    table_name: string;
    is_unique: boolean;
    method: string;
    key_columns: Array<string | null>;
    include_columns: number;
    default_opclasses: boolean;
    default_collations: boolean;
    default_order: boolean;
    nulls_not_distinct: boolean;
    deferrable: boolean;
    predicate: string | null;
  }>('migrate_index_facts', [db.ids.schema, expected.name]);
  if (!f) return c; // dropped between the two reads: the next read sees it absent
  const facts: IndexFacts = {
    table: f.table_schema === db.ids.schema ? f.table_name : null,
    unique: f.is_unique,
    method: f.method,
    keyColumns: f.key_columns,
    includeColumns: f.include_columns,
    defaultOpclasses: f.default_opclasses,
    defaultCollations: f.default_collations,
    defaultOrder: f.default_order,
    nullsNotDistinct: f.nulls_not_distinct,
    deferrable: f.deferrable,
    hasPredicate: f.predicate !== null,
  };
  const candidates = [...STATUSES, PROBE_STATUS];
  let holds: string[] | { error: string } | null = null;
  if (f.predicate !== null && facts.table === TABLE) holds = (await evaluateOverStatuses(db, [f.predicate], candidates, 'true'))[0] ?? null;
  c.differences = indexFactDifferences(expected, facts, holds ?? null, candidates);
  if (expected.name === UNIQUE_INDEX_NAME && c.valid && c.ready) {
    const arbiters = await upsertArbiters(db);
    if (c.differences.length === 0 && !arbiters.includes(expected.name)) {
      c.differences.push(`the service's upsert (ON CONFLICT (user_id, digest_date) WHERE status IN (...)) does not use it as its arbiter: EXPLAIN lists ${arbiters.length ? arbiters.join(', ') : (arbiters.failed ?? 'none')}`);
    } else if (c.differences.length && arbiters.failed) {
      c.differences.push(`the service's ON CONFLICT fails against it (${arbiters.failed})`);
    }
  }
  return c;
}

/** Facts the connection checks need, including whether the connection is one session (postgres/session.ts; `second`: as proveSession's). */
export async function sessionFacts(db: Db, port: number | null, second?: () => Promise<Db>): Promise<SessionFacts> {
  const session = await proveSession(db, second);
  const [sessionKept, sessionProblem] = [session.kept, session.problem];
  const [f] = await db.query<{ in_recovery: boolean; transaction_read_only: boolean; default_read_only: boolean; current_user: string; server_port: number | null }>(
    'migrate_session_facts',
  );
  const [p] = await db.query<{ table_owner: string; can_create_index: boolean; can_write_state: boolean }>('migrate_table_privileges', [db.ids.schema, TABLE, db.ids.state]);
  return {
    port,
    sessionKept,
    sessionProblem,
    inRecovery: f!.in_recovery,
    transactionReadOnly: f!.transaction_read_only,
    defaultReadOnly: f!.default_read_only,
    currentUser: f!.current_user,
    tableOwner: p?.table_owner ?? 'unknown',
    canCreateIndex: p?.can_create_index ?? false,
    canWriteState: p?.can_write_state ?? false,
    stateSchema: db.ids.state,
  };
}

export interface LockHolder {
  pid: number;
  user: string | null;
  application: string | null;
  clientAddr: string | null;
  since: string | null;
  state: string | null;
  query: string | null;
}

export async function lockHolder(db: Db): Promise<LockHolder | null> {
  const [r] = await db.query<{ pid: number; user_name: string | null; application_name: string | null; client_addr: string | null; backend_start: Date | null; state: string | null; query: string | null }>(
    'migrate_lock_holder',
    [db.ids.schema],
  );
  if (!r) return null;
  return { pid: r.pid, user: r.user_name, application: r.application_name, clientAddr: r.client_addr, since: r.backend_start ? new Date(r.backend_start).toISOString() : null, state: r.state, query: r.query };
}

/** The migrate lock of a service schema is (MIGRATE_LOCK, schema): see postgres/session.ts pollAdvisoryLock. */
export const MIGRATE_LOCK = 'digest-doctor:migrate';

export interface LongTransaction {
  pid: number;
  user: string | null;
  application: string | null;
  state: string | null;
  xactStart: string;
  ageMs: number;
  query: string | null;
}

/** The rows of migrate_long_transactions and migrate_table_lockers (one column list). */
async function openTransactions(db: Db, query: 'migrate_long_transactions' | 'migrate_table_lockers', params: unknown[]): Promise<LongTransaction[]> {
  const rows = await db.query<{ pid: number; user_name: string | null; application_name: string | null; state: string | null; xact_start: Date; age_ms: number; query: string | null }>(query, params);
  return rows.map((r) => ({ pid: r.pid, user: r.user_name, application: r.application_name, state: r.state, xactStart: new Date(r.xact_start).toISOString(), ageMs: r.age_ms, query: r.query }));
}

/** Transactions open longer than `olderThanMs`, oldest first, at most `limit`. */
export async function longTransactions(db: Db, olderThanMs: number, limit = 10): Promise<LongTransaction[]> {
  return openTransactions(db, 'migrate_long_transactions', [olderThanMs, limit]);
}

/** Open transactions holding a lock on digest_history: what a concurrent drop or build waits for. */
export async function tableLockers(db: Db, limit = 5): Promise<LongTransaction[]> {
  return openTransactions(db, 'migrate_table_lockers', [db.ids.schema, TABLE, limit]);
}

export interface PreparedTransaction {
  gid: string;
  owner: string;
  database: string;
  /** When PREPARE TRANSACTION ran (ISO). */
  prepared: string;
  ageMs: number;
  /** In the database we are connected to: a concurrent build (and its drop) waits for it. */
  inThisDatabase: boolean;
  /** It holds a lock on digest_history. */
  locksTable: boolean;
}

/**
 * Prepared transactions (pg_prepared_xacts), oldest first: invisible in pg_stat_activity, yet a
 * concurrent build waits for those of its database (their locks and their snapshot) until someone
 * runs COMMIT PREPARED or ROLLBACK PREPARED.
 */
export async function preparedTransactions(db: Db, limit = 10): Promise<PreparedTransaction[]> {
  const rows = await db.query<{ gid: string; owner: string; database: string; prepared: Date; age_ms: number; this_db: boolean; locks_table: boolean }>('migrate_prepared_xacts', [db.ids.schema, TABLE, limit]);
  return rows.map((r) => ({ gid: r.gid, owner: r.owner, database: r.database, prepared: new Date(r.prepared).toISOString(), ageMs: r.age_ms, inThisDatabase: r.this_db, locksTable: r.locks_table }));
}

export interface DuplicateSample {
  userId: string;
  digestDate: string;
  rows: number;
  ids: string[];
  statuses: string[];
}

/** (user, day) groups with more than one row the unique index covers: the build would fail on them. */
export async function indexDuplicates(db: Db, limit: number): Promise<{ totalGroups: number; totalRows: number; groups: DuplicateSample[] }> {
  const rows = await db.query<{ user_id: string; digest_date: string; row_count: number; ids: string[]; statuses: string[]; total_groups: number; total_rows: number }>(
    'migrate_duplicates',
    [[...UNIQUE_INDEX_STATUSES], limit],
  );
  return {
    totalGroups: rows[0]?.total_groups ?? 0,
    totalRows: rows[0]?.total_rows ?? 0,
    groups: rows.map((r) => ({ userId: r.user_id, digestDate: r.digest_date, rows: r.row_count, ids: r.ids, statuses: r.statuses })),
  };
}

function ledgerEntry(r: Record<string, any>): LedgerEntry {
  const iso = (d: unknown) => (d == null ? null : new Date(d as string).toISOString());
  return {
    version: r.version,
    name: r.name,
    checksum: r.checksum,
    status: r.status,
    attempts: r.attempts,
    lastError: r.last_error,
    lastSqlstate: r.last_sqlstate,
    toolVersion: r.tool_version,
    appliedBy: r.applied_by,
    startedAt: iso(r.started_at)!,
    finishedAt: iso(r.finished_at),
  };
}

/**
 * The ledger of this service schema, read as it is (writes nothing): empty when the state schema or
 * its ledger table does not exist yet; REFUSED (exit 4) with the GRANTs when the role may not read it.
 */
export async function readLedger(db: Db): Promise<Map<number, LedgerEntry>> {
  const state = await readState(db, ['schema_migrations'], 'migrate');
  if (!state?.relations.has('schema_migrations')) return new Map();
  const rows = await db.query('migrate_ledger_list', [db.ids.schema]);
  return new Map(rows.map((r) => [r.version as number, ledgerEntry(r)]));
}

/** The control session's ledger writes need not wait for the WAL flush (see the query's header). */
export async function ledgerWritesAsync(db: Db): Promise<void> {
  await db.query('migrate_ledger_async');
}

export async function ledgerBegin(db: Db, m: Migration): Promise<void> {
  await ensureState(db, 'ledger');
  await db.query('migrate_ledger_begin', [db.ids.schema, m.version, m.name, m.checksum, TOOL_VERSION]);
}

export async function ledgerAttempt(db: Db, m: Migration, error: { message: string; sqlstate: string | null } | null): Promise<void> {
  await db.query('migrate_ledger_attempt', [db.ids.schema, m.version, error?.message ?? null, error?.sqlstate ?? null]);
}

export async function ledgerFinish(db: Db, m: Migration, status: 'applied' | 'failed' | 'reverted', error: { message: string; sqlstate: string | null } | null = null): Promise<void> {
  await db.query('migrate_ledger_finish', [db.ids.schema, m.version, status, error?.message ?? null, error?.sqlstate ?? null]);
}

/** Session-level timeouts for the next phase (0 = none). */
export async function setTimeouts(db: Db, lockTimeoutMs: number, statementTimeoutMs: number): Promise<void> {
  await db.query('migrate_set_timeouts', [String(lockTimeoutMs), String(statementTimeoutMs)]);
}

/**
 * The arbiter indexes Postgres picks for the service's upsert (EXPLAIN only: nothing is inserted;
 * allowed in a read-only transaction). When the server finds no arbiter at all (42P10, what the
 * service's own INSERT would then fail with) the list is empty and `failed` says so.
 */
export async function upsertArbiters(db: Db): Promise<string[] & { failed?: string }> {
  let row: { 'QUERY PLAN': unknown } | undefined;
  try {
    [row] = await db.query<{ 'QUERY PLAN': unknown }>('migrate_explain_upsert', [randomUUID(), randomUUID(), '2000-01-01']);
  } catch (err) {
    if (sqlstateOf(err) !== '42P10') throw err;
    return Object.assign([] as string[], { failed: `42P10: ${serverMessageOf(err)}` });
  }
  const raw = row?.['QUERY PLAN'];
  const plan = (typeof raw === 'string' ? JSON.parse(raw) : raw) as Array<{ Plan?: { 'Conflict Arbiter Indexes'?: string[] } }>;
  return plan?.[0]?.Plan?.['Conflict Arbiter Indexes'] ?? [];
}

export interface BuildProgress {
  phase: string;
  blocksTotal: number;
  blocksDone: number;
  tuplesTotal: number;
  tuplesDone: number;
  lockersTotal: number;
  lockersDone: number;
}

export async function buildProgress(db: Db, pid: number): Promise<BuildProgress | null> {
  const [r] = await db.query<{ phase: string; blocks_total: number; blocks_done: number; tuples_total: number; tuples_done: number; lockers_total: number; lockers_done: number }>(
    'migrate_progress',
    [pid],
  );
  if (!r) return null;
  return { phase: r.phase, blocksTotal: r.blocks_total, blocksDone: r.blocks_done, tuplesTotal: r.tuples_total, tuplesDone: r.tuples_done, lockersTotal: r.lockers_total, lockersDone: r.lockers_done };
}

export async function cancelBackend(db: Db, pid: number): Promise<boolean> {
  const [r] = await db.query<{ cancelled: boolean }>('migrate_cancel_backend', [pid]);
  return Boolean(r?.cancelled);
}

