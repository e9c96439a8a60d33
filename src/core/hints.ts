// Advice that pastes: every `digest-doctor <command>` the tool prints gets the global flags this run
// was given (schema, state schema, key prefix, URLs without password), so it targets what this run did.
// Pure; applied once where output leaves the process (src/cli/run.ts, src/cli/output.ts).
import { shellQuote } from './validate.js';

/**
 * `text` with `flags` (already pasteable: no password) inserted after each `digest-doctor` that is
 * followed by one of `commands` (so prose like "another digest-doctor migrate holds the lock" and
 * commands that already carry flags are left alone). No flags: `text` unchanged.
 */
export function withGlobalFlags(text: string, flags: readonly string[], commands: readonly string[]): string {
  if (!flags.length || !text.includes('digest-doctor ')) return text;
  const names = commands.map((c) => c.replace(/[-]/g, '\\-')).join('|');
  const re = new RegExp(`(^|[^\\w-])(another |the next )?digest-doctor (?=(?:${names})(?:\\s|$|[\`,;)'"]))`, 'g');
  const inserted = `digest-doctor ${flags.map(shellQuote).join(' ')} `;
  return text.replace(re, (m, lead: string, prose: string | undefined) => (prose ? m : `${lead}${inserted}`));
}

/** withGlobalFlags over every string of a JSON value (for --json documents). */
export function withGlobalFlagsDeep<T>(value: T, flags: readonly string[], commands: readonly string[]): T {
  if (!flags.length) return value;
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return withGlobalFlags(v, flags, commands);
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return walk(value) as T;
}
