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
}

export type SkipReason = 'row already sent' | 'row missing' | 'no history_id' | 'repeat in the source';

export interface PlannedEvent extends ReplayCandidate {
  action: 'publish' | 'skip';
  reason: SkipReason | null;
}

/**
 * Publishes each distinct job once. Skips (and lists) events whose row is already sent or gone, and
 * events with no history_id to check; `force` publishes those too, except where there is nothing
 * to rebuild the event from (a --history-id whose row is missing).
 */
export function planReplay(candidates: readonly ReplayCandidate[], rows: ReadonlyMap<string, ReplayRowState>, opts: { force?: boolean } = {}): PlannedEvent[] {
  const seen = new Set<string>();
  return candidates.map((c) => {
    const skip = (reason: SkipReason, forcible = true): PlannedEvent => ({
      ...c,
      action: opts.force && forcible && c.input ? 'publish' : 'skip',
      reason,
    });
    if (c.historyId) {
      if (seen.has(c.historyId)) return { ...c, action: 'skip', reason: 'repeat in the source' };
      seen.add(c.historyId);
    }
    if (!c.input) return skip('row missing', false);
    if (!c.historyId) return skip('no history_id');
    const row = rows.get(c.historyId);
    if (!row) return skip('row missing');
    if (row.status === 'sent') return skip('row already sent');
    return { ...c, action: 'publish', reason: null };
  });
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
