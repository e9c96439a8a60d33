// The one renderer of Findings (src/core/finding.ts) for inspect, migrate's preflight, streams and
// check. Two layouts of the same lines:
//   block (the default, for people):  [FAIL] duplicates: 2 (user, day) groups ...
//                                            fix: digest-doctor fix-duplicates
//   line (check's text format, one line per check, grep-able in a CI log, no brackets):
//                                     FAIL duplicates (public): ... -> fix: digest-doctor ...
import type { Finding } from '../core/finding.js';
import type { Style } from './render.js';

export interface RenderFindingsOptions<F extends Finding> {
  /** What names the finding before the colon (default: its check, dimmed in the block layout). */
  label?: (f: F, s: Style) => string;
  layout?: 'block' | 'line';
  /** Printed (as an ok line) when there is no finding at all; nothing when omitted. */
  whenNone?: string;
  /** Lists `items` under the finding (block layout), at most this many; 0 (default): not listed. */
  items?: number;
}

const INDENT = ' '.repeat(7);
const LINE_MARK = { ok: 'ok  ', warn: 'warn', fail: 'FAIL' } as const;

/** One line (or a few, with the fix and items) per finding, in the order given. */
export function renderFindings<F extends Finding>(findings: readonly F[], s: Style, o: RenderFindingsOptions<F> = {}): string {
  const layout = o.layout ?? 'block';
  if (!findings.length) return o.whenNone === undefined ? '' : layout === 'line' ? `${LINE_MARK.ok} ${o.whenNone}` : `${s.verdict('ok')} ${o.whenNone}`;
  const out: string[] = [];
  for (const f of findings) {
    const label = o.label ? o.label(f, s) : layout === 'line' ? f.check : s.dim(f.check);
    if (layout === 'line') {
      out.push(`${LINE_MARK[f.verdict]} ${label}: ${f.message}${f.fix ? ` -> fix: ${f.fix}` : ''}`);
      continue;
    }
    out.push(`${s.verdict(f.verdict)} ${label}: ${f.message}`);
    if (f.fix) out.push(`${INDENT}${s.accent('fix:')} ${f.fix}`);
    const shown = o.items ? f.items.slice(0, o.items) : [];
    if (shown.length) out.push(`${INDENT}${s.dim(`${f.items.length > shown.length ? `first ${shown.length} of ${f.items.length}` : 'items'}:`)} ${shown.join(', ')}`);
  }
  return out.join('\n');
}
