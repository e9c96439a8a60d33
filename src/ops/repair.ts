// What every repair shares: the status it may write (from the live CHECK), the one-run-at-a-time
// lock, the run record, and batches (short, each one statement or one transaction, with a
// lock_timeout, timed for how long they hold their row locks, retried once when another session
// holds rows).
import { setTimeout as sleep } from 'node:timers/promises';
import { plural } from '../core/text.js';
import { randomUUID } from 'node:crypto';
import * as z from 'zod';
import { STATUSES } from '../core/contract.js';
import { serverMessageOf, sqlstateOf } from '../core/faults.js';
import { batchEnd, chooseRepairStatus, nextBatchRows, repairLockKey, type RepairCommand } from '../core/repair.js';
import { judgeStatusChecks } from '../postgres/checks.js';
import { DoctorError } from '../errors.js';
import { finishRun, startRun } from '../postgres/audit.js';
import type { Db } from '../postgres/db.js';
import { SessionLock, assertCanApply, holdAdvisoryLock, pollAdvisoryLock } from '../postgres/session.js';

export interface BatchOptions {
  /** Rows per batch. */
  batchSize: number;
  /** lock_timeout of each batch. */
  lockTimeoutMs: number;
  /** How long to wait for another run of the same repair before exiting busy. */
  lockWaitMs: number;
  /** Aborting stops after the current batch; the run is recorded as interrupted. */
  signal?: AbortSignal;
  /** Called between batches (awaited: a library caller may log somewhere slow). */
  onProgress?: (doneRows: number, totalRows: number) => void | Promise<void>;
}

export const RepairStatusSchema = z.object({
  /** The status written to repaired rows. */
  status: z.string(),
  /** What the live CHECK constraint allows (null: no constraint on status). */
  allowed: z.array(z.string()).nullable(),
});

/**
 * Which statuses the CHECK constraints on status accept (the server evaluates each constraint for
 * each of the contract's STATUSES, src/postgres/checks.ts) and the one a repair writes; REFUSED
 * (exit 4) when none fits or a constraint cannot be evaluated.
 */
export async function repairStatus(db: Db): Promise<z.infer<typeof RepairStatusSchema>> {
  const choice = chooseRepairStatus(await judgeStatusChecks(db, STATUSES), STATUSES);
  if (!choice.ok) throw new DoctorError('REFUSED', choice.reason, { details: { allowed: choice.allowed } });
  return { status: choice.status, allowed: choice.allowed };
}


/** The lock of the run in progress on each session: its batches prove they run on the lock's holder. */
const held = new WeakMap<Db, SessionLock>();

/** REFUSED (exit 4) unless the statement about to run (`what`) runs on the process holding the run's lock. */
async function assertLockHeld(db: Db, what: string): Promise<void> {
  await held.get(db)?.assertHeld(what);
}

/**
 * Runs `fn` holding the session advisory lock of this repair and schema, after the applying
 * preflight (primary, writable, one session: REFUSED, exit 4, before anything is written, when any
 * fails; see postgres/session.ts). Polls for the lock for up to `waitMs`, then BUSY (exit 4).
 * Session-level, so it also covers the run's many short transactions and is released by the server
 * if the process dies; every batch first proves it runs on the process that holds it.
 */
export async function withRepairLock<T>(db: Db, command: RepairCommand, waitMs: number, fn: () => Promise<T>): Promise<T> {
  const what = `${command} --apply`;
  await assertCanApply(db, what);
  const key = repairLockKey(command, db.ids.schema);
  if (!(await pollAdvisoryLock(db, key, waitMs))) {
    throw new DoctorError('BUSY', `another ${command} is running on schema ${db.ids.schema} (it holds the repair lock): wait for it to finish (digest-doctor runs shows it) or raise --lock-wait`);
  }
  return holdAdvisoryLock(db, key, what, held, fn, {
    // Only reachable if the connection changed process after the last batch's check.
    notReleased: (pid) =>
      new DoctorError('REFUSED', `${what} finished, but the repair lock taken by pid ${pid} was not released by the process that ran the unlock: the connection goes through a transaction pooler; the lock ends with that server connection`),
  });
}

export const BatchStatsSchema = z.object({
  batches: z.number().int(),
  /** The longest time one batch held row locks: from its first locking statement to its commit. */
  longestBatchMs: z.number(),
});
export type BatchStats = z.infer<typeof BatchStatsSchema>;

// lock timeout, deadlock; and a unique violation: an undo racing a service insert that the partial
// unique index caught; the retry sees the new row and skips.
const RETRYABLE = new Set(['55P03', '40P01', '23505']);
const BATCH_ATTEMPTS = 3;

/**
 * One batch, run under the run's batch settings (see recordedRun): `fn` is one statement (atomic on
 * its own, in its own implicit transaction) or opens a transaction of its own, and must take its row
 * locks first; the time it takes (its locks are held until it commits) is recorded. A lock timeout
 * or deadlock is retried, then BUSY.
 */
export async function inBatch<T>(db: Db, stats: BatchStats, fn: (db: Db) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    await assertLockHeld(db, 'the next batch');
    try {
      const started = performance.now();
      const out = await fn(db);
      stats.batches++;
      stats.longestBatchMs = Math.max(stats.longestBatchMs, Math.round((performance.now() - started) * 10) / 10);
      return out;
    } catch (err) {
      // Db hands server errors over classified (TIMEOUT, BUSY, ...): the retry rule reads the SQLSTATE under it.
      const code = sqlstateOf(err);
      if (!code || !RETRYABLE.has(code)) throw err;
      if (attempt >= BATCH_ATTEMPTS) {
        throw new DoctorError('BUSY', `a batch could not get its locks ${BATCH_ATTEMPTS} times (${code}: ${serverMessageOf(err)}): digest_history is locked by another session; rerun when it is free`, { cause: err });
      }
      await sleep(100 * attempt);
    }
  }
}

export interface BatchLoopResult<I> {
  /** Items another session held through both passes. */
  deferred: I[];
  interrupted: boolean;
}

/**
 * Applies `items` in batches of about `batchSize` rows; `apply` returns the items it had to defer
 * (rows held elsewhere). Deferred items get one more pass after a pause. With `budgetMs`, each
 * batch's rows follow the time the last batch took (nextBatchRows: at most `batchSize`, the first
 * half of it), so a loaded server gets smaller batches and each batch's lock hold stays near the budget.
 */
export async function batchLoop<I>(items: readonly I[], rowsOf: (item: I) => number, opts: BatchOptions, apply: (batch: I[]) => Promise<I[]>, budgetMs?: number): Promise<BatchLoopResult<I>> {
  const total = items.reduce((n, i) => n + rowsOf(i), 0);
  let done = 0;
  let pending: readonly I[] = items;
  let size = budgetMs ? Math.ceil(opts.batchSize / 2) : opts.batchSize;
  for (let pass = 1; pass <= 2 && pending.length; pass++) {
    if (pass === 2) await sleep(250);
    const deferred: I[] = [];
    for (let from = 0; from < pending.length; ) {
      if (opts.signal?.aborted) return { deferred: [...deferred], interrupted: true };
      const end = batchEnd(pending, from, size, rowsOf);
      const batch = pending.slice(from, end);
      from = end;
      const rows = batch.reduce((n, i) => n + rowsOf(i), 0);
      const started = performance.now();
      const left = await apply(batch);
      if (budgetMs) size = nextBatchRows(rows, performance.now() - started, budgetMs, opts.batchSize, MIN_BUDGETED_ROWS);
      deferred.push(...left);
      if (pass === 1) done += rows;
      await opts.onProgress?.(done, total);
    }
    pending = deferred;
  }
  return { deferred: [...pending], interrupted: false };
}

/** The fewest rows a time-budgeted batch shrinks to (below this a batch's round trip dominates). */
const MIN_BUDGETED_ROWS = 25;

export interface RunOutcome<T> {
  runId: string;
  status: 'done' | 'interrupted';
  body: T;
}

/**
 * Records a run around `body`: started before the first batch, finished after the last; a failure
 * is recorded as failed (best effort: the session may be gone) and rethrown. While `body` runs, the
 * session has the batches' settings (lock_timeout, synchronous_commit off), set once for the run
 * rather than per batch (a round trip each) and put back before the final record, whose commit then
 * flushes every batch's WAL.
 */
export async function recordedRun<T extends { interrupted: boolean }>(
  db: Db,
  meta: { command: RepairCommand; args: Record<string, unknown>; undoes?: string },
  lockTimeoutMs: number,
  body: (runId: string) => Promise<T>,
): Promise<RunOutcome<T>> {
  const runId = randomUUID();
  await assertLockHeld(db, 'the run record');
  await startRun(db, { id: runId, ...meta });
  try {
    const [before] = await db.query<{ lock_timeout: string; synchronous_commit: string }>('repair_batch_settings', [String(lockTimeoutMs)]);
    const restore = () => db.query('repair_batch_restore', [before!.lock_timeout, before!.synchronous_commit]);
    const out = await body(runId).catch(async (err: unknown) => {
      await restore().catch(() => undefined);
      throw err;
    });
    await restore();
    const status = out.interrupted ? 'interrupted' : 'done';
    await finishRun(db, runId, status);
    return { runId, status, body: out };
  } catch (err) {
    if (db.connectionLost) throw await recordLostRun(db, runId, err);
    await finishRun(db, runId, 'failed', (err as Error)?.message ?? String(err)).catch(() => undefined);
    throw err;
  }
}

/**
 * The run's session was lost mid-run (the server or the network stopped answering): the batches
 * committed before are kept (each is whole: table, audit and the run's count together). Records the
 * run as interrupted over a new session, with the rows it changed; when the server cannot be reached
 * either, says so and how to see the run later. Returns the error to throw (exit 3).
 */
async function recordLostRun(db: Db, runId: string, err: unknown): Promise<DoctorError> {
  const cause = (err as Error)?.message ?? String(err);
  const rerun = 'rerun the same command to finish (a rerun converges)';
  try {
    const fresh = await db.reopen();
    try {
      const rows = await finishRun(fresh, runId, 'interrupted', cause);
      return new DoctorError('CONNECTION_LOST', `${cause}; run ${runId} stopped after ${plural(rows, 'row')} changed and is recorded as interrupted (every batch committed before is whole: table and audit agree): ${rerun}`, { cause: err });
    } finally {
      await fresh.close();
    }
  } catch {
    return new DoctorError(
      'CONNECTION_LOST',
      `${cause}; run ${runId} could not be recorded as interrupted (the server cannot be reached): the batches committed before the loss are kept, table and audit agree, and \`digest-doctor runs\` shows the run with its rows changed (interrupted once the server has dropped the lost session): ${rerun}`,
      { cause: err },
    );
  }
}

export const iso = (d: Date | string | number): string => new Date(d).toISOString();
