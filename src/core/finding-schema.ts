// The zod schemas of a Finding (src/core/finding.ts): a module of their own, so that code needing only
// the types and the helpers builds no schema (the CLI loads this for --json and parsing only).
import * as z from 'zod';

export const VerdictSchema = z.enum(['ok', 'warn', 'fail']);

export const FindingSchema = z.object({
  verdict: VerdictSchema,
  /** Which check: a short stable name (e.g. `duplicates`, `stuck`, `lag`); tests and CI key on it. */
  check: z.string(),
  /** One line: what was seen. */
  message: z.string(),
  /** The command or step that fixes it, runnable as printed where it is a command; null when none (or ok). */
  fix: z.string().nullable(),
  /** The ids the finding is about (entry ids, row ids, keys, consumers), capped by the producer. */
  items: z.array(z.string()),
});
