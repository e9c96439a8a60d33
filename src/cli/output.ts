// --json documents: checked against the exported zod schema before they are printed. No zod is loaded
// here (types only): a command's schema module is imported when --json is given.
import type * as z from 'zod';
import { withGlobalFlagsDeep } from '../core/hints.js';
import { knownSecrets, redactDeep } from '../core/redact.js';
import { DoctorError } from '../errors.js';

export const SCHEMA_VERSION = 1 as const;

/** This run's pasteable global flags and the command names: advice in documents carries them (src/core/hints.ts). */
const hints: { flags: readonly string[]; commands: readonly string[] } = { flags: [], commands: [] };
export function setHintFlags(flags: readonly string[], commands: readonly string[]): void {
  hints.flags = flags;
  hints.commands = commands;
}
/** `value` with this run's flags in every printed digest-doctor command. */
export function withHints<T>(value: T): T {
  return withGlobalFlagsDeep(value, hints.flags, hints.commands);
}


/** Validates `doc` with `schema` and writes it to stdout. A mismatch is our bug: exit 70. */
export function printJson<S extends z.ZodType>(schema: S, doc: z.input<S>): void {
  const parsed = schema.safeParse(doc);
  if (!parsed.success) {
    throw new DoctorError('INTERNAL', `--json output does not match its schema: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  // no secret in any output: every string is masked (URL passwords, the configured URLs' passwords)
  process.stdout.write(JSON.stringify(redactDeep(withHints(parsed.data), knownSecrets()), null, 2) + '\n');
}
