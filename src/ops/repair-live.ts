// mark-stale's Redis check: which rows still have their event pending in the worker group and
// delivered recently. Only the group's pending list is read (from the oldest row's time on: an event
// is published after its row is committed), then just those entries; never the whole stream, never
// XREADGROUP.
import { DIGEST_GROUP, DIGEST_STREAM, EVENT_FIELD } from '../core/contract.js';
import { fieldsToRecord, parseEventJson } from '../core/event.js';
import { isLiveDelivery, type PendingDelivery } from '../core/repair.js';
import { idAtOrAfter } from '../core/stream-id.js';
import type { RedisClient } from '../redis/connect.js';
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

/** `rows`: the candidate rows; `oldest`: the earliest created_at among them. */
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
      throw err;
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
  const replies = (await pipeline.exec()) ?? [];
  replies.forEach(([err, reply], i) => {
    const entry = (err ? [] : (reply as RawEntry[]))[0];
    const data = entry ? fieldsToRecord(entry[1])[EVENT_FIELD] : undefined;
    const parsed = data === undefined ? undefined : parseEventJson(data);
    const historyId = parsed?.ok ? parsed.event.history_id?.toLowerCase() : undefined;
    if (historyId && wanted.has(historyId)) out.live.set(historyId, recent[i]!);
  });
  return out;
}
