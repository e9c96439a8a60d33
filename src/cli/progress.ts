// Progress for long work: on stderr, only when stderr is a terminal (silent in CI and pipes).
import { progressLine } from '../core/text.js';

export interface Progress {
  update(text: string): void;
  /**
   * `what`: done of total units, the percentage, the rate since the first call (of the units done
   * after it) and the time left
   * ("replay: 2,000 of 8,000 events (25%), 950/s, about 6s left"); total undefined: done and rate.
   */
  count(what: string, done: number, total: number | undefined, unit: string): void;
  done(text?: string): void;
}

export function createProgress(enabled = Boolean(process.stderr.isTTY) && !process.env.CI): Progress {
  if (!enabled) return { update: () => undefined, count: () => undefined, done: () => undefined };
  let last = 0;
  let started: number | undefined;
  // units done at the first report: the clock starts there, so they are not in the rate (the first
  // batch reported at once would read as millions per second and "about 0s left")
  let doneAtStart = 0;
  // whether a progress line is on the terminal now: done() clears only what update() drew
  let drawn = false;
  return {
    count(what, done, total, unit) {
      if (started === undefined) {
        started = performance.now();
        doneAtStart = done;
      }
      this.update(`${what}: ${progressLine(done, total, unit, performance.now() - started, doneAtStart)}`);
    },
    update(text) {
      const now = Date.now();
      if (now - last < 100) return;
      last = now;
      // one terminal row: a wrapped line could not be cleared by the next update
      const cols = process.stderr.columns || 80;
      process.stderr.write(`${drawn ? '\r\x1b[2K' : ''}${text.length >= cols ? text.slice(0, cols - 2) + '…' : text}`);
      drawn = true;
    },
    done(text) {
      const clear = drawn ? '\r\x1b[2K' : '';
      drawn = false;
      last = 0;
      if (clear || text) process.stderr.write(`${clear}${text ? text + '\n' : ''}`);
    },
  };
}
