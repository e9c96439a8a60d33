import { formatDuration } from './text.js';
// Duplicate classification and staleness. Pure.
import { isInFlight } from './contract.js';
import { newestFirst, type DecisionRow } from './decision.js';

export type KeepPolicy = 'newest' | 'oldest';
export const KEEP_POLICIES: readonly KeepPolicy[] = ['newest', 'oldest'];

export interface GroupClassification<T extends DecisionRow> {
  /** The in-flight rows in keep order: the kept one first. */
  inFlight: T[];
  kept: T | undefined;
  /** In-flight rows other than the kept one: the duplicates to fail. */
  extras: T[];
}

/**
 * Given every row of one (user, day): which are in flight, which one is kept, which are extras.
 * The keep rule: `newest` keeps the first in-flight row by compareNewestFirst (created_at to the
 * microsecond, then id, descending: the row the service reads first), `oldest` the last. Rows may
 * come in any order. fix-duplicates keeps the same row (fix_duplicate_rows.sql and fix_batch.sql
 * rank to this rule; test/integration/keep-rule.test.ts holds them equal).
 */
export function classifyGroup<T extends DecisionRow>(rows: readonly T[], keep: KeepPolicy = 'newest'): GroupClassification<T> {
  const ordered = newestFirst(rows.filter((r) => isInFlight(r.status)));
  if (keep === 'oldest') ordered.reverse();
  const [kept, ...extras] = ordered;
  return { inFlight: ordered, kept, extras };
}

export function isDuplicateGroup(rows: readonly DecisionRow[]): boolean {
  return rows.filter((r) => isInFlight(r.status)).length > 1;
}

/** In-flight rows created before `now - olderThanMs` (to the microsecond). `now` should come from the database clock. */
export function staleRows<T extends DecisionRow>(rows: readonly T[], now: Date, olderThanMs: number): T[] {
  const cutoffUs = (now.getTime() - olderThanMs) * 1000;
  return rows.filter((r) => isInFlight(r.status) && r.createdUs < cutoffUs);
}

export const AGE_BUCKETS = ['< 1 h', '1 h - 1 d', '1 - 7 d', '> 7 d'] as const;
export type AgeBucket = (typeof AGE_BUCKETS)[number];

export function ageBucket(ageMs: number): AgeBucket {
  if (ageMs < 3_600_000) return '< 1 h';
  if (ageMs < 86_400_000) return '1 h - 1 d';
  if (ageMs < 7 * 86_400_000) return '1 - 7 d';
  return '> 7 d';
}

/** An age for people: formatDuration (src/core/text.ts): `3d 4h`, `12m 5s`, `10m`. */
export function formatAge(ms: number): string {
  return formatDuration(ms);
}
