// The Postgres work of `migrate --apply` and `--down --apply`: the migrate lock and the proof that the
// statements that matter run on its holder, CREATE INDEX CONCURRENTLY with its retries and progress,
// DROP INDEX CONCURRENTLY, and the verification after a build. The catalog reads, the ledger and the
// statements themselves are in postgres/migrator.ts; the decisions (plan, retry rule, stops) in
// core/migration.ts; the flow (preflight, lock, work, verify, result) in ops/migrate.ts.
import { setTimeout as sleep } from 'node:timers/promises';
import { UNIQUE_INDEX_NAME } from '../core/contract.js';
import { serverMessageOf, sqlstateOf } from '../core/faults.js';
import { decideRetry, halt, indexDdlWords, indexDifferences, runnableStatement, type Migration } from '../core/migration.js';
import { formatDuration, plural } from '../core/text.js';
import type { Db } from './db.js';
import { quoteLiteral } from './sql.js';
import {
  buildProgress,
  cancelBackend,
  ledgerAttempt,
  lockHolder,
  MIGRATE_LOCK,
  preparedTransactions,
  readIndex,
  renderStatement,
  setTimeouts,
  tableLockers,
  upsertArbiters,
  type BuildProgress,
  type LockHolder,
  type PreparedTransaction,
} from './migrator.js';
import { holdAdvisoryLock, pollAdvisoryLock, type LockKey, type SessionLock } from './session.js';

/** The timeouts and retry budget of a build or drop (the migrate options they come from: ops/migrate.ts). */
export interface BuildOptions {
  /** lock_timeout of every phase; it also bounds the build's waits for older transactions. */
  lockTimeoutMs: number;
  /** statement_timeout of CREATE INDEX CONCURRENTLY (0 = none). */
  buildTimeoutMs: number;
  /** statement_timeout of DROP INDEX CONCURRENTLY and the control statements. */
  statementTimeoutMs: number;
  /** Attempts (the first included) before giving up on 55P03 / 57014 / 40P01. */
  maxAttempts: number;
  /** First retry delay; doubles each time. */
  retryDelayMs: number;
}

export interface BuildHooks {
  /** Build progress, polled from the control connection while the build runs. */
  onProgress?(p: BuildProgress): void;
  /** Aborting cancels the build on the server (pg_cancel_backend) and removes the invalid index. */
  signal?: AbortSignal;
}

/** What a build or drop did, appended as it happens (a migration's run in the result). */
export interface RunLog {
  /** Every statement sent, in order. */
  statements: string[];
  /** What was done, in words. */
  actions: string[];
  /** Build attempts made. */
  attempts: number;
}

/** The check after a build: the catalog's flags and shape, and the service's upsert naming the index as its arbiter. */
export interface Verification {
  valid: boolean;
  ready: boolean;
  matches: boolean;
  differences: string[];
  /** Arbiter indexes of the service's upsert, from EXPLAIN (FORMAT JSON). */
  arbiterIndexes: string[];
  arbiterProven: boolean;
}

/** The per-phase timeouts as SQL (they run as set_config(..., false): session-level, parameterised). */
export function setStatements(lockMs: number, statementMs: number): string[] {
  return [`SET lock_timeout = '${lockMs}ms'`, `SET statement_timeout = '${statementMs}ms'`];
}

// ---------------------------------------------------------------- the migrate lock

/** The migrate lock held on each control session: the statements that matter prove they run on its holder. */
const migrateLocks = new WeakMap<Db, SessionLock>();

/** REFUSED (a halt, exit 4) unless the control statement about to run (`what`) runs on the process that holds the migrate lock. */
export async function assertLockHeld(ctl: Db, what: string): Promise<void> {
  try {
    await migrateLocks.get(ctl)?.assertHeld(what);
  } catch (err) {
    throw halt('refused', serverMessageOf(err));
  }
}

/**
 * Runs `fn` holding the session-level migrate lock of `db`'s service schema, polled for `waitMs`;
 * `{ busy: holder }` (null when the holder is not visible to this role) when it cannot be had.
 * Right after it is granted, and before each statement that matters (assertLockHeld), the process
 * running the statement must be the lock's holder (per pg_locks); a release the holder did not run
 * is reported (a halt 'refused').
 */
export async function withMigrateLock<T>(db: Db, waitMs: number, signal: AbortSignal | undefined, command: string, fn: () => Promise<T>): Promise<T | { busy: LockHolder | null }> {
  const key: LockKey = [MIGRATE_LOCK, db.ids.schema];
  if (!(await pollAdvisoryLock(db, key, waitMs, signal))) return { busy: await lockHolder(db) };
  return holdAdvisoryLock(db, key, command, migrateLocks, fn, {
    wrap: (err) => halt('refused', serverMessageOf(err)),
    notReleased: (pid) =>
      halt('refused', `${command} finished, but the migrate lock taken by pid ${pid} was not released by the process that ran the unlock: a transaction pooler; the lock ends with that server connection (connect directly next time)`),
  });
}

/** REFUSED unless `b` still runs on server process `pid` (its session settings were set there). */
async function assertSameProcess(b: Db, pid: number, what: string): Promise<void> {
  const now = await b.backendPid();
  if (now !== pid) throw halt('refused', `refused: the build connection changed server process (pid ${pid}, then ${now}) before ${what}: its lock_timeout and statement_timeout would not apply; connect directly, not through a transaction pooler`);
}

// ---------------------------------------------------------------- what a build waits for, what it leaves

/** The statements that end prepared transactions, runnable as printed (in the transaction's database, as its owner or a superuser). */
export const finishPrepared = (ps: readonly PreparedTransaction[]): string =>
  ps.map((p) => `COMMIT PREPARED ${quoteLiteral(p.gid)} or ROLLBACK PREPARED ${quoteLiteral(p.gid)} (in database ${p.database}, as ${p.owner} or a superuser)`).join('; ');

/** One prepared transaction in words: gid, owner, database, age, and whether it locks digest_history. */
export const describePrepared = (p: PreparedTransaction): string =>
  `'${p.gid}' (owner ${p.owner}, database ${p.database}, prepared ${formatDuration(p.ageMs)} ago${p.locksTable ? ', holds a lock on digest_history' : ''})`;

/** What a build or drop that timed out waited for: open transactions holding locks on the table, and prepared transactions of this database. */
async function blockersText(ctl: Db): Promise<string> {
  const lockers = await tableLockers(ctl).catch(() => []);
  const prepared = (await preparedTransactions(ctl).catch(() => [])).filter((p) => p.inThisDatabase);
  const parts: string[] = [];
  if (lockers.length) parts.push(`open transactions it waits for: ${lockers.map((t) => `pid ${t.pid} (${t.application || t.user || '?'}, open ${formatDuration(t.ageMs)})`).join(', ')}`);
  if (prepared.length) parts.push(`prepared transactions it waits for (not in pg_stat_activity): ${prepared.map(describePrepared).join(', ')}; finish them: ${finishPrepared(prepared)}`);
  return parts.length ? `; ${parts.join('; ')}` : '';
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

// ---------------------------------------------------------------- drop

/**
 * DROP INDEX CONCURRENTLY of an index known to exist, on the build connection `b`, retried on lock
 * timeouts and deadlocks; `why` says in the action (and a refusal) why it is dropped. Throws a halt
 * 'busy' naming what it waited for when it gives up (the index is left, INVALID, for the next run),
 * 'refused' when the lock or the build connection's process is lost.
 */
export async function dropIndex(ctl: Db, b: Db, m: Migration, o: BuildOptions, log: RunLog, why: string): Promise<void> {
  const stmt = renderStatement(b, runnableStatement(m, 'down', b.engine));
  const pid = await b.backendPid();
  for (let attempt = 1; ; attempt++) {
    await assertLockHeld(ctl, 'DROP INDEX CONCURRENTLY');
    await setTimeouts(b, o.lockTimeoutMs, o.statementTimeoutMs);
    await assertSameProcess(b, pid, 'DROP INDEX CONCURRENTLY');
    log.statements.push(...setStatements(o.lockTimeoutMs, o.statementTimeoutMs), stmt);
    try {
      await b.raw(stmt);
      log.actions.push(`dropped index ${m.index.name} (${why})`);
      return;
    } catch (err) {
      const c = await readIndex(ctl, m.index);
      if (!c.exists) return;
      const d = decideRetry({ sqlstate: sqlstateOf(err) ?? undefined, attempt, maxAttempts: o.maxAttempts, baseDelayMs: o.retryDelayMs });
      log.actions.push(`${b.engine === 'embedded' ? 'DROP INDEX' : 'DROP INDEX CONCURRENTLY'} attempt ${attempt} failed (${sqlstateOf(err) ?? '?'}: ${serverMessageOf(err)})`);
      if (!d.retry) {
        // DROP INDEX CONCURRENTLY waits for the same old transactions a build does: name them and leave it for the next run.
        const who = await blockersText(ctl);
        throw halt('busy', `${why}, but index ${m.index.name} could not be dropped yet (${sqlstateOf(err) ?? '?'}: ${serverMessageOf(err)})${who}: the next digest-doctor migrate --apply drops it (it is found INVALID), or run: ${stmt}`);
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
export async function dropIfInvalid(ctl: Db, b: Db, m: Migration, o: BuildOptions, log: RunLog, why: string): Promise<void> {
  const own = await b.backendPid();
  let c = await readIndex(ctl, m.index);
  const until = Date.now() + OWN_BUILD_SETTLE_MS;
  while (c.building?.pid === own && Date.now() < until) {
    await sleep(50);
    c = await readIndex(ctl, m.index);
  }
  const someoneElse = c.building !== null && c.building.pid !== own;
  if (c.exists && !(c.valid && c.ready) && !someoneElse) await dropIndex(ctl, b, m, o, log, why);
}

// ---------------------------------------------------------------- build

/**
 * The build loop: CREATE ... CONCURRENTLY alone on the build connection `b` (without CONCURRENTLY on
 * the embedded engine), progress polled on `ctl`; dropped and retried on 55P03 / 57014 / 40P01 with
 * backoff, each attempt recorded in the ledger. Throws a halt: 'cancelled' (the signal aborted),
 * 'refused' (a duplicate appeared: 23505; or the lock or process was lost), 'busy' (retries used up,
 * naming what it waited for), 'failed' (any other error); each message ends with what is left.
 */
export async function buildIndex(ctl: Db, b: Db, m: Migration, o: BuildOptions, hooks: BuildHooks, log: RunLog): Promise<void> {
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
      log.statements.push(...setStatements(o.lockTimeoutMs, o.buildTimeoutMs), stmt);
      log.attempts = attempt;
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
      await ledgerAttempt(ctl, m, error ? { message: serverMessageOf(error), sqlstate } : null);
      if (!error) {
        log.actions.push(`built index ${m.index.name} ${indexDdlWords(b.engine)} (attempt ${attempt})`);
        return;
      }
      log.actions.push(`attempt ${attempt} failed: ${sqlstate ?? '?'} ${serverMessageOf(error)}`);
      // 42P07: the name was taken by someone else's index; it is not ours to drop.
      if (sqlstate !== '42P07') await dropIfInvalid(ctl, b, m, o, log, cancelled ? 'the cancelled build left it invalid' : 'the failed build left it invalid');
      // A cancel the user asked for (57014 too) is never retried.
      if (cancelled) throw halt('cancelled', `interrupted: the build was cancelled on the server (pg_cancel_backend ${pid})${await leftBehind(ctl, m)}`);
      if (sqlstate === '23505') throw halt('refused', `a duplicate (user, day) appeared during the build (${serverMessageOf(error)})${await leftBehind(ctl, m)}; run digest-doctor fix-duplicates --apply, then migrate again`);
      const d = decideRetry({ sqlstate: sqlstate ?? undefined, attempt, maxAttempts: o.maxAttempts, baseDelayMs: o.retryDelayMs });
      if (!d.retry) {
        if (d.retryable) {
          throw halt('busy', `the build did not finish after ${plural(attempt, 'attempt')} (${d.reason})${await blockersText(ctl)}${await leftBehind(ctl, m)}: rerun when the table is quieter, or raise --lock-timeout / --build-timeout`);
        }
        throw halt('failed', `the build failed (${sqlstate ?? 'no SQLSTATE'}: ${serverMessageOf(error)})${await leftBehind(ctl, m)}`);
      }
      log.actions.push(`retrying in ${d.delayMs} ms (${d.reason})`);
      await sleep(d.delayMs);
    }
  } finally {
    hooks.signal?.removeEventListener('abort', onAbort);
  }
}

/** Polls pg_stat_progress_create_index for `pid` every 500 ms until the returned stop() (which waits for the poller to end). */
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

// ---------------------------------------------------------------- verify

/** Reads the built index back: valid, ready, the migration's shape, and (for the guard index) the service's upsert's arbiter. */
export async function verifyIndex(ctl: Db, m: Migration): Promise<Verification> {
  const c = await readIndex(ctl, m.index);
  const differences = c.exists ? indexDifferences(m.index, c) : ['index missing'];
  // The arbiter proof applies to the unique index the service's upsert names.
  const arbiters = m.index.name === UNIQUE_INDEX_NAME ? await upsertArbiters(ctl) : [m.index.name];
  return { valid: c.valid, ready: c.ready, matches: differences.length === 0, differences, arbiterIndexes: arbiters, arbiterProven: arbiters.includes(m.index.name) };
}
