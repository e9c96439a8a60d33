// What the service decides for a new digest request (service-contract.md, "How rows are created"),
// and what a corrected service decides. Pure: rows and the instant come in as arguments.
import { MANUAL_SUPERSEDE_AFTER_MS, isInFlight, type Trigger } from './contract.js';

export interface DecisionRow {
  id: string;
  status: string;
  createdAt: Date;
}

export type DecisionAction =
  /** insert a new pending row */
  | 'insert'
  /** return an existing row untouched */
  | 'return'
  /** mark the in-flight row failed, insert a new one */
  | 'supersede'
  /** set a failed row back to pending (same id, old created_at) */
  | 'reset';

export interface Decision {
  action: DecisionAction;
  /** The row returned, superseded or reset. */
  rowId?: string;
  publish: boolean;
  reason: string;
}

/** newest first by created_at, then id: the order the service's `ORDER BY created_at DESC` gives. */
export function newestFirst<T extends DecisionRow>(rows: readonly T[]): T[] {
  return [...rows].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
}

/** The service as shipped: it looks only at the newest row of (user, today). */
export function serviceDecision(rows: readonly DecisionRow[], trigger: Trigger, now: Date): Decision {
  const newest = newestFirst(rows)[0];
  if (!newest) return { action: 'insert', publish: true, reason: 'no row for this user and day' };
  const manual = trigger === 'manual';
  if (isInFlight(newest.status)) {
    const age = now.getTime() - newest.createdAt.getTime();
    if (manual && age >= MANUAL_SUPERSEDE_AFTER_MS) {
      return { action: 'supersede', rowId: newest.id, publish: true, reason: `manual request, in-flight row is ${Math.round(age / 1000)} s old: superseded` };
    }
    return { action: 'return', rowId: newest.id, publish: false, reason: 'in-flight row returned' };
  }
  if (newest.status === 'sent') {
    return manual
      ? { action: 'insert', publish: true, reason: 'manual request after a sent digest: new row' }
      : { action: 'return', rowId: newest.id, publish: false, reason: 'digest already sent' };
  }
  if (newest.status === 'failed') {
    return { action: 'reset', rowId: newest.id, publish: true, reason: 'failed row set back to pending (old created_at kept)' };
  }
  return { action: 'insert', publish: true, reason: `newest row has unknown status "${newest.status}"` };
}

/**
 * The corrected service: any in-flight row of (user, day), not only the newest, is returned and
 * never superseded; a failed row is left as history and a new row (fresh created_at) is inserted,
 * so age checks tell the truth. Only a manual request re-sends a digest that was already sent.
 */
export function correctedDecision(rows: readonly DecisionRow[], trigger: Trigger): Decision {
  const ordered = newestFirst(rows);
  const inFlight = ordered.find((r) => isInFlight(r.status));
  if (inFlight) return { action: 'return', rowId: inFlight.id, publish: false, reason: 'an in-flight row exists: returned, nothing published' };
  const newest = ordered[0];
  if (!newest) return { action: 'insert', publish: true, reason: 'no row for this user and day' };
  if (newest.status === 'sent' && trigger !== 'manual') {
    return { action: 'return', rowId: newest.id, publish: false, reason: 'digest already sent' };
  }
  return { action: 'insert', publish: true, reason: newest.status === 'sent' ? 'manual request after a sent digest: new row' : 'previous attempt failed: new row' };
}
