// `check` (CI smoke checks), the pure part: the result shape and its four renderings. No I/O.
import * as z from 'zod';
import { FindingSchema, VerdictSchema } from './finding-schema.js';

export const CHECK_SCHEMA_VERSION = 1;

/** Every check `check` runs, in order; `--skip <name>` leaves one out. */
export const CHECK_NAMES = [
  'database',
  'table',
  'unique-index',
  'duplicates',
  'stuck',
  'redis',
  'exists',
  'group',
  'lag',
  'pending',
  'idle-consumers',
  'stray-consumers',
  'trimmed',
  'dangling',
  'poison',
  'dlq-empty',
  'stale-locks',
] as const;
export type CheckName = (typeof CHECK_NAMES)[number];

export const CheckVerdictSchema = VerdictSchema;
export type CheckVerdict = z.infer<typeof CheckVerdictSchema>;

/** A Finding (core/finding.ts) of one of CHECK_NAMES, about one subject. */
export const CheckItemSchema = FindingSchema.extend({
  check: z.enum(CHECK_NAMES),
  /** What it is about: the schema, a stream, a stream's group (`stream/group`); null: the whole run. */
  subject: z.string().nullable(),
  /** The exact command that fixes it, with this run's flags (null when ok, or no command can). */
  fix: z.string().nullable(),
});
export type CheckItem = z.infer<typeof CheckItemSchema>;

const Gauge = z.object({ labels: z.record(z.string(), z.string()), value: z.number() });

export const CheckMetricsSchema = z.object({
  duplicateGroups: z.number().int().nullable(),
  /** In-flight rows by age bucket (lt_1h, 1h_1d, 1d_7d, gt_7d). */
  inFlightByAge: z.record(z.string(), z.number().int()).nullable(),
  stuckRows: z.number().int().nullable(),
  pending: z.array(Gauge),
  lag: z.array(Gauge),
  dlqLength: z.array(Gauge),
});
export type CheckMetrics = z.infer<typeof CheckMetricsSchema>;

export const CheckResultSchema = z.object({
  schemaVersion: z.literal(CHECK_SCHEMA_VERSION),
  command: z.literal('check'),
  target: z.object({ database: z.string(), schema: z.string(), redis: z.string().nullable() }),
  strict: z.boolean(),
  skipped: z.array(z.string()),
  checks: z.array(CheckItemSchema),
  metrics: CheckMetricsSchema,
  summary: z.object({ ok: z.number().int(), warn: z.number().int(), fail: z.number().int(), passed: z.boolean() }),
});
export type CheckResult = z.infer<typeof CheckResultSchema>;

/** Counts the verdicts; `passed`: no fail (with `strict`, no warn either). */
export function summarize(checks: readonly CheckItem[], strict: boolean): CheckResult['summary'] {
  const n = (v: CheckVerdict) => checks.filter((c) => c.verdict === v).length;
  const fail = n('fail');
  const warn = n('warn');
  return { ok: n('ok'), warn, fail, passed: fail === 0 && (!strict || warn === 0) };
}

const label = (c: CheckItem): string => checkLabel(c);

/** The check and what it is about, as every text format names it: `duplicates (public)`. */
export const checkLabel = (c: CheckItem): string => (c.subject ? `${c.check} (${c.subject})` : c.check);

/** The last line of the text format: passed or FAILED, the counts, --strict and what was skipped. */
export function checkSummaryLine(r: CheckResult): string {
  const s = r.summary;
  return `${s.passed ? 'passed' : 'FAILED'}: ${s.ok} ok, ${s.warn} warn, ${s.fail} fail${r.strict ? ' (--strict: warnings fail)' : ''}${r.skipped.length ? `; skipped: ${r.skipped.join(', ')}` : ''}`;
}

/**
 * A workflow command's message, escaped as GitHub's runner unescapes it (actions/toolkit
 * command.ts, escapeData): % -> %25, \r -> %0D, \n -> %0A.
 */
export function escapeGithubData(s: string): string {
  return s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

/** A property value (title=...): escapeData plus : -> %3A and , -> %2C (escapeProperty). */
export function escapeGithubProperty(s: string): string {
  return escapeGithubData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
}

/** `::error` / `::warning` workflow commands, one per failing / warning check (ok checks print nothing). */
export function renderGithubAnnotations(r: CheckResult): string[] {
  return r.checks
    .filter((c) => c.verdict !== 'ok')
    .map((c) => {
      const level = c.verdict === 'fail' || r.strict ? 'error' : 'warning';
      return `::${level} title=${escapeGithubProperty(`digest-doctor check: ${label(c)}`)}::${escapeGithubData(`${c.message}${c.fix ? `\nfix: ${c.fix}` : ''}`)}`;
    });
}

const mdCell = (s: string) => s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');

/** The job summary ($GITHUB_STEP_SUMMARY): a Markdown table of every check. */
export function renderGithubSummary(r: CheckResult): string {
  const icon = { ok: '✅ ok', warn: '⚠️ warn', fail: '❌ fail' } as const;
  const s = r.summary;
  const out = [
    `## digest-doctor check: ${s.passed ? 'passed' : 'failed'}`,
    '',
    `${s.ok} ok, ${s.warn} warn, ${s.fail} fail on ${mdCell(r.target.database)} (schema \`${r.target.schema}\`)${r.target.redis ? ` and Redis ${mdCell(r.target.redis)}` : ''}${r.skipped.length ? `; skipped: ${r.skipped.join(', ')}` : ''}`,
    '',
    '| check | subject | verdict | message | fix |',
    '|---|---|---|---|---|',
    ...r.checks.map((c) => `| ${c.check} | ${mdCell(c.subject ?? '')} | ${icon[c.verdict]} | ${mdCell(c.message)} | ${c.fix ? `\`${mdCell(c.fix)}\`` : ''} |`),
    '',
  ];
  return out.join('\n');
}

/** A label value as the text formats require: backslash, double quote and line feed escaped. */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function sample(name: string, labels: Record<string, string>, value: number): string {
  if (!METRIC_NAME.test(name)) throw new Error(`bad metric name ${name}`);
  const ls = Object.entries(labels).map(([k, v]) => {
    if (!LABEL_NAME.test(k) || k.startsWith('__')) throw new Error(`bad label name ${k}`);
    return `${k}="${escapeLabelValue(v)}"`;
  });
  return `${name}${ls.length ? `{${ls.join(',')}}` : ''} ${Number.isFinite(value) ? String(value) : 'NaN'}`;
}

const VERDICT_VALUE: Record<CheckVerdict, number> = { ok: 0, warn: 1, fail: 2 };

/**
 * Gauges in the OpenMetrics text format (which the Prometheus text parser and node_exporter's
 * textfile collector also read): `# HELP` and `# TYPE` before each family, label values escaped,
 * `# EOF` last. Families with no sample are left out.
 */
export function renderOpenMetrics(r: CheckResult): string {
  const out: string[] = [];
  const family = (name: string, help: string, samples: Array<{ labels: Record<string, string>; value: number }>) => {
    if (!samples.length) return;
    out.push(`# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${name} gauge`);
    for (const s of samples) out.push(sample(name, s.labels, s.value));
  };
  const m = r.metrics;
  const schema = r.target.schema;
  family('digest_doctor_check_status', 'Verdict of each check: 0 ok, 1 warn, 2 fail.', r.checks.map((c) => ({ labels: { check: c.check, subject: c.subject ?? '' }, value: VERDICT_VALUE[c.verdict] })));
  family('digest_doctor_check_passed', '1 when no check failed (with --strict: none warned either).', [{ labels: {}, value: r.summary.passed ? 1 : 0 }]);
  family('digest_doctor_duplicate_groups', 'In-flight (user, day) groups holding more than one row.', m.duplicateGroups === null ? [] : [{ labels: { schema }, value: m.duplicateGroups }]);
  family('digest_doctor_inflight_rows', 'In-flight digest_history rows by age bucket.', m.inFlightByAge === null ? [] : Object.entries(m.inFlightByAge).map(([age, value]) => ({ labels: { schema, age }, value })));
  family('digest_doctor_stuck_rows', 'In-flight rows older than the stuck threshold.', m.stuckRows === null ? [] : [{ labels: { schema }, value: m.stuckRows }]);
  family('digest_doctor_stream_pending', 'Entries pending in a consumer group.', m.pending);
  family('digest_doctor_stream_lag', 'Entries not yet delivered to a consumer group (absent when Redis cannot tell).', m.lag);
  family('digest_doctor_dlq_length', 'Entries in a dead-letter stream.', m.dlqLength);
  out.push('# EOF');
  return out.join('\n') + '\n';
}
