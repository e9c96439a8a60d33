// `fix-duplicates`: every (user, day) with more than one in-flight row keeps one (newest or oldest)
// and the others get the repair status. Planned in a read-only snapshot; applied in short batches,
// each one statement (sql/queries/fix_batch.sql) that re-reads and locks each group, decides again,
// changes only groups no other session holds or changed, and audits.
import * as z from 'zod';
import { type KeepPolicy } from '../core/duplicates.js';
import { batchOutcome, groupKey, inFlightParam, planDuplicateGroups, type GroupPlan, type GroupReport, type RepairRow } from '../core/repair.js';
import { CLIENT_HOST } from '../postgres/audit.js';
import type { Db } from '../postgres/db.js';
import { BatchStatsSchema, RepairStatusSchema, batchLoop, inBatch, iso, recordedRun, repairStatus, withRepairLock, type BatchOptions, type BatchStats } from './repair.js';

export const FIX_DUPLICATES_SCHEMA_VERSION = 1 as const;
const COMMAND = 'fix-duplicates' as const;

const RowRefSchema = z.object({ id: z.string(), status: z.string(), createdAt: z.string() });

const PlanGroupSchema = z.object({
  userId: z.string(),
  digestDate: z.string(),
  keep: RowRefSchema,
  fail: z.array(RowRefSchema),
});

const SkippedGroupSchema = z.object({ userId: z.string(), digestDate: z.string(), reason: z.string() });

export const FixDuplicatesAppliedSchema = BatchStatsSchema.extend({
  /** null when there was nothing to fix (no run is recorded then). */
  runId: z.string().nullable(),
  status: z.enum(['done', 'interrupted', 'nothing-to-do']),
  rowsChanged: z.number().int(),
  groupsFixed: z.number().int(),
  /** Groups down to one in-flight row by the time their batch ran: nothing to do. */
  resolvedMeanwhile: z.number().int(),
  /** Groups left as they were: another session held their rows through both passes. */
  skipped: z.array(SkippedGroupSchema),
});

export const FixDuplicatesResultSchema = z.object({
  schemaVersion: z.literal(FIX_DUPLICATES_SCHEMA_VERSION),
  command: z.literal(COMMAND),
  mode: z.enum(['dry-run', 'apply']),
  now: z.string(),
  filters: z.object({ user: z.string().nullable(), date: z.string().nullable(), since: z.string().nullable(), keep: z.enum(['newest', 'oldest']) }),
  repairStatus: RepairStatusSchema,
  plan: z.object({ groups: z.number().int(), rows: z.number().int(), items: z.array(PlanGroupSchema) }),
  /** null on a dry run. */
  applied: FixDuplicatesAppliedSchema.nullable(),
});
export type FixDuplicatesResult = z.infer<typeof FixDuplicatesResultSchema>;

export interface FixDuplicatesInput extends BatchOptions {
  userId?: string;
  date?: string;
  since?: string;
  keep: KeepPolicy;
  apply: boolean;
  /** Groups per planning page. */
  pageSize?: number;
}

/** Every duplicate group, paged in (user, day) order, in one read-only snapshot. */
async function readPlan(db: Db, input: FixDuplicatesInput): Promise<{ now: Date; groups: GroupPlan[] }> {
  return db.readOnly(async (tx) => {
    const [{ now }] = (await tx.query<{ now: Date }>('db_now')) as [{ now: Date }];
    // Each page re-aggregates the in-flight rows: few, large pages.
    const pageSize = input.pageSize ?? 20_000;
    const groups: GroupPlan[] = [];
    let last: { user: string; day: string } | null = null;
    for (;;) {
      const rows: RepairRow[] = await tx.query<RepairRow>('fix_duplicate_rows', [inFlightParam(), input.userId ?? null, input.date ?? null, input.since ?? null, last?.user ?? null, last?.day ?? null, pageSize, input.keep]);
      const page = planDuplicateGroups(rows);
      for (const g of page) groups.push(g);
      const tail: RepairRow | undefined = rows[rows.length - 1];
      if (!tail || page.length < pageSize) return { now, groups };
      last = { user: tail.userId, day: tail.digestDate };
    }
  });
}

const ref = (r: RepairRow) => ({ id: r.id, status: r.status, createdAt: iso(Math.floor(r.createdUs / 1000)) });

export async function fixDuplicates(db: Db, input: FixDuplicatesInput): Promise<FixDuplicatesResult> {
  const target = await repairStatus(db);
  const base = (now: Date, groups: GroupPlan[]) => ({
    schemaVersion: FIX_DUPLICATES_SCHEMA_VERSION,
    command: COMMAND,
    mode: input.apply ? ('apply' as const) : ('dry-run' as const),
    now: iso(now),
    filters: { user: input.userId ?? null, date: input.date ?? null, since: input.since ?? null, keep: input.keep },
    repairStatus: target,
    plan: {
      groups: groups.length,
      rows: groups.reduce((n, g) => n + g.extras.length, 0),
      items: groups.map((g) => ({ userId: g.userId, digestDate: g.digestDate, keep: ref(g.kept), fail: g.extras.map(ref) })),
    },
  });
  if (!input.apply) {
    const { now, groups } = await readPlan(db, input);
    return { ...base(now, groups), applied: null };
  }
  return withRepairLock(db, COMMAND, input.lockWaitMs, async () => {
    // Planned under the lock, so a run that waited sees what the first one left.
    const { now, groups } = await readPlan(db, input);
    if (!groups.length) {
      return { ...base(now, groups), applied: { runId: null, status: 'nothing-to-do' as const, rowsChanged: 0, groupsFixed: 0, resolvedMeanwhile: 0, skipped: [], batches: 0, longestBatchMs: 0 } };
    }
    const args = { user: input.userId ?? null, date: input.date ?? null, since: input.since ?? null, keep: input.keep, batchSize: input.batchSize };
    const run = await recordedRun(db, { command: COMMAND, args }, input.lockTimeoutMs, (runId) => applyPlan(db, runId, target.status, groups, input));
    const { stats, rowsChanged, groupsFixed, resolved, loop } = run.body;
    return {
      ...base(now, groups),
      applied: {
        runId: run.runId,
        status: run.status,
        rowsChanged,
        groupsFixed,
        resolvedMeanwhile: resolved,
        skipped: loop.deferred.map((g) => ({ userId: g.userId, digestDate: g.digestDate, reason: 'rows held by another session' })),
        ...stats,
      },
    };
  });
}

interface ReportRow {
  user_id: string;
  digest_date: string;
  visible_n: number;
  stable_n: number;
  kept_id: string | null;
  failed: string[] | null;
}

async function applyPlan(db: Db, runId: string, status: string, groups: GroupPlan[], input: FixDuplicatesInput) {
  const stats: BatchStats = { batches: 0, longestBatchMs: 0 };
  let rowsChanged = 0;
  let groupsFixed = 0;
  let resolved = 0;
  // A batch counts the rows it changes; each group's kept row is locked along with them.
  const loop = await batchLoop(groups, (g) => g.extras.length, input, async (batch) => {
    const reports = await inBatch(db, stats, async (b) =>
      (
        await b.query<ReportRow>('fix_batch', [batch.map((g) => g.userId), batch.map((g) => g.digestDate), inFlightParam(), input.keep, status, runId, COMMAND, db.ids.schema, CLIENT_HOST])
      ).map((r): GroupReport => ({ userId: r.user_id, digestDate: r.digest_date, visibleN: r.visible_n, stableN: r.stable_n, keptId: r.kept_id, failed: r.failed })),
    );
    const outcome = batchOutcome(batch, reports);
    // Counted after the commit: a retried batch counts once.
    rowsChanged += outcome.groups.reduce((n, g) => n + g.failed.length, 0);
    groupsFixed += outcome.groups.length;
    resolved += outcome.resolved.length;
    if (!outcome.deferred.length) return [];
    const deferred = new Set(outcome.deferred.map((g) => groupKey(g.userId, g.digestDate)));
    return batch.filter((g) => deferred.has(groupKey(g.userId, g.digestDate)));
  });
  return { stats, rowsChanged, groupsFixed, resolved, loop, interrupted: loop.interrupted };
}
