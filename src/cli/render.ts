// The only user of chalk and cli-table3. Colour is decided once (NO_COLOR, --no-color, TTY) and
// passed in; neither library honours NO_COLOR on its own.
import { Chalk } from 'chalk';
import Table from 'cli-table3';

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
  table(head: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number | null | undefined>>): string;
  heading(s: string): string;
}

const MARK: Record<Verdict, string> = { ok: 'ok  ', warn: 'warn', fail: 'FAIL', skip: 'skip', info: 'info' };

export function makeStyle(color: boolean): Style {
  const c = new Chalk({ level: color ? 1 : 0 });
  const style: Style = {
    color,
    bold: (s) => c.bold(s),
    dim: (s) => c.dim(s),
    ok: (s) => c.green(s),
    warn: (s) => c.yellow(s),
    fail: (s) => c.red(s),
    accent: (s) => c.cyan(s),
    heading: (s) => c.bold.underline(s),
    verdict(v) {
      const text = `[${MARK[v]}]`;
      return v === 'ok' ? c.green(text) : v === 'warn' ? c.yellow(text) : v === 'fail' ? c.red.bold(text) : c.dim(text);
    },
    table(head, rows) {
      const t = new Table({
        head: head.map((h) => c.bold(h)),
        style: { head: [], border: [], compact: false },
        wordWrap: false,
      });
      for (const r of rows) t.push(r.map((v) => (v === null || v === undefined ? '' : String(v))));
      return t.toString();
    },
  };
  return style;
}
