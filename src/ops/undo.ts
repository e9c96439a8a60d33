// `undo <run-id>`: puts back the before-images a repair run audited, only for rows whose status is
// still what the run set, and never a second in-flight row for a (user, day). Audited as its own run.
import * as z from 'zod';
import { allowedStatuses, decideUndo, groupKey, inFlightParam, type AuditEntry, type CurrentRow, type UndoDecision } from '../core/repair.js';
import { judgeStatusChecks } from '../postgres/checks.js';
import { schemaFlag } from '../core/validate.js';
import { DoctorError, badInput } from '../errors.js';
import { CLIENT_HOST, getRun, readRunAudit, type RunRecord } from '../postgres/audit.js';
import type { Db } from '../postgres/db.js';
import { ensureState } from '../postgres/state.js';
import { assertCanApply } from '../postgres/session.js';
import { BatchStatsSchema, batchLoop, inBatch, iso, recordedRun, withRepairLock, type BatchOptions, type BatchStats } from './repair.js';

export const UNDO_SCHEMA_VERSION = 1 as const;
const COMMAND = 'undo' as const;

const RestoreSchema = z.object({ id: z.string(), userId: z.string(), digestDate: z.string(), from: z.string(), to: z.string() });
const UndoSkipSchema = z.object({ id: z.string(), reason: z.enum(['row-deleted', 'status-changed', 'would-duplicate', 'status-not-allowed', 'held-by-another-session']), detail: z.string() });

export const UndoAppliedSchema = BatchStatsSchema.extend({
  runId: z.string().nullable(),
  status: z.enum(['done', 'interrupted', 'nothing-to-do']),
  rowsChanged: z.number().int(),
  skipped: z.array(UndoSkipSchema),
});

export const UndoResultSchema = z.object({
  schemaVersion: z.literal(UNDO_SCHEMA_VERSION),
  command: z.literal(COMMAND),
  mode: z.enum(['dry-run', 'apply']),
  /** The run being undone. */
  target: z.object({
    runId: z.string(),
    command: z.string(),
    startedAt: z.string(),
    by: z.string(),
    rowsChanged: z.number().int(),
    audited: z.number().int(),
  }),
  plan: z.object({ restore: z.array(RestoreSchema), skipped: z.array(UndoSkipSchema) }),
  applied: UndoAppliedSchema.nullable(),
});
export type UndoResult = z.infer<typeof UndoResultSchema>;

export interface UndoInput extends BatchOptions {
  runId: string;
  apply: boolean;
}

/** Each audited row as it is now, and the in-flight rows of their groups (the dry run's plan). */
async function currentState(db: Db, entries: readonly AuditEntry[]) {
  const rows = await db.query<CurrentRow>('undo_present_rows', [entries.map((e) => e.rowId)]);
  const current = new Map(rows.map((r) => [r.id, r]));
  const groups = [...new Map(entries.map((e) => [groupKey(e.before.user_id, e.before.digest_date), e.before])).values()];
  const inFlight = await db.query<{ id: string; user_id: string; digest_date: string }>('undo_group_in_flight', [groups.map((g) => g.user_id), groups.map((g) => g.digest_date), inFlightParam()]);
  const byGroup = new Map<string, string[]>();
  for (const r of inFlight) {
    const k = groupKey(r.user_id, r.digest_date);
    byGroup.set(k, [...(byGroup.get(k) ?? []), r.id]);
  }
  return { current, byGroup };
}

const restoreOf = (e: AuditEntry) => ({ id: e.rowId, userId: e.before.user_id, digestDate: e.before.digest_date, from: e.after.status, to: e.before.status });
const skipOf = (s: UndoDecision['skipped'][number]) => ({ id: s.entry.rowId, reason: s.reason, detail: s.detail });

async function targetRun(db: Db, runId: string): Promise<RunRecord> {
  const run = await getRun(db, runId);
  if (!run) throw badInput(`no repair run ${runId} in schema ${db.ids.state}: digest-doctor runs lists the recorded runs (check --state-schema)`);
  if (run.tableSchema !== db.ids.schema) throw badInput(`run ${runId} repaired schema ${run.tableSchema}, not ${db.ids.schema}: pass ${schemaFlag('--schema', run.tableSchema)}`);
  if (run.status === 'running' && run.sessionAlive) throw new DoctorError('REFUSED', `run ${runId} is still in progress: wait for it to finish, then undo it`);
  return run;
}

/**
 * A dry run reads the state schema as it is and writes nothing; `apply` first brings the state
 * schema up to date (an audit table of an earlier version moves into audit_batches), then undoes.
 */
export async function undoRun(db: Db, input: UndoInput): Promise<UndoResult> {
  if (input.apply) {
    // Refused (exit 4) on a standby, a read-only database or a transaction pooler before anything is read or written.
    await assertCanApply(db, `${COMMAND} --apply`);
    await ensureState(db);
  }
  const run = await targetRun(db, input.runId);
  const entries: AuditEntry[] = await readRunAudit(db, input.runId);
  // Only statuses the live CHECK allows go back (an unreadable constraint is left to the database).
  const candidates = [...new Set(entries.map((e) => e.before.status))];
  const { allowed } = allowedStatuses(await judgeStatusChecks(db, candidates), candidates);
  const plan = async () => {
    const { current, byGroup } = await db.readOnly((tx) => currentState(tx, entries));
    return decideUndo(entries, current, byGroup, allowed);
  };
  const base = (d: UndoDecision) => ({
    schemaVersion: UNDO_SCHEMA_VERSION,
    command: COMMAND,
    mode: input.apply ? ('apply' as const) : ('dry-run' as const),
    target: { runId: run.id, command: run.command, startedAt: iso(run.startedAt), by: run.dbUser, rowsChanged: run.rowsChanged, audited: entries.length },
    plan: { restore: d.restore.map(restoreOf), skipped: d.skipped.map(skipOf) },
  });
  if (!input.apply) return { ...base(await plan()), applied: null };

  return withRepairLock(db, COMMAND, input.lockWaitMs, async () => {
    const decision = await plan();
    if (!decision.restore.length) {
      return { ...base(decision), applied: { runId: null, status: 'nothing-to-do' as const, rowsChanged: 0, skipped: decision.skipped.map(skipOf), batches: 0, longestBatchMs: 0 } };
    }
    // Whole (user, day) groups per batch, so "at most one back in flight" is decided in one place.
    const byGroup = new Map<string, AuditEntry[]>();
    for (const e of entries) {
      const k = groupKey(e.before.user_id, e.before.digest_date);
      byGroup.set(k, [...(byGroup.get(k) ?? []), e]);
    }
    const groups = [...byGroup.values()];
    const outcome = await recordedRun(db, { command: COMMAND, args: { runId: input.runId, batchSize: input.batchSize }, undoes: input.runId }, input.lockTimeoutMs, (runId) =>
      applyUndo(db, runId, groups, allowed, input),
    );
    const { stats, rowsChanged, skipped, loop } = outcome.body;
    const held = loop.deferred.flat().map((e) => ({ id: e.rowId, reason: 'held-by-another-session' as const, detail: 'another session held the row through both passes' }));
    return { ...base(decision), applied: { runId: outcome.runId, status: outcome.status, rowsChanged, skipped: [...skipped, ...held], batches: stats.batches, longestBatchMs: stats.longestBatchMs } };
  });
}

type BatchVerdict = 'restore' | 'held' | UndoDecision['skipped'][number]['reason'];

async function applyUndo(db: Db, runId: string, groups: AuditEntry[][], allowed: string[] | null, input: UndoInput) {
  const stats: BatchStats = { batches: 0, longestBatchMs: 0 };
  let rowsChanged = 0;
  const skipped: Array<z.infer<typeof UndoSkipSchema>> = [];
  const loop = await batchLoop(groups, (g) => g.length, input, async (batch) => {
    const entries = batch.flat();
    // One statement: lock, decide (as decideUndo), restore, audit (sql/queries/undo_batch.sql).
    const rows = await inBatch(db, stats, (b) =>
      b.query<{ id: string; verdict: BatchVerdict; status: string | null; other: string | null; changed: boolean }>('undo_batch', [
        entries.map((e) => e.rowId),
        entries.map((e) => JSON.stringify(e.before)),
        entries.map((e) => e.after.status),
        inFlightParam(),
        runId,
        COMMAND,
        db.ids.schema,
        CLIENT_HOST,
        allowed,
      ]),
    );
    const byId = new Map(entries.map((e) => [e.rowId, e]));
    // A day with a row held elsewhere, or a row that changed between the statement's snapshot and its
    // lock (the restore found no row at the locked version), waits whole for the retry.
    const retry = new Set<string>();
    for (const r of rows) {
      const e = byId.get(r.id)!;
      if (r.changed) rowsChanged++;
      else if (r.verdict === 'held' || r.verdict === 'restore') retry.add(groupKey(e.before.user_id, e.before.digest_date));
      else skipped.push({ id: r.id, reason: r.verdict, detail: skipDetail(r.verdict, e, r.status, r.other) });
    }
    return batch.filter((g) => retry.has(groupKey(g[0]!.before.user_id, g[0]!.before.digest_date)));
  });
  return { stats, rowsChanged, skipped, loop, interrupted: loop.interrupted };
}

/** The detail decideUndo gives for each reason (src/core/repair.ts). */
function skipDetail(reason: UndoDecision['skipped'][number]['reason'], e: AuditEntry, status: string | null, other: string | null): string {
  switch (reason) {
    case 'row-deleted':
      return 'the row no longer exists';
    case 'status-changed':
      return `status is now '${status}', the run set '${e.after.status}'`;
    case 'status-not-allowed':
      return `the CHECK constraint no longer allows '${e.before.status}'`;
    default:
      return `row ${other} of the same user and day is in flight`;
  }
}
