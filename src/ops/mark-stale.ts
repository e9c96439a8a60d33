// `mark-stale`: in-flight rows older than a cut-off (computed once, from the database clock) get the
// repair status and lose sent_at. With Redis, rows whose event a worker holds right now are live and
// left alone unless --include-live; with no Redis, or no digest stream where it looks, that live check
// cannot run and --apply refuses unless --include-live. Applied in short audited batches, like fix-duplicates.
import * as z from 'zod';
import { DIGEST_STREAM } from '../core/contract.js';
import { inFlightParam } from '../core/repair.js';
import { DoctorError } from '../errors.js';
import { CLIENT_HOST } from '../postgres/audit.js';
import type { Db } from '../postgres/db.js';
import type { RedisClient } from '../redis/connect.js';
import { BatchStatsSchema, RepairStatusSchema, batchLoop, inBatch, iso, recordedRun, repairStatus, withRepairLock, type BatchOptions, type BatchStats } from './repair.js';
import { digestStreamAbsent, findLiveRows, type LiveDelivery } from './repair-live.js';

export const MARK_STALE_SCHEMA_VERSION = 1 as const;
const COMMAND = 'mark-stale' as const;

const StaleRowSchema = z.object({
  id: z.string(),
  userId: z.string(),
  digestDate: z.string(),
  status: z.string(),
  createdAt: z.string(),
  ageMs: z.number(),
});

const LiveRowSchema = StaleRowSchema.extend({ entryId: z.string(), consumer: z.string(), idleMs: z.number(), deliveries: z.number().int() });

export const MarkStaleAppliedSchema = BatchStatsSchema.extend({
  runId: z.string().nullable(),
  status: z.enum(['done', 'interrupted', 'nothing-to-do']),
  rowsChanged: z.number().int(),
  /** Rows no longer stale by the time their batch ran (the service moved them on). */
  changedMeanwhile: z.number().int(),
  /** Rows another session held through both passes. */
  skipped: z.array(z.object({ id: z.string(), reason: z.string() })),
});

export const MarkStaleResultSchema = z.object({
  schemaVersion: z.literal(MARK_STALE_SCHEMA_VERSION),
  command: z.literal(COMMAND),
  mode: z.enum(['dry-run', 'apply']),
  now: z.string(),
  /** now() minus --older-than, read once from the database. */
  cutoff: z.string(),
  filters: z.object({
    olderThanMs: z.number(),
    user: z.string().nullable(),
    date: z.string().nullable(),
    limit: z.number().int().nullable(),
    includeLive: z.boolean(),
    liveIdleMs: z.number(),
  }),
  repairStatus: RepairStatusSchema,
  /**
   * The live check. `checked: false`, with the reason: it did not run (no Redis, or no digest stream
   * where this run looks), so the plan is blind: no row could be seen as live, and --apply refuses
   * unless --include-live.
   */
  redis: z.union([
    z.object({ checked: z.literal(true), groupMissing: z.boolean(), pendingSeen: z.number().int() }),
    z.object({ checked: z.literal(false), reason: z.string() }),
  ]),
  /** Rows to mark (live ones excluded unless --include-live). */
  plan: z.object({ rows: z.number().int(), items: z.array(StaleRowSchema) }),
  /** Stale by age but their event is pending and was delivered recently. */
  live: z.array(LiveRowSchema),
  applied: MarkStaleAppliedSchema.nullable(),
});
export type MarkStaleResult = z.infer<typeof MarkStaleResultSchema>;

export interface MarkStaleInput extends BatchOptions {
  olderThanMs: number;
  userId?: string;
  date?: string;
  /** At most this many rows, oldest first. */
  limit?: number;
  includeLive: boolean;
  liveIdleMs: number;
  apply: boolean;
  pageSize?: number;
}

/**
 * The Redis the live check reads. `client`: the digest stream is looked for under its key prefix;
 * `streamMissing`, called only when it is not there, says why (the CLI: the prefix that holds it and
 * the command to rerun with it; null or absent: a plain line does). `skipped`: no Redis, and why.
 */
export type RedisForRepair = { client: RedisClient; streamMissing?: () => Promise<string | null> } | { skipped: string };

/** The client the live check reads, or why it cannot run (`blind`). Throws as findLiveRows when TYPE fails. */
async function liveCheckSource(redis: RedisForRepair): Promise<{ client: RedisClient } | { blind: string }> {
  if ('skipped' in redis) return { blind: redis.skipped };
  if (!(await digestStreamAbsent(redis.client))) return { client: redis.client };
  return { blind: (await redis.streamMissing?.()) ?? `no stream ${DIGEST_STREAM} under the Redis client's key prefix: no worker can be seen there` };
}

/**
 * mark-stale --apply without the live check (`reason`: why it did not run): REFUSED (exit 4), as a
 * row a worker is processing right now would be marked failed and then sent twice (the worker
 * finishes it, or it is replayed). --include-live is the override: it marks live rows anyway, so the
 * check cannot change what it marks. The reason comes last: it may end with the command to rerun.
 */
function blindRefusal(reason: string): DoctorError {
  return new DoctorError(
    'REFUSED',
    `mark-stale --apply refused, nothing marked: the live check did not run, so a row a worker is processing right now could be marked failed and its digest then sent twice; give the service's Redis (--redis-url, and its --key-prefix), or add --include-live to mark without the check on purpose: ${reason}`,
  );
}

/**
 * A planned row exactly as stale_rows returns it (the query names its columns for this type: a plan
 * can be hundreds of thousands of rows, read without a copy), with where the plan saw it (its ctid,
 * for the batch to reach it by).
 */
interface StaleRow {
  id: string;
  tid: string;
  userId: string;
  digestDate: string;
  status: string;
  /** created_at in microseconds since the epoch (exact, for the keyset; int8 comes back as a number). */
  createdUs: number;
}

const createdMs = (r: StaleRow): number => Math.floor(r.createdUs / 1000);

async function readStale(db: Db, cutoff: Date, input: MarkStaleInput): Promise<StaleRow[]> {
  return db.readOnly(async (tx) => {
    const out: StaleRow[] = [];
    const want = input.limit ?? Infinity;
    // Each page re-reads the in-flight rows through the status index: few, large pages, each asking
    // for one row more than it keeps, so a full last page does not cost another (empty) pass.
    const pageSize = input.pageSize ?? 50_000;
    let last: StaleRow | undefined;
    while (out.length < want) {
      const size = Math.min(pageSize, want - out.length);
      const page = await tx.query<StaleRow>('stale_rows', [inFlightParam(), cutoff, input.userId ?? null, input.date ?? null, last?.createdUs ?? null, last?.id ?? null, size + 1]);
      const full = page.length > size;
      if (full) page.length = size;
      for (const r of page) out.push(r);
      if (!full) break;
      last = page[size - 1];
    }
    return out;
  });
}

/**
 * Plans (and with `input.apply`, marks) the stale rows; see the file's head and README mark-stale.
 * Throws REFUSED (blindRefusal) before reading anything when `apply` would run without the live
 * check and `includeLive` is false; REFUSED or UNREACHABLE when a read of the check fails
 * (repair-live.ts); BUSY while another mark-stale holds the repair lock.
 */
export async function markStale(db: Db, redis: RedisForRepair, input: MarkStaleInput): Promise<MarkStaleResult> {
  const source = await liveCheckSource(redis);
  if ('blind' in source && input.apply && !input.includeLive) throw blindRefusal(source.blind);
  const target = await repairStatus(db);
  const [clock] = await db.query<{ now: Date; cutoff: Date }>('stale_cutoff', [input.olderThanMs]);
  const { now, cutoff } = clock!;

  const plan = async () => {
    const stale = await readStale(db, cutoff, input);
    let redisPart: MarkStaleResult['redis'];
    let live = new Map<string, LiveDelivery>();
    if ('blind' in source) redisPart = { checked: false, reason: source.blind };
    else {
      // Oldest first: the first row's time is where the group's pending list is read from.
      const check = await findLiveRows(source.client, stale, stale.length ? new Date(createdMs(stale[0]!)) : now, input.liveIdleMs);
      live = check.live;
      redisPart = { checked: true, groupMissing: check.groupMissing, pendingSeen: check.pendingSeen };
    }
    const nowMs = now.getTime();
    const row = (r: StaleRow) => ({ id: r.id, userId: r.userId, digestDate: r.digestDate, status: r.status, createdAt: iso(createdMs(r)), ageMs: nowMs - createdMs(r) });
    const liveRows = stale.filter((r) => live.has(r.id)).map((r) => ({ ...row(r), ...live.get(r.id)! }));
    const rows = input.includeLive ? stale : stale.filter((r) => !live.has(r.id));
    return { rows, redisPart, liveRows, items: rows.map(row) };
  };

  const base = (p: Awaited<ReturnType<typeof plan>>) => ({
    schemaVersion: MARK_STALE_SCHEMA_VERSION,
    command: COMMAND,
    mode: input.apply ? ('apply' as const) : ('dry-run' as const),
    now: iso(now),
    cutoff: iso(cutoff),
    filters: {
      olderThanMs: input.olderThanMs,
      user: input.userId ?? null,
      date: input.date ?? null,
      limit: input.limit ?? null,
      includeLive: input.includeLive,
      liveIdleMs: input.liveIdleMs,
    },
    repairStatus: target,
    redis: p.redisPart,
    plan: { rows: p.items.length, items: p.items },
    live: p.liveRows,
  });

  if (!input.apply) return { ...base(await plan()), applied: null };
  return withRepairLock(db, COMMAND, input.lockWaitMs, async () => {
    const p = await plan();
    if (!p.rows.length) {
      return { ...base(p), applied: { runId: null, status: 'nothing-to-do' as const, rowsChanged: 0, changedMeanwhile: 0, skipped: [], batches: 0, longestBatchMs: 0 } };
    }
    const args = { olderThanMs: input.olderThanMs, cutoff: iso(cutoff), user: input.userId ?? null, date: input.date ?? null, limit: input.limit ?? null, includeLive: input.includeLive, batchSize: input.batchSize };
    const run = await recordedRun(db, { command: COMMAND, args }, input.lockTimeoutMs, (runId) => applyStale(db, runId, target.status, cutoff, p.rows, input));
    const { stats, rowsChanged, changedMeanwhile, loop } = run.body;
    return {
      ...base(p),
      applied: { runId: run.runId, status: run.status, rowsChanged, changedMeanwhile, skipped: loop.deferred.map((r) => ({ id: r.id, reason: 'held by another session' })), ...stats },
    };
  });
}

async function applyStale(db: Db, runId: string, status: string, cutoff: Date, rows: StaleRow[], input: MarkStaleInput) {
  const stats: BatchStats = { batches: 0, longestBatchMs: 0 };
  let rowsChanged = 0;
  let changedMeanwhile = 0;
  const loop = await batchLoop(rows, () => 1, input, async (batch) => {
    const ids = batch.map((r) => r.id);
    const changed = await inBatch(db, stats, async (b) =>
      (await b.query<{ id: string }>('stale_apply', [ids, status, inFlightParam(), cutoff, runId, COMMAND, db.ids.schema, CLIENT_HOST, batch.map((r) => r.tid)], { prepare: true })).map((r) => r.id),
    );
    rowsChanged += changed.length;
    const changedSet = new Set(changed);
    const missed = ids.filter((id) => !changedSet.has(id));
    if (!missed.length) return [];
    // Not changed: another session holds it, or it moved (retry where it is now), or it is no
    // longer stale (leave it).
    const still = new Map((await db.query<{ id: string; tid: string }>('stale_still', [missed, inFlightParam(), cutoff])).map((r) => [r.id, r.tid]));
    changedMeanwhile += missed.length - still.size;
    return batch.filter((r) => still.has(r.id)).map((r) => ({ ...r, tid: still.get(r.id)! }));
  });
  return { stats, rowsChanged, changedMeanwhile, loop, interrupted: loop.interrupted };
}
