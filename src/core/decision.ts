// What the service decides for a new digest request (service-contract.md, "How rows are created"),
// and what a corrected service decides. Pure: rows and the instant come in as arguments.
//
// The keep rule lives here, once: rows of a (user, day) in the order the service reads them,
// newest first (service-contract.md, "The newest row for (user, today) decides"). Every other copy
// of that order is SQL that must agree with it to the microsecond: fix_duplicate_rows.sql and
// fix_batch.sql (which row fix-duplicates keeps), inspect_user_rows.sql and request_day_rows.sql;
// test/integration/keep-rule.test.ts runs each over rows inside one millisecond, ties included,
// and holds it equal to newestFirst.
import { MANUAL_SUPERSEDE_AFTER_MS, isInFlight, type Trigger } from './contract.js';
import { badInput } from '../errors.js';
import { formatDuration } from './text.js';

/**
 * A `created_at` to the microsecond, the database's precision: microseconds since the Unix epoch.
 * A number is exact up to 2^53 µs (the year 2255). A `Date` keeps only milliseconds, and the rows a
 * double click creates are often inside one: the keep rule never orders by a `Date`. From Postgres,
 * select `(extract(epoch FROM created_at) * 1000000)::int8`, or read the timestamp as text and pass
 * it to `microsFromTimestamp`.
 */
export type Micros = number;

export interface DecisionRow {
  id: string;
  status: string;
  /** created_at in microseconds since the epoch (see Micros). */
  createdUs: Micros;
}

const TIMESTAMP = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?(Z|[+-]\d{2}(?::?\d{2})?)$/i;

/**
 * A timestamp with a zone, as text, to microseconds since the epoch (Micros), exactly: ISO 8601
 * (`2025-11-25T15:36:57.123456Z`, `...+03:00`), JSON from Postgres (`row_to_json`:
 * `2025-11-25T15:36:57.123456+00:00`) or Postgres' text output (`2025-11-25 15:36:57.123456+00`).
 * Up to six fractional digits. Throws a DoctorError (BAD_INPUT) on anything else, a zone-less
 * timestamp included (it names no instant).
 */
export function microsFromTimestamp(text: string): Micros {
  const m = TIMESTAMP.exec(text.trim());
  const zone = m ? (m[4]!.toUpperCase() === 'Z' ? 'Z' : m[4]!.length === 3 ? `${m[4]}:00` : m[4]!.includes(':') ? m[4]! : `${m[4]!.slice(0, 3)}:${m[4]!.slice(3)}`) : '';
  const ms = m ? Date.parse(`${m[1]}T${m[2]}${zone}`) : NaN;
  if (!Number.isFinite(ms)) throw badInput(`timestamp "${text}" is not a timestamp with a zone: expected e.g. 2025-11-25T15:36:57.123456Z`);
  return ms * 1000 + Number((m![3] ?? '').padEnd(6, '0'));
}

/**
 * The keep rule's order, newest first: created_at descending to the microsecond, then id
 * descending (ids compared as lower-case text, which for UUIDs is the order of Postgres' `uuid`
 * type). Postgres: `ORDER BY created_at DESC, id DESC`. Oldest first is the exact reverse.
 */
export function compareNewestFirst(a: { id: string; createdUs: Micros }, b: { id: string; createdUs: Micros }): number {
  if (a.createdUs !== b.createdUs) return b.createdUs - a.createdUs;
  const x = a.id.toLowerCase();
  const y = b.id.toLowerCase();
  return x < y ? 1 : x > y ? -1 : 0;
}

/** A copy of `rows`, newest first by compareNewestFirst: the order the service reads a day's rows in. */
export function newestFirst<T extends { id: string; createdUs: Micros }>(rows: readonly T[]): T[] {
  return [...rows].sort(compareNewestFirst);
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

/** The service as shipped: it looks only at the newest row of (user, today). */
export function serviceDecision(rows: readonly DecisionRow[], trigger: Trigger, now: Date): Decision {
  const newest = newestFirst(rows)[0];
  if (!newest) return { action: 'insert', publish: true, reason: 'no row for this user and day' };
  const manual = trigger === 'manual';
  if (isInFlight(newest.status)) {
    const age = now.getTime() - newest.createdUs / 1000;
    if (manual && age >= MANUAL_SUPERSEDE_AFTER_MS) {
      return { action: 'supersede', rowId: newest.id, publish: true, reason: `manual request, in-flight row is ${formatDuration(age)} old: superseded` };
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
