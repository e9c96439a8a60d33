// The only user of chalk and cli-table3. Colour is decided once (NO_COLOR, --no-color, TTY) and
// passed in; neither library honours NO_COLOR on its own.
import { createRequire } from 'node:module';
import { stripVTControlCharacters } from 'node:util';
import type { ChalkInstance } from 'chalk';
import type TableClass from 'cli-table3';
import { fitLines, layoutTable, renderRecords, type Column } from '../core/layout.js';

export { fitLines };

export type { Column, ColumnSpec } from '../core/layout.js';

/**
 * The width human output must fit: --wide (or DIGEST_DOCTOR_WIDE) is unlimited; on a terminal its
 * columns; otherwise COLUMNS when set, else 80 (a pipe or a CI log).
 */
export function outputWidth(wide: boolean, env: NodeJS.ProcessEnv = process.env, stdout: { isTTY?: boolean; columns?: number } = process.stdout): number {
  if (wide) return Infinity;
  const fromEnv = Number(env.COLUMNS);
  if (stdout.isTTY && stdout.columns && stdout.columns > 0) return stdout.columns;
  if (Number.isInteger(fromEnv) && fromEnv > 0) return fromEnv;
  return 80;
}

export type Verdict = 'ok' | 'warn' | 'fail' | 'skip' | 'info';

export interface Style {
  color: boolean;
  bold(s: string): string;
  dim(s: string): string;
  ok(s: string): string;
  warn(s: string): string;
  fail(s: string): string;
  accent(s: string): string;
  verdict(v: Verdict): string;
  /** Columns the output must fit (Infinity with --wide). */
  width: number;
  /**
   * A table that fits `width`: layoutTable (src/core/layout.ts) shortens ids, wraps shrinkable
   * columns, hides low-value ones (and says so), or switches to one record per row.
   */
  table(head: readonly Column[], rows: ReadonlyArray<ReadonlyArray<string | number | null | undefined>>): string;
  /**
   * Fits a printed line to `width`: prose wraps at spaces under its own indentation; a break inside
   * a `digest-doctor ...` command ends with " \\" so the command still pastes as one.
   */
  fit(text: string): string;
  heading(s: string): string;
}

let Table: typeof TableClass | undefined;
/**
 * cli-table3 (CommonJS, with its width and colour modules), required on the first table drawn: a
 * command prints after its queries, so loading it is no longer part of reaching the first one
 * (about 10 ms of CPU; see BENCHMARKS.md, start-up). Not bundled: Node's require loads it.
 */
function tableClass(): typeof TableClass {
  return (Table ??= createRequire(import.meta.url)('cli-table3') as typeof TableClass);
}

const MARK: Record<Verdict, string> = { ok: 'ok  ', warn: 'warn', fail: 'FAIL', skip: 'skip', info: 'info' };

/** The colours a Style uses; without colour each returns its text unchanged (as chalk at level 0 does). */
interface Paint {
  bold(s: string): string;
  dim(s: string): string;
  green(s: string): string;
  yellow(s: string): string;
  red(s: string): string;
  cyan(s: string): string;
  boldUnderline(s: string): string;
  redBold(s: string): string;
}
const same = (s: string): string => s;
const PLAIN: Paint = { bold: same, dim: same, green: same, yellow: same, red: same, cyan: same, boldUnderline: same, redBold: same };

let colorChalk: ChalkInstance | undefined;
/**
 * Loads chalk, for makeStyle(true): a run without colour (NO_COLOR, --no-color, a pipe, --json)
 * never loads it (about 9 ms of CPU at start-up, with the node:tty it imports).
 */
export async function loadColor(): Promise<void> {
  if (!colorChalk) {
    const { Chalk } = await import('chalk');
    colorChalk = new Chalk({ level: 1 });
  }
}

function chalkPaint(c: ChalkInstance): Paint {
  return {
    bold: (s) => c.bold(s),
    dim: (s) => c.dim(s),
    green: (s) => c.green(s),
    yellow: (s) => c.yellow(s),
    red: (s) => c.red(s),
    cyan: (s) => c.cyan(s),
    boldUnderline: (s) => c.bold.underline(s),
    redBold: (s) => c.red.bold(s),
  };
}

/** `color`: ANSI colours (level 1), after `await loadColor()`; an error before it. */
export function makeStyle(color: boolean, width = Infinity): Style {
  if (color && !colorChalk) throw new Error('makeStyle(true) before loadColor()');
  const c = color ? chalkPaint(colorChalk!) : PLAIN;
  const style: Style = {
    color,
    bold: (s) => c.bold(s),
    dim: (s) => c.dim(s),
    ok: (s) => c.green(s),
    warn: (s) => c.yellow(s),
    fail: (s) => c.red(s),
    accent: (s) => c.cyan(s),
    heading: (s) => c.boldUnderline(s),
    verdict(v) {
      const text = `[${MARK[v]}]`;
      return v === 'ok' ? c.green(text) : v === 'warn' ? c.yellow(text) : v === 'fail' ? c.redBold(text) : c.dim(text);
    },
    width,
    table(head, rows) {
      const cells = rows.map((r) => r.map((v) => (v === null || v === undefined ? '' : String(v))));
      const layout = layoutTable(head, cells, width);
      if (layout.kind === 'records') return renderRecords(layout.headers, layout.rows, width, (h) => c.bold(h));
      const t = new (tableClass())({
        head: layout.headers.map((h) => c.bold(h)),
        style: { head: [], border: [], compact: false },
        wordWrap: false,
      });
      for (const r of layout.rows) t.push(r);
      const drawn = t.toString();
      // cli-table3 measures some characters wider than the layout did: records then, never an overflow
      if (Number.isFinite(width) && Math.max(...stripVTControlCharacters(drawn).split('\n').map((l) => l.length)) > width) {
        return renderRecords(layout.headers, layout.rows.map((r) => r.map((c) => c.replace(/\n/g, ' '))), width, (h) => c.bold(h));
      }
      const note = layout.hidden.length ? '\n' + c.dim(`(${layout.hidden.join(', ')} not shown at ${width} columns: --wide or --json shows ${layout.hidden.length === 1 ? 'it' : 'them'})`) : '';
      return drawn + note;
    },
    fit: (text) => fitLines(text, width),
  };
  return style;
}
