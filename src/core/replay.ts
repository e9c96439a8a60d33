// What a replay publishes and what it skips. Pure: candidates and the rows they point at come in,
// a plan comes out (src/ops/replay.ts gathers the inputs and publishes).
import type { BuildEventInput } from './event.js';

export type ReplaySource = 'dlq' | 'failed' | 'history-id';

export interface ReplayCandidate {
  source: ReplaySource;
  /** The DLQ entry id, or the row id for row sources. */
  sourceId: string;
  historyId?: string;
  /** The event to rebuild: everything buildEvent needs (null when the row could not be read). */
  input: BuildEventInput | null;
}

export interface ReplayRowState {
  id: string;
  status: string;
  /** Another row of the same (user, day) that is sent or in flight: replaying would send twice. */
  other_id?: string | null;
}

export type SkipReason = 'row already sent' | 'row missing' | 'no history_id' | 'repeat in the source' | 'another row of the day is sent or in flight';

export interface PlannedEvent extends ReplayCandidate {
  action: 'publish' | 'skip';
  reason: SkipReason | null;
}

/**
 * Publishes each distinct job once. Skips (and lists) events whose row is already sent or gone,
 * whose (user, day) has another row sent or in flight (the digest would go out twice), and events
 * with no history_id to check; `force` publishes those too, except where there is nothing
 * to rebuild the event from (a --history-id whose row is missing).
 */
export function planReplay(candidates: readonly ReplayCandidate[], rows: ReadonlyMap<string, ReplayRowState>, opts: { force?: boolean } = {}): PlannedEvent[] {
  const seen = new Set<string>();
  const out: PlannedEvent[] = new Array(candidates.length);
  for (let i = 0; i < candidates.length; i++) {
    const c = candidates[i]!;
    const reason = skipReason(c, rows, seen);
    // --force overrides a skip, except a repeat and an event with nothing to rebuild it from
    const forced = opts.force === true && reason !== null && reason !== 'repeat in the source' && c.input !== null;
    // an object literal, not a spread: a spread per event costs microseconds at 100,000 events
    out[i] = { source: c.source, sourceId: c.sourceId, historyId: c.historyId, input: c.input, action: reason === null || forced ? 'publish' : 'skip', reason };
  }
  return out;
}

function skipReason(c: ReplayCandidate, rows: ReadonlyMap<string, ReplayRowState>, seen: Set<string>): SkipReason | null {
  if (c.historyId) {
    if (seen.has(c.historyId)) return 'repeat in the source';
    seen.add(c.historyId);
  }
  if (!c.input || !c.historyId) return c.input ? 'no history_id' : 'row missing';
  const row = rows.get(c.historyId);
  if (!row) return 'row missing';
  if (row.status === 'sent') return 'row already sent';
  return row.other_id ? 'another row of the day is sent or in flight' : null;
}

/** The id a replayed event is deduplicated on: its history_id, or the DLQ entry when it has none. */
export function replayIdempotencyId(c: Pick<ReplayCandidate, 'historyId' | 'source' | 'sourceId'>): string {
  return c.historyId ?? `${c.source}:${c.sourceId}`;
}

/** How long to wait before the next batch so `sent` events take at least sent/rate seconds. */
export function rateDelayMs(sent: number, elapsedMs: number, ratePerSec: number | undefined): number {
  if (!ratePerSec) return 0;
  return Math.max(0, Math.ceil((sent / ratePerSec) * 1000 - elapsedMs));
}
