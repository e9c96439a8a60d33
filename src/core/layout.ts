// Fitting a table to a terminal width: pure layout (no I/O, no colour library). src/cli/render.ts
// draws what this decides. Widths are in terminal columns of the visible text (ANSI colour codes
// are not counted); cells may hold several lines.
import { stripVTControlCharacters } from 'node:util';

export interface ColumnSpec {
  header: string;
  /** Cells holding UUIDs: shortened to their first 8 characters when the table does not fit (--wide shows them whole). */
  id?: boolean;
  /** May be wrapped down to `min` columns when the table does not fit. */
  shrink?: boolean;
  /** Narrowest a shrinkable column gets (default 12). */
  min?: number;
  /** Low-value columns are hidden when even wrapping does not fit: the lowest `drop` first. Undefined: never hidden. */
  drop?: number;
}

export type Column = string | ColumnSpec;

export type Layout =
  | { kind: 'table'; headers: string[]; rows: string[][]; hidden: string[] }
  | { kind: 'records'; headers: string[]; rows: string[][] };

const UUID = /\b([0-9a-f]{8})-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi;

/** Visible width of a (possibly multi-line, possibly coloured) cell. */
export function visibleWidth(text: string): number {
  return Math.max(0, ...stripVTControlCharacters(text).split('\n').map((l) => l.length));
}

/** Width cli-table3 draws: each column its width plus one space each side, and n + 1 borders. */
export function tableWidth(widths: readonly number[]): number {
  return widths.reduce((a, w) => a + w + 2, 0) + widths.length + 1;
}

/** Every UUID in `text` cut to its first 8 hex digits (as `git log --oneline` does for hashes). */
export function shortenIds(text: string): string {
  return text.replace(UUID, '$1');
}

/**
 * Word-wraps `text` to `width` columns: breaks at spaces, a word longer than the width is cut.
 * Colour is dropped from a cell that has to be wrapped (codes cannot be split safely).
 */
export function wrapText(text: string, width: number): string {
  if (visibleWidth(text) <= width) return text;
  const out: string[] = [];
  for (const line of stripVTControlCharacters(text).split('\n')) {
    let cur = '';
    for (const word of line.split(' ')) {
      let w = word;
      while (w.length > width) {
        if (cur) {
          out.push(cur);
          cur = '';
        }
        out.push(w.slice(0, width));
        w = w.slice(width);
      }
      if (!cur) cur = w;
      else if (cur.length + 1 + w.length <= width) cur += ' ' + w;
      else {
        out.push(cur);
        cur = w;
      }
    }
    out.push(cur);
  }
  return out.join('\n');
}

const spec = (c: Column): ColumnSpec => (typeof c === 'string' ? { header: c } : c);

/** Visible width of the longest space-separated word of a (possibly multi-line, coloured) cell. */
function longestWord(text: string): number {
  return Math.max(0, ...stripVTControlCharacters(text).split(/[ \n]/).map((w) => w.length));
}

/**
 * Lays a table out in `width` columns (Infinity: as wide as it needs). In order, until it fits:
 * columns whose cells are all empty are left out; ids are shortened; shrinkable columns are
 * wrapped at spaces, widest first, down to their minimum (never below their longest word: a name,
 * a timestamp or an id is not cut in two); low-value columns are hidden (named in `hidden`);
 * and when even that does not fit, a vertical record layout (one "header: value" line per cell).
 */
export function layoutTable(columns: readonly Column[], cells: ReadonlyArray<ReadonlyArray<string>>, width: number): Layout {
  let specs = columns.map(spec);
  let rows = cells.map((r) => specs.map((_, i) => r[i] ?? ''));
  // a column with nothing in it says nothing
  const keep = specs.map((_, i) => rows.length === 0 || rows.some((r) => r[i]!.trim() !== ''));
  specs = specs.filter((_, i) => keep[i]);
  rows = rows.map((r) => r.filter((_, i) => keep[i]));
  const headers = () => specs.map((s) => s.header);
  const natural = () => specs.map((s, i) => Math.max(visibleWidth(s.header), ...rows.map((r) => visibleWidth(r[i]!))));
  if (tableWidth(natural()) <= width) return { kind: 'table', headers: headers(), rows, hidden: [] };

  rows = rows.map((r) => r.map((c, i) => (specs[i]!.id ? shortenIds(c) : c)));
  const hidden: string[] = [];
  for (;;) {
    const widths = natural();
    // wrapped at spaces only: a column gets no narrower than its header, its minimum and its longest
    // word (an index name, a timestamp, an id is never cut in two; the records layout takes over)
    const floor = specs.map((s, i) => Math.max(s.min ?? 12, visibleWidth(s.header), ...rows.map((r) => longestWord(r[i]!))));
    // wrap shrinkable columns, one column at a time, the widest first
    let over = tableWidth(widths) - width;
    const target = [...widths];
    while (over > 0) {
      let best = -1;
      for (let i = 0; i < specs.length; i++) {
        if (specs[i]!.shrink && target[i]! > floor[i]! && (best < 0 || target[i]! > target[best]!)) best = i;
      }
      if (best < 0) break;
      const cut = Math.min(over, target[best]! - floor[best]!);
      target[best]! -= cut;
      over -= cut;
    }
    if (over <= 0) {
      const wrapped = rows.map((r) => r.map((c, i) => (target[i]! < widths[i]! ? wrapText(c, target[i]!) : c)));
      const actual = specs.map((s, i) => Math.max(visibleWidth(s.header), ...wrapped.map((r) => visibleWidth(r[i]!))));
      if (tableWidth(actual) <= width) return { kind: 'table', headers: headers(), rows: wrapped, hidden };
    }
    // hide the lowest-value column left, if any
    let drop = -1;
    specs.forEach((s, i) => {
      if (s.drop !== undefined && (drop < 0 || s.drop < specs[drop]!.drop!)) drop = i;
    });
    if (drop < 0) break;
    hidden.push(specs[drop]!.header);
    specs = specs.filter((_, i) => i !== drop);
    rows = rows.map((r) => r.filter((_, i) => i !== drop));
  }
  // vertical: every column again (nothing hidden), one record per row
  const all = columns.map(spec).filter((_, i) => keep[i]);
  const full = cells.map((r) => columns.map((_, i) => r[i] ?? '').filter((_, i) => keep[i]).map((c, i) => (all[i]!.id ? shortenIds(c) : c)));
  return { kind: 'records', headers: all.map((s) => s.header), rows: full };
}

/**
 * Draws records for layoutTable's vertical layout: "header  value" per cell, values wrapped to
 * what is left of `width`, a rule line between records.
 */
export function renderRecords(headers: readonly string[], rows: ReadonlyArray<ReadonlyArray<string>>, width: number, label: (h: string) => string = (h) => h): string {
  const lw = Math.max(...headers.map((h) => h.length));
  const valueWidth = Math.max(10, width - lw - 2);
  const out: string[] = [];
  rows.forEach((r, n) => {
    out.push(`-- ${n + 1} of ${rows.length} ${'-'.repeat(Math.max(0, Math.min(width, 40) - 8 - String(n + 1).length - String(rows.length).length))}`);
    headers.forEach((h, i) => {
      const lines = wrapText(r[i] ?? '', valueWidth).split('\n');
      lines.forEach((l, j) => out.push(`${j === 0 ? label(h.padEnd(lw)) : ' '.repeat(lw)}  ${l}`));
    });
  });
  return out.join('\n');
}

/**
 * Fits printed text to `width` columns (Infinity: unchanged), line by line: prose wraps at spaces
 * under its own indentation (two more columns, seven after a `[warn] ` mark); a break inside a
 * `digest-doctor ...` command ends with " \\" so the command still pastes as one. Table borders and
 * GitHub workflow commands (`::error ...`) are left whole; a wrapped line loses its colour codes;
 * a single word wider than `width` stays whole.
 */
export function fitLines(text: string, width: number): string {
  if (!Number.isFinite(width)) return text;
  return text
    .split('\n')
    .map((line) => fitLine(line, width))
    .join('\n');
}

function fitLine(line: string, width: number): string {
  const plain = stripVTControlCharacters(line);
  // table borders are already fitted; GitHub workflow commands (::error ...) must stay one line
  if (plain.length <= width || /^[\u2500-\u257f|]/.test(plain.trimStart()) || plain.startsWith('::')) return line;
  // colour codes cannot be split safely: a line that has to be wrapped loses its colour
  const indent = /^\s*/.exec(plain)![0];
  // a shell comment ("# ...") goes on as a comment, so a pasted block never runs its second line
  const comment = plain.startsWith('# ', indent.length);
  const hang = indent + (comment ? '# ' : /^\s*\[[a-zA-Z ]{4}\] /.test(plain) ? '       ' : '  ');
  const words = plain.slice(indent.length).split(' ');
  const out: string[] = [];
  let cur = indent;
  let inCommand = false;
  for (const word of words) {
    const fresh = cur.trim() === '';
    const room = width - (inCommand ? 2 : 0);
    if (!fresh && cur.length + 1 + word.length > room) {
      out.push(inCommand ? `${cur} \\` : cur);
      cur = hang + word;
    } else cur = fresh ? cur + word : `${cur} ${word}`;
    if (!comment && (word === 'digest-doctor' || word === '`digest-doctor' || word === 'redis-cli')) inCommand = true;
    else if (inCommand && /[,;)`]$/.test(word)) inCommand = false;
  }
  out.push(cur);
  return out.join('\n');
}
