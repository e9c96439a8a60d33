// The commands the CLI printed as advice, as argv to run them back through the CLI.
import { COMMANDS } from '../../src/cli/commands/index.js';

const BOOLEAN_FLAGS = new Set(['--apply', '--force', '--yes', '--scan', '--from-dlq', '--failed', '--include-live', '--down', '--discover', '--wide', '--json', '--redis-cluster', '--strict', '--no-color']);

/** Every `digest-doctor ...` command in `text` (continuation lines joined), up to the end of its clause. */
export function printedCommands(text: string): string[][] {
  const joined = text.replace(/ \\\n\s*/g, ' ');
  const out: string[][] = [];
  for (const m of joined.matchAll(/digest-doctor ((?:[^\s,;`)]+ ?)+)/g)) {
    const words = m[1]!.trim().split(' ').map((w) => w.replace(/^'(.*)'$/, '$1'));
    const at = words.findIndex((w) => w in COMMANDS);
    if (at < 0) continue;
    // the command ends where the prose resumes: a bare word that is no flag's value, run id or subcommand
    let end = at + 1;
    while (end < words.length) {
      const w = words[end]!;
      const prev = words[end - 1]!;
      const isValue = prev.startsWith('--') && !BOOLEAN_FLAGS.has(prev) && !prev.includes('=');
      if (!(w.startsWith('-') || isValue || /^[0-9a-f-]{36}$/.test(w) || (w === 'status' && prev === 'migrate'))) break;
      end++;
    }
    out.push(words.slice(0, end));
  }
  return out;
}
