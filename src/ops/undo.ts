// `undo <run-id>`: puts back the before-images a repair run audited, only for rows whose status is
// still what the run set, and never a second in-flight row for a (user, day). Audited as its own run.
import * as z from 'zod';
import { isInFlight } from '../core/contract.js';
import { allowedStatuses, decideUndo, groupKey, inFlightParam, type AuditEntry, type CurrentRow, type UndoDecision } from '../core/repair.js';
import { judgeStatusChecks } from '../postgres/checks.js';
import { schemaFlag } from '../core/validate.js';
import { DoctorError, badInput } from '../errors.js';
import { CLIENT_HOST, discardRun, getRun, readRunAudit, type RunRecord } from '../postgres/audit.js';
import type { Db } from '../postgres/db.js';
import { ensureState, readState } from '../postgres/state.js';
import { assertCanApply } from '../postgres/session.js';
import { BatchStatsSchema, batchLoop, inBatch, iso, recordedRun, withRepairLock, type BatchOptions, type BatchStats } from './repair.js';

export const UNDO_SCHEMA_VERSION = 1 as const;
const COMMAND = 'undo' as const;
/**
 * An undo batch's rows follow the time the last one took (batchLoop), aiming at this many ms of lock
 * hold, well under the 200 ms limit (issue 16): its batch does more per row than the other repairs'
 * (the decision again under its locks, the in-flight rows of the candidates' days). At a fixed 500
 * rows it held its locks 150-237 ms on a loaded 2-core machine (1M rows, 80 ms unloaded); with a
 * 100 ms budget single batches still reached 117-140 ms (a batch slower than the one before it).
 * Full bench (load 7-9): 80 ms gave undo 2.95x, longest hold 172 ms over 5 rounds; 60 ms gave 3.31x
 * and one 254 ms hold (a stall of the loaded machine, not the batch's size): no smaller budget.
 */
const BATCH_BUDGET_MS = 80;

const RestoreSchema = z.object({ id: z.string(), userId: z.string(), digestDate: z.string(), from: z.string(), to: z.string() });
const UndoSkipSchema = z.object({ id: z.string(), reason: z.enum(['row-deleted', 'status-changed', 'would-duplicate', 'status-not-allowed', 'held-by-another-session']), detail: z.string() });
type UndoSkip = z.infer<typeof UndoSkipSchema>;

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

/** An audited row as the plan found it now, with where it is (ctid, text). */
export interface PlannedRow extends CurrentRow {
  tid: string;
}

/** What an undo decides from, read in one snapshot: the audited rows, each as it is now, and the in-flight rows of their days. */
export interface UndoFacts {
  entries: AuditEntry[];
  /** Audited rows that exist now, by id. */
  current: Map<string, PlannedRow>;
  /** The in-flight row ids now of each (user, day) where an audited row could go back in flight (groupKey -> ids). */
  inFlight: Map<string, string[]>;
}

/** One audited row as undo_plan.sql gives it (see there): [row_id, before status, before sent_at, after status, status now, tid, user_id, digest_date, created_at, in-flight ids]. */
type PlanRow = [string, string, string | null, string, string | null, string | null, string | null, string | null, string | null, string[] | null];

/**
 * The facts of an undo of `runId`, in one read-only snapshot. From state version 4 on, one statement
 * (sql/queries/undo_plan.sql: the audit's typed keys, rows reached at the ctid the run left them at,
 * the in-flight rows of their days); an older layout, which a dry run reads as it is, from the
 * images (readRunAudit) and two lookups by id. `inFlight: false` (--apply, whose batches decide
 * under their locks) leaves the in-flight rows out: `inFlight` comes back empty. Reads only;
 * REFUSED (exit 4) when the role may not read the audit.
 */
export async function readUndoFacts(db: Db, runId: string, opts: { inFlight: boolean } = { inFlight: true }): Promise<UndoFacts> {
  return db.readOnly(async (tx) => {
    const state = await readState(tx, ['audit_batches', 'audit'], 'undo');
    const keyed = state?.relations.get('audit_batches')?.columns.includes('tids') && state.relations.get('audit')?.kind !== 'r';
    if (!keyed) return legacyFacts(tx, await readRunAudit(tx, runId), opts.inFlight);
    const batches = await tx.query<{ seq: number; rows: PlanRow[] }>('undo_plan', [runId, inFlightParam(), opts.inFlight]);
    const facts: UndoFacts = { entries: [], current: new Map(), inFlight: new Map() };
    for (const batch of batches) {
      for (const [id, beforeStatus, beforeSentAt, afterStatus, status, tid, userId, digestDate, createdAt, inFlight] of batch.rows) {
        facts.entries.push({ rowId: id, before: { status: beforeStatus, sent_at: beforeSentAt }, after: { status: afterStatus } });
        if (status === null) continue;
        facts.current.set(id, { id, status, tid: tid!, user_id: userId!, digest_date: digestDate!, created_at: createdAt! });
        if (inFlight) facts.inFlight.set(groupKey(userId!, digestDate!), inFlight);
      }
    }
    return facts;
  });
}

/** The facts from an audit read whole (a layout before state version 4). */
async function legacyFacts(db: Db, entries: AuditEntry[], withInFlight: boolean): Promise<UndoFacts> {
  const rows = await db.query<PlannedRow>('undo_present_rows', [entries.map((e) => e.rowId)]);
  const current = new Map(rows.map((r) => [r.id, r]));
  if (!withInFlight) return { entries, current, inFlight: new Map() };
  const candidates = entries.filter((e) => isInFlight(e.before.status) && current.get(e.rowId)?.status === e.after.status).map((e) => current.get(e.rowId)!);
  const groups = [...new Map(candidates.map((r) => [groupKey(r.user_id, r.digest_date), r])).values()];
  const inFlight = new Map<string, string[]>(groups.map((g) => [groupKey(g.user_id, g.digest_date), []]));
  const found = await db.query<{ id: string; user_id: string; digest_date: string }>('undo_group_in_flight', [groups.map((g) => g.user_id), groups.map((g) => g.digest_date), inFlightParam()]);
  for (const r of found) inFlight.get(groupKey(r.user_id, r.digest_date))?.push(r.id);
  return { entries, current, inFlight };
}

async function targetRun(db: Db, runId: string): Promise<RunRecord> {
  const run = await getRun(db, runId);
  if (!run) throw badInput(`no repair run ${runId} in schema ${db.ids.state}: digest-doctor runs lists the recorded runs (check --state-schema)`);
  if (run.tableSchema !== db.ids.schema) throw badInput(`run ${runId} repaired schema ${run.tableSchema}, not ${db.ids.schema}: pass ${schemaFlag('--schema', run.tableSchema)}`);
  if (run.status === 'running' && run.sessionAlive) throw new DoctorError('REFUSED', `run ${runId} is still in progress: wait for it to finish, then undo it`);
  return run;
}

const restoreOf = (e: AuditEntry, now: PlannedRow) => ({ id: e.rowId, userId: now.user_id, digestDate: now.digest_date, from: e.after.status, to: e.before.status });
const skipOf = (s: UndoDecision['skipped'][number]) => ({ id: s.entry.rowId, reason: s.reason, detail: s.detail });

/** Of the statuses the entries would put back, those the live CHECK allows (null: it could not be read, left to the database). */
async function allowedNow(db: Db, entries: readonly AuditEntry[]): Promise<string[] | null> {
  const statuses = [...new Set(entries.map((e) => e.before.status))];
  return allowedStatuses(await judgeStatusChecks(db, statuses), statuses).allowed;
}

/** The facts of the undo and the plan decided from them (decideUndo). */
async function planUndo(db: Db, runId: string) {
  const facts = await readUndoFacts(db, runId);
  return { facts, decision: decideUndo(facts.entries, facts.current, facts.inFlight, await allowedNow(db, facts.entries)) };
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
  const report = (facts: UndoFacts, restore: readonly AuditEntry[], skipped: UndoSkip[]) => ({
    schemaVersion: UNDO_SCHEMA_VERSION,
    command: COMMAND,
    mode: input.apply ? ('apply' as const) : ('dry-run' as const),
    target: { runId: run.id, command: run.command, startedAt: iso(run.startedAt), by: run.dbUser, rowsChanged: run.rowsChanged, audited: facts.entries.length },
    plan: { restore: restore.map((e) => restoreOf(e, facts.current.get(e.rowId)!)), skipped },
  });
  if (!input.apply) {
    const { facts, decision } = await planUndo(db, input.runId);
    return { ...report(facts, decision.restore, decision.skipped.map(skipOf)), applied: null };
  }

  return withRepairLock(db, COMMAND, input.lockWaitMs, async () => {
    // No plan is decided before the batches: each decides its rows under its locks (undo_batch.sql,
    // the rule decideUndo holds), so the audited rows and where they are now are all it reads first.
    const facts = await readUndoFacts(db, input.runId, { inFlight: false });
    const allowed = await allowedNow(db, facts.entries);
    // Whole (user, day) groups (as the rows are now) per batch, so "at most one back in flight" is
    // decided in one place; every audited row goes.
    const byGroup = new Map<string, UndoItem[]>();
    for (const entry of facts.entries) {
      const now = facts.current.get(entry.rowId);
      const k = now ? groupKey(now.user_id, now.digest_date) : `gone|${entry.rowId}`;
      const item = { entry, tid: now?.tid ?? null };
      const group = byGroup.get(k);
      if (group) group.push(item);
      else byGroup.set(k, [item]);
    }
    const groups = [...byGroup.values()];
    const outcome = await recordedRun(db, { command: COMMAND, args: { runId: input.runId, batchSize: input.batchSize }, undoes: input.runId }, input.lockTimeoutMs, (runId) =>
      applyUndo(db, runId, groups, allowed, input),
    );
    const { stats, restored, skipped, loop } = outcome.body;
    const rowsChanged = restored.length;
    const held = loop.deferred.flat().map((x) => ({ id: x.entry.rowId, reason: 'held-by-another-session' as const, detail: 'another session held the row through both passes' }));
    // The plan an --apply reports is what its batches decided.
    const result = report(facts, restored, skipped);
    // A run that put nothing back and left nothing to retry is not kept: nothing to undo, no run.
    if (!rowsChanged && !held.length && outcome.status === 'done' && (await discardRun(db, outcome.runId))) {
      return { ...result, applied: { runId: null, status: 'nothing-to-do' as const, rowsChanged: 0, skipped, batches: stats.batches, longestBatchMs: stats.longestBatchMs } };
    }
    return { ...result, applied: { runId: outcome.runId, status: outcome.status, rowsChanged, skipped: [...skipped, ...held], batches: stats.batches, longestBatchMs: stats.longestBatchMs } };
  });
}

/** An audited row to undo, and where the plan found it (ctid, text; null: reach it by id). */
export interface UndoItem {
  entry: AuditEntry;
  tid: string | null;
}

type BatchVerdict = 'restore' | 'held' | UndoDecision['skipped'][number]['reason'];

/** One row of undo_batch's answer: the verdict on an entry, its status now, the in-flight row it would duplicate, whether it was restored. */
export interface UndoBatchRow {
  id: string;
  verdict: BatchVerdict;
  status: string | null;
  other: string | null;
  changed: boolean;
}

/**
 * One undo batch as one statement (sql/queries/undo_batch.sql): locks the items' rows, decides as
 * decideUndo does, restores, audits under `runId` (a run already started) and counts. Returns one
 * row per item.
 */
export async function undoBatch(db: Db, runId: string, items: readonly UndoItem[], allowed: string[] | null): Promise<UndoBatchRow[]> {
  return db.query<UndoBatchRow>('undo_batch', [
    items.map((x) => x.entry.rowId),
    items.map((x) => x.tid),
    items.map((x) => x.entry.after.status),
    items.map((x) => x.entry.before.status),
    items.map((x) => x.entry.before.sent_at),
    inFlightParam(),
    runId,
    COMMAND,
    db.ids.schema,
    CLIENT_HOST,
    allowed,
  ]);
}

async function applyUndo(db: Db, runId: string, groups: UndoItem[][], allowed: string[] | null, input: UndoInput) {
  const stats: BatchStats = { batches: 0, longestBatchMs: 0 };
  const restored: AuditEntry[] = [];
  const skipped: UndoSkip[] = [];
  const loop = await batchLoop(groups, (g) => g.length, input, async (batch) => {
    const items = batch.flat();
    const rows = await inBatch(db, stats, (b) => undoBatch(b, runId, items, allowed));
    const byId = new Map(items.map((x) => [x.entry.rowId, x.entry]));
    // A day with a row held elsewhere (its rows all say held), or a row that changed between the
    // plan and the lock (the restore found no row at the locked version), waits for the retry, which
    // reaches the rows by id; the rows decided here are done (reported once).
    const retry = new Set<string>();
    for (const r of rows) {
      const e = byId.get(r.id)!;
      if (r.changed) restored.push(e);
      else if (r.verdict === 'held' || r.verdict === 'restore') retry.add(r.id);
      else skipped.push({ id: r.id, reason: r.verdict, detail: skipDetail(r.verdict, e, r.status, r.other) });
    }
    return batch.map((g) => g.filter((x) => retry.has(x.entry.rowId)).map((x) => ({ ...x, tid: null }))).filter((g) => g.length > 0);
  }, BATCH_BUDGET_MS);
  return { stats, restored, skipped, loop, interrupted: loop.interrupted };
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
