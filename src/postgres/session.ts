// Proof that a connection is one database session, the applying preflight every writing command
// runs (primary, writable, session), and session advisory locks that prove, before each statement
// that matters, that the process running it is the one holding the lock. Verdicts and messages come
// from core/apply-preflight.ts.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  applyChecks,
  applyRefusal,
  lostSessionMessage,
  urlPort,
  type SessionEvidence,
  type WriteFacts,
} from '../core/apply-preflight.js';
import type { Finding } from '../core/finding.js';
import { lockPollDelays } from '../core/migration.js';
import { DoctorError } from '../errors.js';
import { connectPg, type Db } from './db.js';

/** Rounds of the two-client test; a transaction pooler that hands out idle server connections LIFO (pgbouncer's default) fails the first. */
const PIN_ROUNDS = 3;

const pidOf = async (db: Db): Promise<number> => (await db.query<{ pid: number }>('session_pid'))[0]!.pid;

/**
 * Whether `db` is one session, from three tests (any failure is proof it is not):
 * 1. a session-level setting (set_config(..., false)) is read back by the next statement;
 * 2. the server process (pg_backend_pid) is the same for every statement;
 * 3. a second client of the same URL, holding a transaction open, runs on another server process,
 *    and this connection's process does not change meanwhile. Two direct sessions never share a
 *    process; a transaction pooler gives an idle client's server connection to the next client
 *    (pgbouncer pool_mode = transaction does, even when no other client is active).
 * The second client connects with the same configuration (URL, timeouts) and writes nothing; or it
 * is `second()`, a session of the same URL the caller opened for its own use (migrate's build
 * connection: one connection fewer to open and close), left open and outside a transaction.
 * The embedded engine (one in-process backend behind a lock file) is one session by construction.
 * Errors: a second connection that cannot be made is thrown as classified by connectPg (exit 3).
 */
export async function proveSession(db: Db, second?: () => Promise<Db>): Promise<SessionEvidence> {
  // The embedded engine is one backend in this process (no pooler can stand between), and its lock
  // file keeps every other process out: one session by construction, nothing to probe.
  if (db.engine === 'embedded') return { port: null, kept: true, problem: null };
  const port = urlPort(db.config.url, process.env);
  const fail = (problem: string): SessionEvidence => ({ port, kept: false, problem });
  const probe = randomUUID();
  let first: number;
  try {
    const [set] = await db.query<{ value: string; pid: number }>('migrate_session_probe_set', [probe]);
    const [get] = await db.query<{ value: string | null; pid: number }>('migrate_session_probe_get');
    if (get?.value !== probe) return fail('a session setting was lost between two statements');
    if (set!.pid !== get.pid) return fail(`the server process changed between two statements (pid ${set!.pid}, then ${get.pid})`);
    first = get.pid;
  } catch (err) {
    return fail(`session settings are rejected (${(err as Error).message})`);
  }
  const other = second ? await second() : await connectPg({ ...db.config, applicationName: 'digest-doctor (session probe)' });
  try {
    for (let round = 1; round <= PIN_ROUNDS; round++) {
      const mine = await pidOf(db);
      if (mine !== first) return fail(`the server process changed between statements (pid ${first}, then ${mine})`);
      try {
        await other.raw('BEGIN');
      } catch (err) {
        return fail(`a transaction block is refused (${(err as Error).message}): a statement pooler`);
      }
      const theirs = await pidOf(other);
      if (theirs === mine) return fail(`a second client was given this connection's server process (pid ${mine}) while it was idle`);
      const again = await pidOf(db);
      await other.raw('ROLLBACK');
      if (again !== mine) return fail(`the server process changed while another client held a transaction (pid ${mine}, then ${again})`);
    }
  } finally {
    if (second) await other.raw('ROLLBACK').catch(() => undefined);
    else await other.close();
  }
  const [after] = await db.query<{ value: string | null; pid: number }>('migrate_session_probe_get');
  if (after?.value !== probe || after.pid !== first) return fail('a session setting or the server process changed between statements');
  return { port, kept: true, problem: null };
}

/** Recovery and read-only facts of the session (asked of the server). */
export async function writeFacts(db: Db): Promise<WriteFacts> {
  const [f] = await db.query<{ in_recovery: boolean; transaction_read_only: boolean; default_read_only: boolean }>('migrate_session_facts');
  return { inRecovery: f!.in_recovery, transactionReadOnly: f!.transaction_read_only, defaultReadOnly: f!.default_read_only };
}

/** The applying checks (session, primary, writable) of `db`, all run (doctor style). */
export async function applyPreflight(db: Db): Promise<Finding[]> {
  const facts = await writeFacts(db);
  return applyChecks(await proveSession(db), facts);
}

/**
 * Runs the applying preflight and refuses (DoctorError REFUSED, exit 4) before anything is
 * written when any check fails. `command` names the command in the message (`fix-duplicates --apply`).
 */
export async function assertCanApply(db: Db, command: string): Promise<void> {
  if (passed.has(db)) return;
  const checks = await applyPreflight(db);
  const refusal = applyRefusal(command, checks);
  if (refusal) throw new DoctorError('REFUSED', refusal, { details: { checks } });
  passed.add(db);
}

/** Sessions that passed the applying preflight (it runs once per session; the lock checks run per statement). */
const passed = new WeakSet<Db>();

/**
 * A session advisory lock already taken on `db` with pg_try_advisory_lock(hashtext(key), hashtext(schema)),
 * and the proof that it still covers the statements that follow: `assertHeld` (before each batch or
 * statement that matters) checks, per pg_locks, that the process running it is the one that took
 * the lock; `release` unlocks and says whether this process held it.
 */
export class SessionLock {
  private constructor(
    private readonly db: Db,
    private readonly key: LockKey,
    private readonly command: string,
    /** The server process that holds the lock. */
    readonly pid: number,
  ) {}

  /** Call right after the lock was granted: records the holder; REFUSED when this statement runs elsewhere. */
  static async taken(db: Db, key: LockKey, command: string): Promise<SessionLock> {
    const [r] = await db.query<{ pid: number; holders: number[] }>('session_lock_check', key);
    if (!r!.holders.includes(r!.pid)) {
      throw new DoctorError('REFUSED', lostSessionMessage(command, `the advisory lock was granted, but the next statement runs on pid ${r!.pid}, which does not hold it${r!.holders.length ? ` (held by pid ${r!.holders.join(', ')})` : ''}`, urlPort(db.config.url, process.env)));
    }
    return new SessionLock(db, key, command, r!.pid);
  }

  /** REFUSED (exit 4) unless the process running this statement is the lock's holder. `what`: the statement about to run. */
  async assertHeld(what: string): Promise<void> {
    const [r] = await this.db.query<{ pid: number; holders: number[] }>('session_lock_check', this.key, { prepare: true });
    if (r!.pid === this.pid && r!.holders.includes(this.pid)) return;
    const detail =
      r!.pid !== this.pid
        ? `the lock is held by pid ${this.pid}, but ${what} would run on pid ${r!.pid}`
        : `pid ${this.pid} no longer holds the lock before ${what}`;
    throw new DoctorError('REFUSED', lostSessionMessage(this.command, detail, urlPort(this.db.config.url, process.env)));
  }

  /** pg_advisory_unlock; false when the process running it did not hold the lock (it stays with its holder until that session ends). */
  async release(): Promise<boolean> {
    const [r] = await this.db.query<{ released: boolean }>('session_lock_release', this.key);
    return Boolean(r?.released);
  }
}

/** An advisory lock of the tool: (what, schema), each hashed with hashtext (sql/queries/session_lock_*.sql). */
export type LockKey = [string, string];

/**
 * Polls pg_try_advisory_lock(hashtext(key[0]), hashtext(key[1])) on this session: session-level,
 * never a blocking or transaction-level lock (a blocked waiter can deadlock a concurrent index build:
 * Flyway #1654). Tries at once, then after each delay of lockPollDelays (50 ms doubling up to 2 s)
 * until `waitMs` have passed or `signal` aborts. Returns true once granted, false otherwise.
 */
export async function pollAdvisoryLock(db: Db, key: LockKey, waitMs: number, signal?: AbortSignal): Promise<boolean> {
  for (const delay of [0, ...lockPollDelays(waitMs)]) {
    if (delay) await sleep(delay);
    if (signal?.aborted) return false;
    const [r] = await db.query<{ locked: boolean }>('session_lock_try', key);
    if (r?.locked) return true;
  }
  return false;
}

/**
 * Runs `fn` holding the advisory lock `key` that pollAdvisoryLock just granted on `db`: proves the
 * holder first (SessionLock.taken; when that fails the lock is released and the error, passed
 * through `wrap`, thrown), keeps the SessionLock in `registry` while `fn` runs (the statements that
 * matter call assertHeld on it), and releases it after. When `fn` succeeded but the unlock ran on
 * another process than the holder (a transaction pooler switched connections), throws
 * `notReleased(pid)`: the lock stays with that server connection until it ends.
 */
export async function holdAdvisoryLock<T>(
  db: Db,
  key: LockKey,
  command: string,
  registry: WeakMap<Db, SessionLock>,
  fn: () => Promise<T>,
  errors: { wrap?: (err: unknown) => unknown; notReleased: (pid: number) => Error },
): Promise<T> {
  let lock: SessionLock;
  try {
    lock = await SessionLock.taken(db, key, command);
  } catch (err) {
    await db.query('session_lock_release', key).catch(() => undefined);
    throw errors.wrap ? errors.wrap(err) : err;
  }
  registry.set(db, lock);
  let failed = true;
  try {
    const out = await fn();
    failed = false;
    return out;
  } finally {
    registry.delete(db);
    const released = await lock.release().catch(() => false);
    if (!released && !failed) {
      // eslint-disable-next-line no-unsafe-finally
      throw errors.notReleased(lock.pid);
    }
  }
}
