// `migrate`: install (or remove) the partial unique index on a live database, safely. The plan and
// every verdict come from core/migration.ts; the statements and catalog reads from postgres/migrator.ts.
import { setTimeout as sleep } from 'node:timers/promises';
import * as z from 'zod';
import { UNIQUE_INDEX_NAME } from '../core/contract.js';
import {
  connectionChecks,
  decideRetry,
  indexDdlWords,
  indexDifferences,
  migrationStatus,
  planUp,
  runnableStatement,
  type CatalogIndex,
  type Check,
  type Migration,
} from '../core/migration.js';
import { serverMessageOf, sqlstateOf } from '../core/faults.js';
import { formatDuration, plural } from '../core/text.js';
import { DoctorError } from '../errors.js';
import type { Db } from '../postgres/db.js';
import {
  buildProgress,
  cancelBackend,
  indexDuplicates,
  ledgerAttempt,
  ledgerBegin,
  ledgerFinish,
  ledgerWritesAsync,
  loadMigrations,
  lockHolder,
  MIGRATE_LOCK,
  longTransactions,
  preparedTransactions,
  readIndex,
  readLedger,
  renderStatement,
  sessionFacts,
  setTimeouts,
  tableLockers,
  upsertArbiters,
  type BuildProgress,
  type LockHolder,
  type PreparedTransaction,
} from '../postgres/migrator.js';
import { holdAdvisoryLock, pollAdvisoryLock, type LockKey, type SessionLock } from '../postgres/session.js';

export const MIGRATE_SCHEMA_VERSION = 1 as const;

const CheckSchema = z.object({ name: z.string(), verdict: z.enum(['ok', 'warn', 'fail']), detail: z.string(), fix: z.string().nullable() });

const IndexStateSchema = z.object({
  name: z.string(),
  exists: z.boolean(),
  valid: z.boolean(),
  ready: z.boolean(),
  definition: z.string().nullable(),
  matches: z.boolean().nullable(),
  differences: z.array(z.string()),
  building: z.object({ pid: z.number().int(), phase: z.string(), user: z.string().nullable(), application: z.string().nullable() }).nullable(),
});
export type IndexState = z.infer<typeof IndexStateSchema>;

const LockHolderSchema = z.object({
  pid: z.number().int(),
  user: z.string().nullable(),
  application: z.string().nullable(),
  clientAddr: z.string().nullable(),
  since: z.string().nullable(),
  state: z.string().nullable(),
  query: z.string().nullable(),
});

const LongTransactionSchema = z.object({
  pid: z.number().int(),
  user: z.string().nullable(),
  application: z.string().nullable(),
  state: z.string().nullable(),
  xactStart: z.string(),
  ageMs: z.number(),
  query: z.string().nullable(),
});

const PreparedTransactionSchema = z.object({
  gid: z.string(),
  owner: z.string(),
  database: z.string(),
  prepared: z.string(),
  ageMs: z.number(),
  /** In the database migrate is connected to: a concurrent build waits for it. */
  inThisDatabase: z.boolean(),
  /** It holds a lock on digest_history. */
  locksTable: z.boolean(),
});

const DuplicatesSchema = z.object({
  checked: z.boolean(),
  totalGroups: z.number().int(),
  totalRows: z.number().int(),
  groups: z.array(z.object({ userId: z.string(), digestDate: z.string(), rows: z.number().int(), ids: z.array(z.string()), statuses: z.array(z.string()) })),
});

const VerificationSchema = z.object({
  valid: z.boolean(),
  ready: z.boolean(),
  matches: z.boolean(),
  differences: z.array(z.string()),
  /** Arbiter indexes of the service's upsert, from EXPLAIN (FORMAT JSON). */
  arbiterIndexes: z.array(z.string()),
  arbiterProven: z.boolean(),
});

export const MIGRATE_OUTCOMES = ['planned', 'applied', 'noop', 'removed', 'refused', 'busy', 'failed', 'cancelled'] as const;
export type MigrateOutcome = (typeof MIGRATE_OUTCOMES)[number];

const MigrationRunSchema = z.object({
  version: z.number().int(),
  name: z.string(),
  checksum: z.string(),
  before: IndexStateSchema,
  /** Why the runner does (or would do) what it does. */
  plan: z.string(),
  outcome: z.enum(MIGRATE_OUTCOMES),
  /** The SQL run (or, in a dry run, that would run), in order; each statement is its own query(). */
  statements: z.array(z.string()),
  actions: z.array(z.string()),
  attempts: z.number().int(),
  verification: VerificationSchema.nullable(),
});
export type MigrationRun = z.infer<typeof MigrationRunSchema>;

export const MigrateResultSchema = z.object({
  schemaVersion: z.literal(MIGRATE_SCHEMA_VERSION),
  command: z.literal('migrate'),
  mode: z.enum(['plan', 'apply', 'down-plan', 'down']),
  ok: z.boolean(),
  outcome: z.enum(MIGRATE_OUTCOMES),
  message: z.string(),
  target: z.object({ database: z.string(), schema: z.string(), stateSchema: z.string() }),
  checks: z.array(CheckSchema),
  duplicates: DuplicatesSchema,
  longTransactions: z.array(LongTransactionSchema),
  /** pg_prepared_xacts, every database, oldest first (not in pg_stat_activity; a build waits for those of its database). */
  preparedTransactions: z.array(PreparedTransactionSchema),
  lockHolder: LockHolderSchema.nullable(),
  migrations: z.array(MigrationRunSchema),
});
export type MigrateResult = z.infer<typeof MigrateResultSchema>;

const LedgerEntrySchema = z.object({
  version: z.number().int(),
  name: z.string(),
  checksum: z.string(),
  status: z.enum(['running', 'applied', 'failed', 'reverted']),
  attempts: z.number().int(),
  lastError: z.string().nullable(),
  lastSqlstate: z.string().nullable(),
  toolVersion: z.string(),
  appliedBy: z.string(),
  startedAt: z.string(),
  finishedAt: z.string().nullable(),
});

export const MigrateStatusSchema = z.object({
  schemaVersion: z.literal(MIGRATE_SCHEMA_VERSION),
  command: z.literal('migrate status'),
  target: z.object({ database: z.string(), schema: z.string(), stateSchema: z.string() }),
  migrations: z.array(
    z.object({
      version: z.number().int(),
      name: z.string(),
      checksum: z.string(),
      state: z.enum(['applied', 'pending', 'drift', 'invalid', 'building']),
      problems: z.array(z.string()),
      index: IndexStateSchema,
      ledger: LedgerEntrySchema.nullable(),
    }),
  ),
  /** Ledger rows for versions with no file. */
  unknownLedgerVersions: z.array(z.number().int()),
  drift: z.boolean(),
  /** A migration's index is being built right now (pg_stat_progress_create_index): exit 4 until it ends. */
  building: z.boolean(),
  findings: z.array(z.string()),
});
export type MigrateStatus = z.infer<typeof MigrateStatusSchema>;

export interface MigrateOptions {
  /** lock_timeout of every phase; it also bounds the build's waits for older transactions. */
  lockTimeoutMs: number;
  /** statement_timeout of CREATE INDEX CONCURRENTLY (0 = none). */
  buildTimeoutMs: number;
  /** statement_timeout of DROP INDEX CONCURRENTLY and the control statements. */
  statementTimeoutMs: number;
  /** Build attempts (the first included) before giving up on 55P03 / 57014 / 40P01. */
  maxAttempts: number;
  /** First retry delay; doubles each time. */
  retryDelayMs: number;
  /** How long to poll for the advisory lock before answering busy. */
  lockWaitMs: number;
  /** Transactions open longer than this are listed. */
  longTransactionMs: number;
  /** Duplicate groups to list. */
  duplicateLimit: number;
  /** Port of the server as configured (6543: the Supabase transaction pooler). */
  port: number | null;
}

export interface MigrateHooks {
  /** Opens the dedicated build connection (its own session, never inside a transaction). */
  connectBuild(): Promise<Db>;
  /** Build progress, polled from the control connection while the build runs. */
  onProgress?(p: BuildProgress): void;
  /** Aborting cancels the build on the server (pg_cancel_backend) and removes the invalid index. */
  signal?: AbortSignal;
}

export const DEFAULT_MIGRATE_OPTIONS: MigrateOptions = {
  lockTimeoutMs: 10_000,
  buildTimeoutMs: 4 * 3_600_000,
  statementTimeoutMs: 60_000,
  maxAttempts: 3,
  retryDelayMs: 1_000,
  lockWaitMs: 10_000,
  longTransactionMs: 60_000,
  duplicateLimit: 10,
  port: null,
};

// The server's SQLSTATE and message, also through the DoctorError Db wraps them in (the retry rule reads the SQLSTATE).
const messageOf = serverMessageOf;

function indexState(m: Migration, c: CatalogIndex): IndexState {
  const differences = indexDifferences(m.index, c);
  return { name: m.index.name, exists: c.exists, valid: c.valid, ready: c.ready, definition: c.definition, matches: c.exists ? differences.length === 0 : null, differences, building: c.building };
}

function target(db: Db) {
  return { database: db.target, schema: db.ids.schema, stateSchema: db.ids.state };
}

const NO_DUPLICATES: z.infer<typeof DuplicatesSchema> = { checked: false, totalGroups: 0, totalRows: 0, groups: [] };

interface Preflight {
  checks: Check[];
  duplicates: z.infer<typeof DuplicatesSchema>;
  longTransactions: z.infer<typeof LongTransactionSchema>[];
  preparedTransactions: PreparedTransaction[];
  lockHolder: LockHolder | null;
}

/** Every check the dry run shows and --apply enforces, run together (doctor style). */
async function preflight(db: Db, o: MigrateOptions, opts: { duplicates: boolean; lock: boolean }): Promise<Preflight> {
  const checks = connectionChecks(await sessionFacts(db, o.port));
  let duplicates = NO_DUPLICATES;
  if (opts.duplicates) {
    duplicates = { checked: true, ...(await indexDuplicates(db, o.duplicateLimit)) };
    checks.push(
      duplicates.totalGroups
        ? {
            name: 'duplicates',
            verdict: 'fail',
            detail: `${plural(duplicates.totalGroups, '(user, day) group')} ${duplicates.totalGroups === 1 ? 'holds' : 'hold'} more than one pending/processing row (${plural(duplicates.totalRows, 'row')}): the unique build would fail`,
            fix: 'run digest-doctor fix-duplicates --apply, then migrate again',
          }
        : { name: 'duplicates', verdict: 'ok', detail: 'no (user, day) holds two rows the index covers', fix: null },
    );
  }
  const long = await longTransactions(db, o.longTransactionMs);
  checks.push(
    long.length
      ? {
          name: 'long transactions',
          verdict: 'warn',
          detail: `${plural(long.length, 'transaction')} open longer than ${formatDuration(o.longTransactionMs)}: a concurrent build waits for each (pids ${long.map((t) => t.pid).join(', ')})`,
          fix: 'let them finish or end them (pg_terminate_backend) before the build; lock_timeout bounds the wait',
        }
      : { name: 'long transactions', verdict: 'ok', detail: `none open longer than ${Math.round(o.longTransactionMs / 1000)} s`, fix: null },
  );
  const prepared = await preparedTransactions(db);
  checks.push(preparedCheck(prepared));
  const holder = opts.lock ? await lockHolder(db) : null;
  if (opts.lock) {
    checks.push(
      holder
        ? { name: 'lock', verdict: 'fail', detail: `another migrate holds the lock: ${describeHolder(holder)}`, fix: 'wait for it to finish' }
        : { name: 'lock', verdict: 'ok', detail: 'no other migrate is running', fix: null },
    );
  }
  return { checks, duplicates, longTransactions: long, preparedTransactions: prepared, lockHolder: holder };
}

const sqlLiteral = (v: string) => `'${v.replace(/'/g, "''")}'`;
/** The statements that end prepared transactions, runnable as printed (in the transaction's database, as its owner or a superuser). */
const finishPrepared = (ps: PreparedTransaction[]) => ps.map((p) => `COMMIT PREPARED ${sqlLiteral(p.gid)} or ROLLBACK PREPARED ${sqlLiteral(p.gid)} (in database ${p.database}, as ${p.owner} or a superuser)`).join('; ');
const describePrepared = (p: PreparedTransaction) => `'${p.gid}' (owner ${p.owner}, database ${p.database}, prepared ${Math.round(p.ageMs / 1000)} s ago${p.locksTable ? ', holds a lock on digest_history' : ''})`;

/** Prepared transactions of this database: a concurrent build and its drop wait for each until it is committed or rolled back. */
function preparedCheck(prepared: PreparedTransaction[]): Check {
  const here = prepared.filter((p) => p.inThisDatabase);
  if (!here.length) {
    return { name: 'prepared transactions', verdict: 'ok', detail: prepared.length ? `none in this database (${prepared.length} in others)` : 'none (pg_prepared_xacts is empty)', fix: null };
  }
  return {
    name: 'prepared transactions',
    verdict: 'warn',
    detail: `${plural(here.length, 'prepared transaction')} in this database, which a concurrent build waits for: ${here.map(describePrepared).join(', ')}`,
    fix: `have their owner finish them: ${finishPrepared(here)}`,
  };
}

/** What a build or drop that timed out waited for: open transactions holding locks on the table, and prepared transactions of this database. */
async function blockersText(ctl: Db): Promise<string> {
  const lockers = await tableLockers(ctl).catch(() => []);
  const prepared = (await preparedTransactions(ctl).catch(() => [])).filter((p) => p.inThisDatabase);
  const parts: string[] = [];
  if (lockers.length) parts.push(`open transactions it waits for: ${lockers.map((t) => `pid ${t.pid} (${t.application || t.user || '?'}, open ${Math.round(t.ageMs / 1000)} s)`).join(', ')}`);
  if (prepared.length) parts.push(`prepared transactions it waits for (not in pg_stat_activity): ${prepared.map(describePrepared).join(', ')}; finish them: ${finishPrepared(prepared)}`);
  return parts.length ? `; ${parts.join('; ')}` : '';
}

export function describeHolder(h: LockHolder): string {
  return `pid ${h.pid}${h.user ? ` (${h.user}` : ' ('}${h.application ? `, ${h.application}` : ''}${h.clientAddr ? `, from ${h.clientAddr}` : ''}${h.since ? `, connected since ${h.since}` : ''})`;
}

/** The per-phase timeouts as SQL (they run as set_config(..., false): session-level, parameterised). */
function setStatements(lockMs: number, statementMs: number): string[] {
  return [`SET lock_timeout = '${lockMs}ms'`, `SET statement_timeout = '${statementMs}ms'`];
}

function planStatements(db: Db, m: Migration, c: CatalogIndex, o: MigrateOptions): { plan: string; statements: string[]; outcome: MigrateOutcome } {
  const p = planUp(m.index, c, db.engine);
  const timeouts = (stmtMs: number) => setStatements(o.lockTimeoutMs, stmtMs);
  if (p.kind !== 'build') return { plan: p.reason, statements: [], outcome: p.kind === 'noop' ? 'noop' : p.kind === 'conflict' ? 'refused' : 'busy' };
  const statements: string[] = [];
  if (p.dropInvalidFirst) statements.push(...timeouts(o.statementTimeoutMs), renderStatement(db, runnableStatement(m, 'down', db.engine)));
  statements.push(...timeouts(o.buildTimeoutMs), renderStatement(db, runnableStatement(m, 'up', db.engine)));
  return { plan: p.reason, statements, outcome: 'planned' };
}

/** `migrate` (dry run): the SQL it would run and the live preflight; writes nothing. */
export async function migratePlan(db: Db, o: MigrateOptions): Promise<MigrateResult> {
  const migrations = loadMigrations();
  const pre = await preflight(db, o, { duplicates: true, lock: true });
  const runs: MigrationRun[] = [];
  for (const m of migrations) {
    const c = await readIndex(db, m.index);
    const p = planStatements(db, m, c, o);
    runs.push({ version: m.version, name: m.name, checksum: m.checksum, before: indexState(m, c), plan: p.plan, outcome: p.outcome, statements: p.statements, actions: [], attempts: 0, verification: null });
  }
  const failing = failedChecks(pre);
  const nothing = runs.every((r) => r.outcome === 'noop');
  const blocked = runs.find((r) => r.outcome === 'refused' || r.outcome === 'busy');
  return {
    schemaVersion: MIGRATE_SCHEMA_VERSION,
    command: 'migrate',
    mode: 'plan',
    ok: failing.length === 0 && !blocked,
    outcome: nothing ? 'noop' : 'planned',
    message: blocked
      ? `--apply would not build: ${blocked.plan}`
      : nothing
        ? 'nothing to do: every migration is installed, valid and matching'
        : failing.length
          ? wouldRefuse(failing)
          : 'dry run: run with --apply to build',
    target: target(db),
    ...pre,
    migrations: runs,
  };
}

/** The DoctorError code of each way a migrate run stops early (exit codes: src/errors.ts; the same as runExitCode's). */
const CODE_BY_OUTCOME = { refused: 'REFUSED', busy: 'BUSY', cancelled: 'CANCELLED', failed: 'BUILD_FAILED' } as const;
type StopOutcome = keyof typeof CODE_BY_OUTCOME;

/**
 * A DoctorError that stops a migrate run and becomes its result (outcome and message) rather than an
 * error document: the outcome rides in `details`, so only the stops migrate makes are turned into
 * results; any other DoctorError (a lost connection, a timeout) still propagates as before.
 */
function halt(outcome: StopOutcome, message: string): DoctorError {
  return new DoctorError(CODE_BY_OUTCOME[outcome], message, { details: { migrateOutcome: outcome } });
}

/** The outcome of a stop made by `halt`, or undefined for any other error. */
function stopOutcome(err: unknown): StopOutcome | undefined {
  if (!(err instanceof DoctorError)) return undefined;
  const o = (err.details as { migrateOutcome?: StopOutcome } | undefined)?.migrateOutcome;
  return o !== undefined && o in CODE_BY_OUTCOME ? o : undefined;
}

/** The migrate lock held on each control session: the statements that matter prove they run on its holder. */
const migrateLocks = new WeakMap<Db, SessionLock>();

/** REFUSED (exit 4) unless the control statement about to run (`what`) runs on the process that holds the migrate lock. */
async function assertLockHeld(ctl: Db, what: string): Promise<void> {
  try {
    await migrateLocks.get(ctl)?.assertHeld(what);
  } catch (err) {
    throw halt('refused', messageOf(err));
  }
}

/**
 * Runs `fn` holding the session-level advisory lock; busy (with who holds it) when it cannot be had.
 * Right after it is granted, and before each statement that matters, the process running the
 * statement must be the lock's holder (per pg_locks); a release the holder did not run is reported.
 */
async function withLock<T>(db: Db, o: MigrateOptions, signal: AbortSignal | undefined, command: string, fn: () => Promise<T>): Promise<T | { busy: LockHolder | null }> {
  const key: LockKey = [MIGRATE_LOCK, db.ids.schema];
  if (!(await pollAdvisoryLock(db, key, o.lockWaitMs, signal))) return { busy: await lockHolder(db) };
  return holdAdvisoryLock(db, key, command, migrateLocks, fn, {
    wrap: (err) => halt('refused', messageOf(err)),
    notReleased: (pid) =>
      halt('refused', `${command} finished, but the migrate lock taken by pid ${pid} was not released by the process that ran the unlock: a transaction pooler; the lock ends with that server connection (connect directly next time)`),
  });
}

/** REFUSED unless `b` still runs on server process `pid` (its session settings were set there). */
async function assertSameProcess(b: Db, pid: number, what: string): Promise<void> {
  const now = await b.backendPid();
  if (now !== pid) throw halt('refused', `refused: the build connection changed server process (pid ${pid}, then ${now}) before ${what}: its lock_timeout and statement_timeout would not apply; connect directly, not through a transaction pooler`);
}

/**
 * What is left of the index after a failed build or drop, in words ('' when nothing): the catalog
 * is read again, so the message says exactly what is there.
 */
async function leftBehind(ctl: Db, m: Migration): Promise<string> {
  const c = await readIndex(ctl, m.index).catch(() => null);
  if (!c) return `; could not read the catalog to check for index ${m.index.name}: run digest-doctor migrate status`;
  if (!c.exists) return '; nothing is left behind';
  const state = c.valid && c.ready ? 'valid' : `INVALID${c.ready ? ' but ready (it still rejects duplicate writes)' : ''}`;
  const by = c.building ? `, still being built by pid ${c.building.pid} (${c.building.application ?? c.building.user ?? '?'})` : '';
  return `; left behind: index ${m.index.name} (${state}${by}): the next digest-doctor migrate --apply drops and rebuilds an INVALID one, or run ${renderStatement(ctl, runnableStatement(m, 'down', ctl.engine))}`;
}

/** DROP INDEX CONCURRENTLY of an index known to exist, retried on lock timeouts and deadlocks. */
async function dropConcurrently(ctl: Db, build: Db, m: Migration, o: MigrateOptions, run: MigrationRun, why: string): Promise<void> {
  const stmt = renderStatement(build, runnableStatement(m, 'down', build.engine));
  const pid = await build.backendPid();
  for (let attempt = 1; ; attempt++) {
    await assertLockHeld(ctl, 'DROP INDEX CONCURRENTLY');
    await setTimeouts(build, o.lockTimeoutMs, o.statementTimeoutMs);
    await assertSameProcess(build, pid, 'DROP INDEX CONCURRENTLY');
    run.statements.push(...setStatements(o.lockTimeoutMs, o.statementTimeoutMs), stmt);
    try {
      await build.raw(stmt);
      run.actions.push(`dropped index ${m.index.name} (${why})`);
      return;
    } catch (err) {
      const c = await readIndex(ctl, m.index);
      if (!c.exists) return;
      const d = decideRetry({ sqlstate: sqlstateOf(err) ?? undefined, attempt, maxAttempts: o.maxAttempts, baseDelayMs: o.retryDelayMs });
      run.actions.push(`${build.engine === 'embedded' ? 'DROP INDEX' : 'DROP INDEX CONCURRENTLY'} attempt ${attempt} failed (${sqlstateOf(err) ?? '?'}: ${messageOf(err)})`);
      if (!d.retry) {
        // DROP INDEX CONCURRENTLY waits for the same old transactions a build does: name them and leave it for the next run.
        const who = await blockersText(ctl);
        throw halt('busy', `${why}, but index ${m.index.name} could not be dropped yet (${sqlstateOf(err) ?? '?'}: ${messageOf(err)})${who}: the next digest-doctor migrate --apply drops it (it is found INVALID), or run: ${stmt}`);
      }
      await sleep(d.delayMs);
    }
  }
}

/** How long a failed build of our own may linger in pg_stat_progress_create_index before it is dropped anyway. */
const OWN_BUILD_SETTLE_MS = 5_000;

/**
 * Drops the index if a failed build left it INVALID; never touches a valid one, nor one another
 * session is building. A build listed in pg_stat_progress_create_index by the build connection's
 * own process is ours: node-postgres reports a failed statement as soon as the error arrives, while
 * the server process may still be aborting it (and listed). A round trip on the build connection
 * waits for the abort to finish; the listing is then waited out (bounded) and never taken for
 * someone else's build.
 */
async function dropIfInvalid(ctl: Db, build: Db, m: Migration, o: MigrateOptions, run: MigrationRun, why: string): Promise<void> {
  const own = await build.backendPid();
  let c = await readIndex(ctl, m.index);
  const until = Date.now() + OWN_BUILD_SETTLE_MS;
  while (c.building?.pid === own && Date.now() < until) {
    await sleep(50);
    c = await readIndex(ctl, m.index);
  }
  const someoneElse = c.building !== null && c.building.pid !== own;
  if (c.exists && !(c.valid && c.ready) && !someoneElse) await dropConcurrently(ctl, build, m, o, run, why);
}

function pollProgress(ctl: Db, pid: number, onProgress: ((p: BuildProgress) => void) | undefined): () => Promise<void> {
  if (!onProgress) return async () => undefined;
  let running = true;
  // The wait between polls ends early on stop, so a finished build is not held up by the poller.
  let wake = () => undefined as void;
  const loop = (async () => {
    while (running) {
      const p = await buildProgress(ctl, pid).catch(() => null);
      if (p && running) onProgress(p);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 500);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  })();
  return async () => {
    running = false;
    wake();
    await loop;
  };
}

async function verify(ctl: Db, m: Migration): Promise<z.infer<typeof VerificationSchema>> {
  const c = await readIndex(ctl, m.index);
  const differences = c.exists ? indexDifferences(m.index, c) : ['index missing'];
  // The arbiter proof applies to the unique index the service's upsert names.
  const arbiters = m.index.name === UNIQUE_INDEX_NAME ? await upsertArbiters(ctl) : [m.index.name];
  return { valid: c.valid, ready: c.ready, matches: differences.length === 0, differences, arbiterIndexes: arbiters, arbiterProven: arbiters.includes(m.index.name) };
}

/** The build loop: CREATE ... CONCURRENTLY alone on the build connection, dropped and retried on 55P03 / 57014 / 40P01. */
async function build(ctl: Db, b: Db, m: Migration, o: MigrateOptions, hooks: MigrateHooks, run: MigrationRun): Promise<void> {
  const stmt = renderStatement(b, runnableStatement(m, 'up', b.engine));
  const pid = await b.backendPid();
  let cancelled = false;
  const onAbort = () => {
    cancelled = true;
    void cancelBackend(ctl, pid).catch(() => undefined);
  };
  hooks.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for (let attempt = 1; ; attempt++) {
      if (hooks.signal?.aborted) throw halt('cancelled', 'interrupted before the build started; nothing was built');
      await assertLockHeld(ctl, 'CREATE INDEX CONCURRENTLY');
      await setTimeouts(b, o.lockTimeoutMs, o.buildTimeoutMs);
      await assertSameProcess(b, pid, 'CREATE INDEX CONCURRENTLY');
      run.statements.push(...setStatements(o.lockTimeoutMs, o.buildTimeoutMs), stmt);
      run.attempts = attempt;
      const stop = pollProgress(ctl, pid, hooks.onProgress);
      let error: unknown = null;
      try {
        await b.raw(stmt);
      } catch (err) {
        error = err;
      } finally {
        await stop();
      }
      const sqlstate = error ? sqlstateOf(error) : null;
      await ledgerAttempt(ctl, m, error ? { message: messageOf(error), sqlstate } : null);
      if (!error) {
        run.actions.push(`built index ${m.index.name} ${indexDdlWords(b.engine)} (attempt ${attempt})`);
        return;
      }
      run.actions.push(`attempt ${attempt} failed: ${sqlstate ?? '?'} ${messageOf(error)}`);
      // 42P07: the name was taken by someone else's index; it is not ours to drop.
      if (sqlstate !== '42P07') await dropIfInvalid(ctl, b, m, o, run, cancelled ? 'the cancelled build left it invalid' : 'the failed build left it invalid');
      // A cancel the user asked for (57014 too) is never retried.
      if (cancelled) throw halt('cancelled', `interrupted: the build was cancelled on the server (pg_cancel_backend ${pid})${await leftBehind(ctl, m)}`);
      if (sqlstate === '23505') throw halt('refused', `a duplicate (user, day) appeared during the build (${messageOf(error)})${await leftBehind(ctl, m)}; run digest-doctor fix-duplicates --apply, then migrate again`);
      const d = decideRetry({ sqlstate: sqlstate ?? undefined, attempt, maxAttempts: o.maxAttempts, baseDelayMs: o.retryDelayMs });
      if (!d.retry) {
        if (d.retryable) {
          throw halt('busy', `the build did not finish after ${plural(attempt, 'attempt')} (${d.reason})${await blockersText(ctl)}${await leftBehind(ctl, m)}: rerun when the table is quieter, or raise --lock-timeout / --build-timeout`);
        }
        throw halt('failed', `the build failed (${sqlstate ?? 'no SQLSTATE'}: ${messageOf(error)})${await leftBehind(ctl, m)}`);
      }
      run.actions.push(`retrying in ${d.delayMs} ms (${d.reason})`);
      await sleep(d.delayMs);
    }
  } finally {
    hooks.signal?.removeEventListener('abort', onAbort);
  }
}

function emptyRun(m: Migration, c: CatalogIndex, plan: string, outcome: MigrateOutcome): MigrationRun {
  return { version: m.version, name: m.name, checksum: m.checksum, before: indexState(m, c), plan, outcome, statements: [], actions: [], attempts: 0, verification: null };
}

const failedChecks = (pre: Preflight) => pre.checks.filter((c) => c.verdict === 'fail');
const wouldRefuse = (failing: Preflight['checks']) => `--apply would refuse: ${failing.map((c) => c.name).join(', ')} failed`;

/** The result of an --apply whose preflight failed (exit 4), or null when every check passed. */
function refusedByPreflight(db: Db, mode: 'apply' | 'down', pre: Preflight): MigrateResult | null {
  const failing = failedChecks(pre);
  return failing.length ? finish(db, mode, 'refused', `refused: ${failing.map((c) => `${c.name}: ${c.detail}${c.fix ? ` (fix: ${c.fix})` : ''}`).join('; ')}; nothing was written`, pre, []) : null;
}

function finish(db: Db, mode: MigrateResult['mode'], outcome: MigrateOutcome, message: string, pre: Preflight, runs: MigrationRun[]): MigrateResult {
  const ok = outcome === 'applied' || outcome === 'noop' || outcome === 'removed' || outcome === 'planned';
  return { schemaVersion: MIGRATE_SCHEMA_VERSION, command: 'migrate', mode, ok, outcome, message, target: target(db), ...pre, migrations: runs };
}

/** `migrate --apply`: preflight enforced, lock, build or rebuild each migration, verify, record. */
export async function migrateApply(db: Db, o: MigrateOptions, hooks: MigrateHooks): Promise<MigrateResult> {
  const migrations = loadMigrations();
  const pre = await preflight(db, o, { duplicates: false, lock: false });
  const refused = refusedByPreflight(db, 'apply', pre);
  if (refused) return refused;
  const runs: MigrationRun[] = [];
  await ledgerWritesAsync(db);
  const locked = await withLock(db, o, hooks.signal, 'migrate --apply', async () => {
    let b: Db | null = null;
    try {
      for (const m of migrations) {
        const c = await readIndex(db, m.index);
        const p = planUp(m.index, c, db.engine);
        const run = emptyRun(m, c, p.reason, 'noop');
        runs.push(run);
        if (p.kind === 'noop') {
          const ledger = (await readLedger(db)).get(m.version);
          if (ledger?.status !== 'applied' || ledger.checksum !== m.checksum) {
            await assertLockHeld(db, 'the ledger write');
            await ledgerBegin(db, m);
            await ledgerFinish(db, m, 'applied');
            run.actions.push('recorded the installed index in the ledger');
          }
          continue;
        }
        if (p.kind === 'building-elsewhere') throw halt('busy', p.reason);
        if (p.kind === 'conflict') throw halt('refused', `${p.reason}: remove it (digest-doctor migrate --down --apply) or rename it, then migrate again`);
        b ??= await hooks.connectBuild();
        if (m.index.unique) {
          const d = await indexDuplicates(db, o.duplicateLimit);
          pre.duplicates = { checked: true, ...d };
          if (d.totalGroups) {
            // A dead invalid unique index still rejects duplicate writes: it must not outlive the refusal.
            if (p.dropInvalidFirst) await dropIfInvalid(db, b, m, o, run, 'an earlier failed build left it invalid');
            pre.checks.push({ name: 'duplicates', verdict: 'fail', detail: `${plural(d.totalGroups, '(user, day) group')} ${d.totalGroups === 1 ? 'holds' : 'hold'} more than one pending/processing row (${plural(d.totalRows, 'row')})`, fix: 'run digest-doctor fix-duplicates --apply, then migrate again' });
            throw halt('refused', `refused: ${plural(d.totalGroups, '(user, day) group')} ${d.totalGroups === 1 ? 'holds' : 'hold'} more than one pending/processing row; the unique index cannot be built. Run digest-doctor fix-duplicates --apply, then migrate again`);
          }
          pre.checks.push({ name: 'duplicates', verdict: 'ok', detail: 'no (user, day) holds two rows the index covers', fix: null });
        }
        await assertLockHeld(db, 'the build');
        await ledgerBegin(db, m);
        try {
          if (p.dropInvalidFirst) await dropIfInvalid(db, b, m, o, run, 'an earlier failed build left it invalid');
          await build(db, b, m, o, hooks, run);
          run.verification = await verify(db, m);
          const v = run.verification;
          if (!(v.valid && v.ready && v.matches && v.arbiterProven)) {
            throw halt('failed', `built, but verification failed: ${[!v.valid && 'not valid', !v.ready && 'not ready', ...v.differences, !v.arbiterProven && `the upsert's arbiters are [${v.arbiterIndexes.join(', ')}]`].filter(Boolean).join('; ')}`);
          }
          await ledgerFinish(db, m, 'applied');
          run.outcome = 'applied';
        } catch (err) {
          const failure = stopOutcome(err) ? { message: messageOf(err), sqlstate: null } : { message: messageOf(err), sqlstate: sqlstateOf(err) };
          await ledgerFinish(db, m, 'failed', failure).catch(() => undefined);
          throw err;
        }
      }
      return null;
    } finally {
      await b?.close();
    }
  }).catch((err: unknown) => {
    const outcome = stopOutcome(err);
    if (!outcome) throw err;
    const last = runs[runs.length - 1];
    if (last) last.outcome = outcome;
    return { stopped: outcome, message: (err as DoctorError).message };
  });
  if (locked && 'stopped' in locked) return finish(db, 'apply', locked.stopped, locked.message, pre, runs);
  if (locked && 'busy' in locked && hooks.signal?.aborted) return finish(db, 'apply', 'cancelled', 'interrupted while waiting for the migrate lock; nothing was done', pre, runs);
  if (locked && 'busy' in locked) {
    pre.lockHolder = locked.busy;
    pre.checks.push({ name: 'lock', verdict: 'fail', detail: `another migrate holds the lock: ${locked.busy ? describeHolder(locked.busy) : 'holder not visible to this role'}`, fix: 'wait for it to finish' });
    return finish(db, 'apply', 'busy', `busy: another digest-doctor migrate holds the lock${locked.busy ? `: ${describeHolder(locked.busy)}` : ''}`, pre, runs);
  }
  const applied = runs.some((r) => r.outcome === 'applied');
  return finish(
    db,
    'apply',
    applied ? 'applied' : 'noop',
    applied ? `applied: ${runs.filter((r) => r.outcome === 'applied').map((r) => `${r.name} built, valid, and the upsert's arbiter`).join('; ')}` : 'nothing to do: already applied (no-op)',
    pre,
    runs,
  );
}

/** `migrate --down [--apply]`: DROP INDEX CONCURRENTLY, newest migration first; the ledger says reverted. */
export async function migrateDown(db: Db, o: MigrateOptions, hooks: MigrateHooks, apply: boolean): Promise<MigrateResult> {
  const migrations = loadMigrations().reverse();
  const pre = await preflight(db, o, { duplicates: false, lock: !apply });
  const runs: MigrationRun[] = [];
  if (!apply) {
    for (const m of migrations) {
      const c = await readIndex(db, m.index);
      const stmt = renderStatement(db, runnableStatement(m, 'down', db.engine));
      runs.push(emptyRun(m, c, c.exists ? `index ${m.index.name} exists: drop it ${indexDdlWords(db.engine)}` : `index ${m.index.name} does not exist: nothing to drop`, c.exists ? 'planned' : 'noop'));
      if (c.exists) runs[runs.length - 1]!.statements.push(...setStatements(o.lockTimeoutMs, o.statementTimeoutMs), stmt);
    }
    const failing = failedChecks(pre);
    const nothing = runs.every((r) => r.outcome === 'noop');
    return {
      ...finish(db, 'down-plan', nothing ? 'noop' : 'planned', nothing ? 'nothing to remove' : failing.length ? wouldRefuse(failing) : 'dry run: run with --down --apply to remove', pre, runs),
      ok: failing.length === 0,
    };
  }
  const refused = refusedByPreflight(db, 'down', pre);
  if (refused) return refused;
  await ledgerWritesAsync(db);
  const locked = await withLock(db, o, hooks.signal, 'migrate --down --apply', async () => {
    let b: Db | null = null;
    try {
      for (const m of migrations) {
        const c = await readIndex(db, m.index);
        const run = emptyRun(m, c, c.exists ? `index ${m.index.name} exists: drop it ${indexDdlWords(db.engine)}` : `index ${m.index.name} does not exist`, 'noop');
        runs.push(run);
        if (c.building) throw halt('busy', `index ${m.index.name} is being built right now by pid ${c.building.pid}: wait for it, then remove it`);
        const ledger = (await readLedger(db)).get(m.version);
        if (!c.exists) {
          if (ledger && ledger.status !== 'reverted') {
            await assertLockHeld(db, 'the ledger write');
            await ledgerBegin(db, m);
            await ledgerFinish(db, m, 'reverted');
            run.actions.push('the index was already gone: ledger marked reverted');
          }
          continue;
        }
        b ??= await hooks.connectBuild();
        await assertLockHeld(db, 'the drop');
        await ledgerBegin(db, m);
        await dropConcurrently(db, b, m, o, run, 'migrate --down');
        await ledgerFinish(db, m, 'reverted');
        run.outcome = 'removed';
      }
      return null;
    } finally {
      await b?.close();
    }
  }).catch((err: unknown) => {
    const outcome = stopOutcome(err);
    if (!outcome) throw err;
    return { stopped: outcome, message: (err as DoctorError).message };
  });
  if (locked && 'stopped' in locked) return finish(db, 'down', locked.stopped, locked.message, pre, runs);
  if (locked && 'busy' in locked) {
    pre.lockHolder = locked.busy;
    return finish(db, 'down', 'busy', `busy: another digest-doctor migrate holds the lock${locked.busy ? `: ${describeHolder(locked.busy)}` : ''}`, pre, runs);
  }
  const removed = runs.some((r) => r.outcome === 'removed');
  return finish(db, 'down', removed ? 'removed' : 'noop', removed ? `removed ${runs.filter((r) => r.outcome === 'removed').map((r) => r.before.name).join(', ')}` : 'nothing to remove (no-op)', pre, runs);
}

/** `migrate status`: the catalog is the truth; the ledger and the files must agree with it. Reads only. */
export async function migrateStatus(db: Db): Promise<MigrateStatus> {
  const migrations = loadMigrations();
  const ledger = await readLedger(db);
  const out: MigrateStatus['migrations'] = [];
  for (const m of migrations) {
    const c = await readIndex(db, m.index);
    if (c.exists && !c.valid && !c.building) {
      // Without pg_read_all_stats another role's build shows no relation: an INVALID index beside
      // one such build in this database is taken as that build rather than called dead.
      const [hidden] = await db.query<{ pid: number }>('migrate_hidden_builds');
      if (hidden) c.building = { pid: hidden.pid, phase: 'phase not visible to this role (GRANT pg_read_all_stats to see it)', user: null, application: null };
    }
    const entry = ledger.get(m.version) ?? null;
    const s = migrationStatus(m, entry, c);
    out.push({ version: m.version, name: m.name, checksum: m.checksum, state: s.state, problems: s.problems, index: indexState(m, c), ledger: entry });
  }
  const known = new Set(migrations.map((m) => m.version));
  const unknown = [...ledger.keys()].filter((v) => !known.has(v));
  const findings = [...out.flatMap((m) => (m.state === 'drift' || m.state === 'invalid' ? m.problems.map((p) => `${m.name}: ${p}`) : [])), ...unknown.map((v) => `the ledger records migration ${v}, which has no file in sql/migrations`)];
  return {
    schemaVersion: MIGRATE_SCHEMA_VERSION,
    command: 'migrate status',
    target: target(db),
    migrations: out,
    unknownLedgerVersions: unknown,
    drift: findings.length > 0,
    building: out.some((m) => m.state === 'building'),
    findings,
  };
}
