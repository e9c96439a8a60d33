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

/**
 * Where a key was looked for and where it is instead, for the missing-stream hints of inspect,
 * streams, mark-stale and check: `here` is this run's key prefix (undefined or '' for none),
 * `found` the other prefixes holding it ('' for the bare key). E.g. "under key prefix 'a:'" and
 * "it exists under key prefixes 'b:', no prefix".
 */
export function keyPrefixPhrases(here: string | undefined, found: readonly string[]): { here: string; elsewhere: string } {
  const list = found.map((p) => (p ? `'${p}'` : 'no prefix')).join(', ');
  return {
    here: here ? `under key prefix '${here}'` : 'without a key prefix (no --key-prefix given)',
    elsewhere: found.length ? `it exists under ${found.length === 1 ? 'key prefix' : 'key prefixes'} ${list}` : '',
  };
}

/**
 * With several candidate prefixes, the words that make the rerun a choice (the printed command
 * carries the first listed, which may be another deployment's); '' with one candidate.
 */
export function rerunWithPrefixLead(found: readonly string[]): string {
  return found.length > 1 ? `rerun with your deployment's prefix (the command carries the first listed; use another if that is not yours)` : '';
}
