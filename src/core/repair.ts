// Repairs, the pure part: which status a repair may write (from the live CHECK constraint), how a
// plan is cut into batches, what a batch does once it has re-read its rows under lock, and which
// rows an undo may restore. No I/O, no clock.
import { IN_FLIGHT_STATUSES, RECLAIM_IDLE_MS, STATUSES, isInFlight } from './contract.js';
import { microsFromTimestamp, newestFirst } from './decision.js';

/** Statuses a repair may write, best first. Only a terminal, not-sent status fits. */
export const REPAIR_TARGET_STATUSES = ['failed'] as const;

export const DEFAULT_BATCH_SIZE = 500;
export const MAX_BATCH_SIZE = 10_000;
/** Per batch: how long to wait for a table-level lock before giving the batch up (and retrying). */
export const DEFAULT_BATCH_LOCK_TIMEOUT_MS = 2_000;
/** How long a second repair waits for the first before exiting busy. */
export const DEFAULT_LOCK_WAIT_MS = 5_000;
/**
 * mark-stale: a pending entry delivered less than this long ago is live. The worker reclaims entries
 * idle RECLAIM_IDLE_MS (60 s, XAUTOCLAIM), so a worked-on entry never idles much beyond that; five
 * times that (5 min) leaves margin for a slow reclaim loop without keeping an abandoned entry live.
 */
export const DEFAULT_LIVE_IDLE_MS = 5 * RECLAIM_IDLE_MS;

export type RepairCommand = 'fix-duplicates' | 'mark-stale' | 'undo';

/** The advisory-lock key of a repair: one run per command and service schema at a time. */
export function repairLockKey(command: RepairCommand, schema: string): [string, string] {
  return [`digest-doctor:repair:${command}`, schema];
}

// ---------------------------------------------------------------------------------------------
// The CHECK constraints on digest_history.status

/**
 * One CHECK constraint of digest_history that involves `status`, judged by the server: which of the
 * candidate statuses satisfy it (its expression is not false for a row with that status and every
 * other column NULL), or null when the server could not evaluate it (`error` says why). How it is
 * asked: src/postgres/checks.ts; the server's text of the constraint is never parsed.
 */
export interface StatusCheckVerdict {
  name: string;
  accepts: string[] | null;
  error?: string;
}

/**
 * What every CHECK on status allows together, in `candidates` order: a list, null when there is no
 * such constraint, or the first constraint the server could not evaluate.
 */
export function allowedStatuses(verdicts: readonly StatusCheckVerdict[], candidates: readonly string[] = STATUSES): { allowed: string[] | null; unreadable?: StatusCheckVerdict } {
  let allowed: string[] | null = null;
  for (const v of verdicts) {
    if (!v.accepts) return { allowed, unreadable: v };
    const accepts = v.accepts;
    allowed = (allowed ?? [...candidates]).filter((c) => accepts.includes(c));
  }
  return { allowed };
}

export type RepairStatusChoice =
  | { ok: true; status: string; allowed: string[] | null }
  | { ok: false; reason: string; allowed: string[] | null };

/** The status a repair writes: the first of REPAIR_TARGET_STATUSES every CHECK on status allows. */
export function chooseRepairStatus(verdicts: readonly StatusCheckVerdict[], candidates: readonly string[] = STATUSES): RepairStatusChoice {
  const { allowed, unreadable: c } = allowedStatuses(verdicts, candidates);
  if (c) {
    return { ok: false, allowed, reason: `the server could not evaluate CHECK ${c.name} for a candidate status (${c.error ?? 'no answer'}); nothing was written: mark the rows by hand or simplify the constraint` };
  }
  const status = REPAIR_TARGET_STATUSES.find((s) => allowed === null || allowed.includes(s));
  if (!status) {
    const names = verdicts.map((k) => k.name).join(', ');
    return {
      ok: false,
      allowed,
      reason: `the CHECK constraint (${names}) allows only ${allowed!.map((s) => `'${s}'`).join(', ') || 'no status'}, none of ${REPAIR_TARGET_STATUSES.map((s) => `'${s}'`).join(', ')}; nothing was written: allow 'failed' in the constraint first`,
    };
  }
  return { ok: true, status, allowed };
}

// ---------------------------------------------------------------------------------------------
// fix-duplicates

/** An in-flight row of a duplicate group, as fix_duplicate_rows returns it. */
export interface RepairRow {
  id: string;
  userId: string;
  digestDate: string;
  status: string;
  /** created_at in microseconds since the epoch (the database's precision). */
  createdUs: number;
  /**
   * 1 for the row the policy keeps, then 2, 3.. (ranked by the database, to the microsecond, by the
   * keep rule: classifyGroup's order; test/integration/keep-rule.test.ts holds the two equal).
   */
  keepRank: number;
}

export interface GroupPlan {
  userId: string;
  digestDate: string;
  kept: RepairRow;
  extras: RepairRow[];
}

export const groupKey = (userId: string, digestDate: string): string => `${userId}|${digestDate}`;

/**
 * Groups the in-flight rows of many (user, day) and plans each group with more than one: the row of
 * keep rank 1 is kept, the others are the duplicates to fail, in rank order. The database ranks them
 * (fix_duplicate_rows: by the policy, to the microsecond, as the service orders rows). Groups come
 * out in (user, day) order, whatever the order of `rows` (sorted as fix_duplicate_rows returns them,
 * the sort is one pass: no key strings, no maps, for plans of hundreds of thousands of rows).
 */
export function planDuplicateGroups(rows: readonly RepairRow[]): GroupPlan[] {
  const sorted = rows.filter((r) => isInFlight(r.status)).sort((a, b) => cmp(a.userId, b.userId) || cmp(a.digestDate, b.digestDate) || a.keepRank - b.keepRank);
  const plans: GroupPlan[] = [];
  for (let i = 0; i < sorted.length; ) {
    const kept = sorted[i]!;
    let end = i + 1;
    while (end < sorted.length && sorted[end]!.userId === kept.userId && sorted[end]!.digestDate === kept.digestDate) end++;
    if (end - i > 1) plans.push({ userId: kept.userId, digestDate: kept.digestDate, kept, extras: sorted.slice(i + 1, end) });
    i = end;
  }
  return plans;
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Rows for the next batch of a run whose batches have a time budget: the last batch's rows scaled by
 * `budgetMs` / `lastMs` (the time it took, ms), at most twice the last (one fast batch does not jump
 * back to the full size) and within [`min`, `max`] rows. A batch that took longer than the budget
 * (a loaded server) makes the next smaller, so each batch's lock hold stays near the budget.
 */
export function nextBatchRows(lastRows: number, lastMs: number, budgetMs: number, max: number, min = 1): number {
  const scaled = lastMs > 0 ? Math.floor((lastRows * budgetMs) / lastMs) : max;
  return Math.max(Math.min(min, max), Math.min(max, 2 * lastRows, scaled));
}

/** The end (exclusive) of the batch of at most `size` rows starting at `from`; an item is never split (at least one is taken). */
export function batchEnd<T>(items: readonly T[], from: number, size: number, rowsOf: (item: T) => number): number {
  let end = from;
  let rows = 0;
  while (end < items.length) {
    const n = rowsOf(items[end]!);
    if (end > from && rows + n > size) break;
    rows += n;
    end++;
  }
  return end;
}

/** Cuts items into consecutive batches of at most `size` rows; an item is never split. */
export function chunkByRows<T>(items: readonly T[], size: number, rowsOf: (item: T) => number): T[][] {
  const batches: T[][] = [];
  for (let from = 0; from < items.length; ) {
    const end = batchEnd(items, from, size, rowsOf);
    batches.push(items.slice(from, end));
    from = end;
  }
  return batches;
}

/** What fix_batch reports for one (user, day) of a batch that has an in-flight row. */
export interface GroupReport {
  userId: string;
  digestDate: string;
  /** In-flight rows the batch's snapshot saw. */
  visibleN: number;
  /** Of those, the ones it locked at the same version. */
  stableN: number;
  /** Set when the group was changed: the row kept and the rows failed. */
  keptId: string | null;
  failed: string[] | null;
}

export interface BatchOutcome {
  groups: Array<{ userId: string; digestDate: string; keptId: string; failed: string[] }>;
  /** Another session held some of the group's rows, or they changed since the snapshot: left for the retry pass. */
  deferred: Array<{ userId: string; digestDate: string }>;
  /** Down to one in-flight row (or none) since the plan: nothing to do. */
  resolved: Array<{ userId: string; digestDate: string }>;
}

/** Sorts the planned groups of a batch by what fix_batch reported for them (a group it did not report has no in-flight row). */
export function batchOutcome(planned: ReadonlyArray<{ userId: string; digestDate: string }>, reports: readonly GroupReport[]): BatchOutcome {
  const byGroup = new Map(reports.map((r) => [groupKey(r.userId, r.digestDate), r]));
  const out: BatchOutcome = { groups: [], deferred: [], resolved: [] };
  for (const g of planned) {
    const r = byGroup.get(groupKey(g.userId, g.digestDate));
    const key = { userId: g.userId, digestDate: g.digestDate };
    if (!r || r.visibleN < 2) out.resolved.push(key);
    else if (r.stableN < r.visibleN || !r.keptId || !r.failed?.length) out.deferred.push(key);
    else out.groups.push({ ...key, keptId: r.keptId, failed: r.failed });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// undo

/** The part of a row image undo needs (the audit keeps the whole row as jsonb). */
export interface RowImage {
  id: string;
  user_id: string;
  digest_date: string;
  status: string;
  created_at: string;
  sent_at: string | null;
}

/**
 * What undo needs of one audited row: the status and sent_at the run found (what undo puts back)
 * and the status it set (what undo expects to find). The audit keeps the whole images; since state
 * version 4 (sql/state/0004) also these, typed. A RowImage pair (readRunAudit) is one.
 */
export interface AuditEntry {
  rowId: string;
  before: { status: string; sent_at: string | null };
  after: { status: string };
}

/**
 * An audited row as it is now: its status, the (user, day) it is in and its created_at (ISO text
 * with zone, to the microsecond: the keep rule's order). A row goes back in flight where it is now,
 * so these, not the before-image's, decide "at most one in flight".
 */
export interface CurrentRow {
  id: string;
  status: string;
  user_id: string;
  digest_date: string;
  created_at: string;
}

export type UndoSkipReason = 'row-deleted' | 'status-changed' | 'would-duplicate' | 'status-not-allowed';

export interface UndoDecision {
  restore: AuditEntry[];
  skipped: Array<{ entry: AuditEntry; reason: UndoSkipReason; detail: string }>;
}

/**
 * Which audited rows an undo restores. A row is restored only while its status is still what the
 * run set; a row that goes back in flight must be the only in-flight row of its (user, day), so of
 * several candidates in one group only the newest is restored and none where another row is already
 * in flight. The (user, day) and the order are the row's as it is now (where it would be in flight).
 * sql/queries/undo_batch.sql applies the same rule under its row locks (test/integration/undo.test.ts
 * holds the two equal).
 *
 * @param current every audited row as it is now (absent: deleted)
 * @param inFlightByGroup the in-flight row ids of each (user, day) now (groupKey -> ids)
 * @param allowed what the live CHECK on status allows (null: anything); other before-images stay out
 */
export function decideUndo(
  entries: readonly AuditEntry[],
  current: ReadonlyMap<string, CurrentRow>,
  inFlightByGroup: ReadonlyMap<string, readonly string[]>,
  allowed: readonly string[] | null = null,
): UndoDecision {
  const out: UndoDecision = { restore: [], skipped: [] };
  const candidates: AuditEntry[] = [];
  for (const e of entries) {
    const now = current.get(e.rowId);
    if (!now) out.skipped.push({ entry: e, reason: 'row-deleted', detail: 'the row no longer exists' });
    else if (now.status !== e.after.status) out.skipped.push({ entry: e, reason: 'status-changed', detail: `status is now '${now.status}', the run set '${e.after.status}'` });
    else if (allowed && !allowed.includes(e.before.status)) out.skipped.push({ entry: e, reason: 'status-not-allowed', detail: `the CHECK constraint no longer allows '${e.before.status}'` });
    else if (!isInFlight(e.before.status)) out.restore.push(e);
    else candidates.push(e);
  }
  // Newest first by the keep rule (to the microsecond, as the service orders a day's rows): that is
  // the row it would pick up. Candidates exist (their status was checked), so `current` has them.
  const ordered = newestFirst(candidates.map((e) => ({ e, now: current.get(e.rowId)!, id: e.rowId, createdUs: microsFromTimestamp(current.get(e.rowId)!.created_at) })));
  const claimed = new Map<string, string>();
  for (const { e, now } of ordered) {
    const k = groupKey(now.user_id, now.digest_date);
    const other = (inFlightByGroup.get(k) ?? []).find((id) => id !== e.rowId) ?? claimed.get(k);
    if (other) out.skipped.push({ entry: e, reason: 'would-duplicate', detail: `row ${other} of the same user and day is in flight` });
    else {
      claimed.set(k, e.rowId);
      out.restore.push(e);
    }
  }
  return out;
}

/** In-flight statuses as the SQL parameter (text[]) every repair statement takes. */
export const inFlightParam = (): string[] => [...IN_FLIGHT_STATUSES];

// ---------------------------------------------------------------------------------------------
// mark-stale

export interface PendingDelivery {
  consumer: string;
  idleMs: number;
  deliveries: number;
}

/** A row's event is live when it is pending in the group and was delivered less than `liveIdleMs` ago. */
export function isLiveDelivery(p: PendingDelivery | undefined, liveIdleMs: number): boolean {
  return p !== undefined && p.idleMs < liveIdleMs;
}

/** Status of a run as `runs` shows it: a `running` run whose session is gone was interrupted. */
export function effectiveRunStatus(recorded: string, sessionAlive: boolean): string {
  return recorded === 'running' && !sessionAlive ? 'interrupted' : recorded;
}
