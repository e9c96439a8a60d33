// Messages on stderr (notices, the confirmation, errors) fit the terminal they are shown on; in a log
// or a pipe each message stays one line, as written. Light on purpose: main.ts imports it for
// commander's own messages, and --help must not load the table libraries.
import { fitLines } from '../core/layout.js';

/** Columns a message on `stream` must fit: a terminal's width; not a terminal: Infinity (one line per message). */
export function stderrWidth(stream: { isTTY?: boolean; columns?: number } = process.stderr): number {
  return stream.isTTY && stream.columns && stream.columns > 0 ? stream.columns : Infinity;
}

/** `text` fitted to stderrWidth (see fitLines in src/core/layout.ts: a command split across lines still pastes). */
export function fitErr(text: string): string {
  return fitLines(text, stderrWidth());
}

/** Writes `text` and a newline to stderr, fitted to the terminal. */
export function writeErr(text: string): void {
  process.stderr.write(fitErr(text) + '\n');
}
