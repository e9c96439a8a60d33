// A person confirms a write: on a terminal (stdin and stdout both TTYs) an applying command shows
// what it will change and where, and asks y/N before writing; --yes skips the question. Without a
// terminal (scripts, CI, pipes) it never asks: --apply alone is the consent.
import { createInterface } from 'node:readline/promises';
import { redactText } from '../core/redact.js';
import { DoctorError } from '../errors.js';
import type { GlobalOptions } from './options.js';
import { writeErr } from './stderr.js';

/** Whether an applying command run with these flags would ask (and so should plan first). */
export function willAsk(yes: boolean | undefined, stdin: { isTTY?: boolean } = process.stdin, stdout: { isTTY?: boolean } = process.stdout): boolean {
  return !yes && Boolean(stdin.isTTY) && Boolean(stdout.isTTY);
}

/** `user@host:port/db`, never a password (only URL parts without credentials are used). */
export function describeWriteTarget(databaseUrl: string | undefined): string {
  if (!databaseUrl) return 'no database';
  try {
    const u = new URL(databaseUrl);
    const user = u.username ? `${decodeURIComponent(u.username)}@` : '';
    return `${user}${u.hostname || 'localhost'}:${u.port || '5432'}${u.pathname || '/'}`;
  } catch {
    return redactText(databaseUrl);
  }
}

/**
 * On a terminal: prints `summary` (what will change), the target database and schemas, to stderr
 * (fitted to its width),
 * and asks "Apply? [y/N]"; resolves when the answer is y or yes, throws REFUSED (exit 4, nothing
 * written) on anything else, end of input included. Does nothing when willAsk is false.
 */
export async function confirmWrite(g: GlobalOptions, yes: boolean | undefined, command: string, summary: readonly string[], extraTarget?: string): Promise<void> {
  if (!willAsk(yes)) return;
  const lines = [
    `${command} will write:`,
    ...summary.map((l) => `  ${l}`),
    `  database: ${g.databaseUrl ? describeWriteTarget(g.databaseUrl) : `the embedded database in ${g.dataDir}`}, schema ${g.schema} (state schema ${g.stateSchema})`,
    ...(extraTarget ? [`  ${extraTarget}`] : []),
  ];
  writeErr(redactText(lines.join('\n'), g.secrets));
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: false });
  let answer: string;
  try {
    process.stderr.write('Apply these changes? [y/N] ');
    answer = await new Promise<string>((resolve) => {
      let answered = false;
      rl.once('line', (line) => {
        answered = true;
        resolve(line);
      });
      // end of input (Ctrl-D): the terminal echoed no newline, so the refusal would run on from the prompt
      rl.once('close', () => {
        if (answered) return;
        process.stderr.write('\n');
        resolve('');
      });
    });
  } finally {
    rl.close();
  }
  if (!/^\s*y(es)?\s*$/i.test(answer)) {
    throw new DoctorError('REFUSED', `not confirmed: nothing was written (answer y at the prompt, or pass --yes to skip it)`);
  }
}
