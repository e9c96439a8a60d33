// Duplicate classification and staleness. Pure.
import { isInFlight } from './contract.js';
import { newestFirst, type DecisionRow } from './decision.js';

export type KeepPolicy = 'newest' | 'oldest';
export const KEEP_POLICIES: readonly KeepPolicy[] = ['newest', 'oldest'];

export interface GroupClassification<T extends { id: string; status: string }> {
  inFlight: T[];
  kept: T | undefined;
  /** In-flight rows other than the kept one: the duplicates to fail. */
  extras: T[];
}

/** Given every row of one (user, day): which are in flight, which one is kept, which are extras. */
export function classifyGroup<T extends DecisionRow>(rows: readonly T[], keep: KeepPolicy = 'newest'): GroupClassification<T> {
  return classifyNewestFirst(newestFirst(rows), keep);
}

/**
 * classifyGroup for rows already newest first, as the database orders them (`ORDER BY created_at
 * DESC, id DESC`: to the microsecond, where a `Date` keeps only milliseconds). Their order decides.
 */
export function classifyNewestFirst<T extends { id: string; status: string }>(rows: readonly T[], keep: KeepPolicy = 'newest'): GroupClassification<T> {
  const ordered = rows.filter((r) => isInFlight(r.status));
  if (keep === 'oldest') ordered.reverse();
  const [kept, ...extras] = ordered;
  return { inFlight: ordered, kept, extras };
}

export function isDuplicateGroup(rows: readonly DecisionRow[]): boolean {
  return rows.filter((r) => isInFlight(r.status)).length > 1;
}

/** In-flight rows created before `now - olderThanMs`. `now` should come from the database clock. */
export function staleRows<T extends DecisionRow>(rows: readonly T[], now: Date, olderThanMs: number): T[] {
  const cutoff = now.getTime() - olderThanMs;
  return rows.filter((r) => isInFlight(r.status) && r.createdAt.getTime() < cutoff);
}

export const AGE_BUCKETS = ['< 1 h', '1 h - 1 d', '1 - 7 d', '> 7 d'] as const;
export type AgeBucket = (typeof AGE_BUCKETS)[number];

export function ageBucket(ageMs: number): AgeBucket {
  if (ageMs < 3_600_000) return '< 1 h';
  if (ageMs < 86_400_000) return '1 h - 1 d';
  if (ageMs < 7 * 86_400_000) return '1 - 7 d';
  return '> 7 d';
}

/** `3d 4h`, `12m 5s`: an age for people. */
export function formatAge(ms: number): string {
  if (!Number.isFinite(ms)) return 'unknown';
  const neg = ms < 0;
  let s = Math.floor(Math.abs(ms) / 1000);
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  const parts = d ? [`${d}d`, `${h}h`] : h ? [`${h}h`, `${m}m`] : m ? [`${m}m`, `${s}s`] : [`${s}s`];
  return (neg ? '-' : '') + parts.join(' ');
}
