// Words and numbers for people: one plural rule, one duration format, counts with separators.
// Pure (no I/O); every human message of the CLI goes through these (grep plural/formatDuration).

/**
 * `n` and the noun agreeing with it: plural(1, 'group') = "1 group", plural(3, 'entry') = "3 entries".
 * The plural is the given form, else English's regular rule (-y after a consonant -> -ies; -s, -x,
 * -ch, -sh -> -es; else -s). Counts use thousands separators (en-US): "284,000 entries".
 */
export function plural(n: number, singular: string, pluralForm?: string): string {
  return `${formatCount(n)} ${noun(n, singular, pluralForm)}`;
}

/** Only the noun of plural(): "row" for 1, "rows" otherwise (0 takes the plural, as in English). */
export function noun(n: number, singular: string, pluralForm?: string): string {
  if (n === 1) return singular;
  if (pluralForm) return pluralForm;
  // "extra row" -> "extra rows": the rule applies to the last word
  if (/[^aeiou]y$/i.test(singular)) return singular.slice(0, -1) + 'ies';
  if (/(?:s|x|ch|sh)$/i.test(singular)) return singular + 'es';
  return singular + 's';
}

/** 284000 -> "284,000" (en-US grouping, whatever the locale of the machine). */
export function formatCount(n: number): string {
  return Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: 1 }) : String(n);
}

/**
 * A duration in milliseconds for people, the two largest units, zero parts dropped:
 * 600_000 -> "10m" (not "10m 0s"), 3_900_000 -> "1h 5m", 90_061_000 -> "1d 1h", 45_000 -> "45s",
 * below a second "0s" (or "850ms" with `millis`). Negative durations keep their sign; not finite: "unknown".
 */
export function formatDuration(ms: number, opts: { millis?: boolean } = {}): string {
  if (!Number.isFinite(ms)) return 'unknown';
  const sign = ms < 0 ? '-' : '';
  const abs = Math.abs(ms);
  if (opts.millis && abs < 1000) return `${sign}${Math.round(abs)}ms`;
  let s = Math.floor(abs / 1000);
  const units: Array<[string, number]> = [
    ['d', 86_400],
    ['h', 3_600],
    ['m', 60],
    ['s', 1],
  ];
  const parts: string[] = [];
  for (const [unit, size] of units) {
    const v = Math.floor(s / size);
    s -= v * size;
    // the two largest units counted from the first non-zero one; a zero second part is dropped
    if (parts.length === 0 && v === 0) continue;
    parts.push(v ? `${v}${unit}` : '');
    if (parts.length === 2) break;
  }
  const text = parts.filter(Boolean).join(' ');
  return sign + (text || '0s');
}

/** "1,234/s": a rate from `done` units in `elapsedMs`; "" before any time has passed. */
export function formatRate(done: number, elapsedMs: number): string {
  if (elapsedMs <= 0) return '';
  const perSec = (done * 1000) / elapsedMs;
  return `${formatCount(perSec >= 10 ? Math.round(perSec) : Math.round(perSec * 10) / 10)}/s`;
}

/**
 * One progress line: "284,000 of 300,000 entries (95%), 12,000/s, about 1s left". Without a total
 * (undefined): "284,000 entries, 12,000/s". The estimate is the remaining units at the average rate so far.
 * `doneAtStart`: units already done when the clock started (`elapsedMs` 0), left out of the rate, so
 * work finished before the first report is not counted as done in no time.
 */
export function progressLine(done: number, total: number | undefined, unit: string, elapsedMs: number, doneAtStart = 0): string {
  const measured = done - doneAtStart;
  const rate = measured > 0 ? formatRate(measured, elapsedMs) : '';
  if (total === undefined || total <= 0) return [`${formatCount(done)} ${noun(done, unit)}`, rate].filter(Boolean).join(', ');
  const pct = Math.min(100, Math.floor((100 * done) / total));
  const parts = [`${formatCount(done)} of ${plural(total, unit)} (${pct}%)`];
  if (rate) parts.push(rate);
  if (measured > 0 && done < total && elapsedMs > 0) parts.push(`about ${formatDuration(((total - done) * elapsedMs) / measured)} left`);
  return parts.join(', ');
}

/**
 * A duration as a flag value parseDuration (src/core/validate.ts) reads back to the same milliseconds:
 * the largest unit that divides it exactly: 3_600_000 -> "1h", 5_400_000 -> "90m", 1_500 -> "1500ms".
 */
export function durationFlag(ms: number): string {
  for (const [unit, size] of [['w', 604_800_000], ['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1_000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${Math.round(ms)}ms`;
}
