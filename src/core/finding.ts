// One shape for "what is wrong, and what to do about it", shared by inspect, migrate (its preflight),
// streams and check: a verdict, the check that produced it, one line of message, the command or step
// that fixes it, and the ids it is about. Pure; rendered in one place (src/cli/findings.ts).
import type * as z from 'zod';
import type { FindingSchema, VerdictSchema } from './finding-schema.js';

/** ok: the check passed; warn: worth a look (a finding unless told otherwise); fail: something is wrong. */
export type FindingVerdict = z.infer<typeof VerdictSchema>;
/** What was seen, by which check, and what fixes it: FindingSchema (./finding-schema.ts) describes the fields. */
export type Finding = z.infer<typeof FindingSchema>;

/** A finding; `fix` and `items` default to none. */
export function finding(check: string, verdict: FindingVerdict, message: string, fix: string | null = null, items: readonly string[] = []): Finding {
  return { verdict, check, message, fix, items: [...items] };
}

/**
 * Findings inside one line of prose (a refusal, an error message): `check: message (fix: ...)`,
 * joined by `; `. The presenter's layouts of findings are src/cli/findings.ts.
 */
export function findingsInline(findings: readonly Finding[]): string {
  return findings.map((f) => `${f.check}: ${f.message}${f.fix ? ` (fix: ${f.fix})` : ''}`).join('; ');
}

/** True when any finding is a warn or a fail: the command's exit code is then 1 (findings). */
export function hasProblems(findings: ReadonlyArray<Pick<Finding, 'verdict'>>): boolean {
  return findings.some((f) => f.verdict !== 'ok');
}

/** Counts per verdict. */
export function countVerdicts(findings: ReadonlyArray<Pick<Finding, 'verdict'>>): Record<FindingVerdict, number> {
  const n = { ok: 0, warn: 0, fail: 0 };
  for (const f of findings) n[f.verdict]++;
  return n;
}
