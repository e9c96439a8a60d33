// mark-stale's Redis check: which rows still have their event pending in the worker group and
// delivered recently. Only the group's pending list is read (from the oldest row's time on: an event
// is published after its row is committed), then just those entries; never the whole stream, never
// XREADGROUP. A read that fails makes the check incomplete: any row could be the one a worker
// holds, so the check refuses (no row is marked) rather than count the row as not live.
import { DIGEST_GROUP, DIGEST_STREAM, EVENT_FIELD } from '../core/contract.js';
import { fieldsToRecord, parseEventJson } from '../core/event.js';
import { isLiveDelivery, type PendingDelivery } from '../core/repair.js';
import { idAtOrAfter } from '../core/stream-id.js';
import { DoctorError, ExitCode } from '../errors.js';
import { classifyRedisError, isCluster, type RedisClient } from '../redis/connect.js';
import type { RawEntry } from '../redis/stream-reader.js';

/** Postgres and Redis clocks may disagree: read a little before the oldest row. */
const CLOCK_SLACK_MS = 10 * 60_000;
const PAGE = 1000;

export interface LiveDelivery extends PendingDelivery {
  entryId: string;
}

export interface LiveCheck {
  /** history_id -> the live delivery of its event. */
  live: Map<string, LiveDelivery>;
  groupMissing: boolean;
  /** Pending entries looked at. */
  pendingSeen: number;
}

type PendingRow = [id: string, consumer: string, idle: number, deliveries: number];

/**
 * A failed read of the live check: the connection fault as classified (exit 3) when Redis went away
 * or stopped answering, otherwise REFUSED (exit 4)
 * naming what could not be read (a NOPERM, a key of another type...) and that nothing was marked.
 */
function incomplete(client: RedisClient, what: string, err: unknown): DoctorError {
  const target = isCluster(client) ? 'the cluster' : `${client.options.host ?? '127.0.0.1'}:${client.options.port ?? 6379}`;
  const c = classifyRedisError(err, target);
  if (c instanceof DoctorError && c.exitCode === ExitCode.UNREACHABLE) return c;
  const msg = (err as Error)?.message ?? String(err);
  return new DoctorError(
    'REFUSED',
    `the live check could not read ${what} of ${DIGEST_STREAM} on Redis at ${target} (${msg}), so which rows a worker holds right now is unknown and no row was marked: let the Redis user run TYPE, XPENDING and XRANGE on ${DIGEST_STREAM}, then rerun`,
    { cause: err },
  );
}

/**
 * Whether the digest stream is absent where `client` looks (its key prefix): TYPE, a command the
 * README's read-only ACL user has. Absent, the live check cannot see any worker: it did not run.
 * Throws as findLiveRows does when the read fails.
 */
export async function digestStreamAbsent(client: RedisClient): Promise<boolean> {
  try {
    return (await client.type(DIGEST_STREAM)) === 'none';
  } catch (err) {
    throw incomplete(client, 'the type', err);
  }
}

/**
 * `rows`: the candidate rows; `oldest`: the earliest created_at among them. Throws a DoctorError
 * when a read fails (see incomplete): the check is then incomplete and must not be used.
 */
export async function findLiveRows(client: RedisClient, rows: ReadonlyArray<{ id: string }>, oldest: Date, liveIdleMs: number): Promise<LiveCheck> {
  const out: LiveCheck = { live: new Map(), groupMissing: false, pendingSeen: 0 };
  if (!rows.length) return out;
  const wanted = new Set(rows.map((r) => r.id));
  const recent: LiveDelivery[] = [];
  let start = idAtOrAfter(new Date(oldest.getTime() - CLOCK_SLACK_MS));
  let skip: string | undefined;
  for (;;) {
    let page: PendingRow[];
    try {
      page = (await client.xpending(DIGEST_STREAM, DIGEST_GROUP, start, '+', PAGE)) as PendingRow[];
    } catch (err) {
      if (/NOGROUP/i.test((err as Error).message)) return { ...out, groupMissing: true };
      throw incomplete(client, `the pending list of group ${DIGEST_GROUP}`, err);
    }
    // Pages overlap by one entry (inclusive starts work before Redis 6.2's exclusive ranges).
    const fresh = page.filter(([id]) => id !== skip);
    out.pendingSeen += fresh.length;
    for (const [entryId, consumer, idle, deliveries] of fresh) {
      const p = { entryId, consumer, idleMs: Number(idle), deliveries: Number(deliveries) };
      if (isLiveDelivery(p, liveIdleMs)) recent.push(p);
    }
    if (page.length < PAGE) break;
    start = skip = page[page.length - 1]![0];
  }
  if (!recent.length) return out;
  const pipeline = client.pipeline();
  for (const p of recent) pipeline.xrange(DIGEST_STREAM, p.entryId, p.entryId);
  let replies: Awaited<ReturnType<typeof pipeline.exec>>;
  try {
    replies = await pipeline.exec();
  } catch (err) {
    throw incomplete(client, `${recent.length} pending entries`, err);
  }
  if (!replies || replies.length !== recent.length) throw incomplete(client, `${recent.length} pending entries`, new Error(`${replies?.length ?? 0} replies`));
  const failed = replies.findIndex(([err]) => err);
  if (failed >= 0) throw incomplete(client, `pending entry ${recent[failed]!.entryId}`, replies[failed]![0]);
  replies.forEach(([, reply], i) => {
    // An entry deleted or trimmed while pending reads as none: no worker can be given it.
    const entry = (reply as RawEntry[])[0];
    const data = entry ? fieldsToRecord(entry[1])[EVENT_FIELD] : undefined;
    const parsed = data === undefined ? undefined : parseEventJson(data);
    const historyId = parsed?.ok ? parsed.event.history_id?.toLowerCase() : undefined;
    if (historyId && wanted.has(historyId)) out.live.set(historyId, recent[i]!);
  });
  return out;
}
