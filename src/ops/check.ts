// `check` (CI smoke checks): every check runs, then one verdict. It reuses what the other commands
// run (inspectSummary, migrateStatus and the upsert's arbiters, streamsReport) and only maps their
// results to ok / warn / fail lines, each with the command that fixes it.
import { CHECK_SCHEMA_VERSION, CheckResultSchema, summarize, type CheckItem, type CheckMetrics, type CheckName, type CheckResult } from '../core/check.js';
import { DIGEST_STREAM, UNIQUE_INDEX_NAME, isDlqStream } from '../core/contract.js';
import { keyPrefixPhrases, rerunWithPrefixLead } from '../core/hints.js';
import { shellQuote } from '../core/validate.js';
import { streamKeyPrefixes } from '../redis/stream-info.js';
import { AGE_BUCKETS } from '../core/duplicates.js';
import type { HealthThresholds } from '../core/stream-health.js';
import { formatCount, plural } from '../core/text.js';
import { DoctorError, ExitCode, type ExitCodeValue } from '../errors.js';
import type { Db } from '../postgres/db.js';
import { upsertArbiters } from '../postgres/migrator.js';
import { assertDigestTable } from '../postgres/table.js';
import type { RedisClient } from '../redis/connect.js';
import { inspectSummary } from './inspect.js';
import { migrateStatus } from './migrate.js';
import { digestStreamAbsent } from './repair-live.js';
import { streamsReport } from './streams.js';

export { CheckResultSchema, type CheckResult };

export interface CheckInput {
  /** An open session, or the error opening it gave (UNREACHABLE, AUTH_FAILED...). */
  db: Db | { error: unknown };
  target: { database: string; schema: string; redis: string | null };
  /**
   * A client, or why Redis is left out; `configured`: a URL was given, so unreachable fails, and
   * `exitCode` is the fault's (3 unreachable or refused login, 2 a database index it lacks...).
   */
  redis: { client: RedisClient } | { skipped: string; configured: boolean; exitCode?: ExitCodeValue };
  keyPrefix?: string;
  stuckAfterMs: number;
  /** As the user wrote it (for the printed mark-stale command). */
  stuckAfterText: string;
  thresholds: Partial<HealthThresholds>;
  skip: ReadonlySet<CheckName>;
  strict: boolean;
  /** `digest-doctor <this run's global flags> <args>`. */
  command(args: string): string;
  /** `redis-cli <this run's connection flags> <args>`. */
  redisCli(args: string): string;
}

const AGE_LABELS: Record<(typeof AGE_BUCKETS)[number], string> = { '< 1 h': 'lt_1h', '1 h - 1 d': '1h_1d', '1 - 7 d': '1d_7d', '> 7 d': 'gt_7d' };

const messageOf = (err: unknown) => (err as Error)?.message ?? String(err);

/**
 * Runs every check not in `skip` and returns the result (CheckResultSchema). Never throws for a
 * finding: a database or configured Redis it could not use is a `fail` line, and `faultExit` the
 * exit code of that fault (README "Exit codes": 3 unreachable or refused login, 4 busy or refused,
 * 2 bad input), for the caller to exit with instead of 1; null when both could be used.
 */
export async function runChecks(input: CheckInput): Promise<{ result: CheckResult; faultExit: ExitCodeValue | null }> {
  const checks: CheckItem[] = [];
  const add = (c: Omit<CheckItem, 'items'> & { items?: string[] }) => {
    if (!input.skip.has(c.check)) checks.push({ ...c, items: c.items ?? [] });
  };
  const metrics: CheckMetrics = { duplicateGroups: null, inFlightByAge: null, stuckRows: null, pending: [], lag: [], dlqLength: [] };
  const schema = input.target.schema;
  let faultExit: ExitCodeValue | null = null;

  // ---- Postgres
  if ('error' in input.db) {
    const e = input.db.error;
    // an error no fault describes is a bug of ours: its exit code says so
    faultExit = e instanceof DoctorError ? e.exitCode : ExitCode.INTERNAL;
    add({ check: 'database', subject: input.target.database, verdict: 'fail', message: `not reachable: ${messageOf(e)}`, fix: null });
  } else {
    const db = input.db;
    add({ check: 'database', subject: input.target.database, verdict: 'ok', message: `reachable (${db.engine})`, fix: null });
    let tableOk = true;
    try {
      await assertDigestTable(db);
      add({ check: 'table', subject: schema, verdict: 'ok', message: 'digest_history has every column of the contract', fix: null });
    } catch (err) {
      tableOk = false;
      add({ check: 'table', subject: schema, verdict: 'fail', message: messageOf(err), fix: null });
    }
    if (tableOk) {
      const summary = await inspectSummary(db, 'client' in input.redis ? { client: input.redis.client } : { skipped: input.redis.skipped }, { limit: 10, stuckAfterMs: input.stuckAfterMs });
      metrics.duplicateGroups = summary.duplicates.totalGroups;
      metrics.inFlightByAge = Object.fromEntries(AGE_BUCKETS.map((b) => [AGE_LABELS[b], summary.inFlightByAge[b]]));
      metrics.stuckRows = summary.stuck.count;
      const dup = summary.duplicates;

      if (!input.skip.has('unique-index')) {
        const status = await migrateStatus(db);
        const m = status.migrations.find((x) => x.index.name === UNIQUE_INDEX_NAME);
        const repair = dup.totalGroups ? `${input.command('fix-duplicates --apply')} && ` : '';
        const fix = `${repair}${input.command('migrate --apply')}`;
        if (!m || !m.index.exists) add({ check: 'unique-index', subject: schema, verdict: 'fail', message: `${UNIQUE_INDEX_NAME} is missing: nothing stops a second in-flight row per (user, day)`, fix });
        else if (!(m.index.valid && m.index.ready)) add({ check: 'unique-index', subject: schema, verdict: 'fail', message: `${UNIQUE_INDEX_NAME} is INVALID (a failed build left it)`, fix });
        else if (m.index.matches === false) add({ check: 'unique-index', subject: schema, verdict: 'fail', message: `${UNIQUE_INDEX_NAME} differs from the migration: ${m.index.differences.join('; ')}`, fix: null });
        else {
          const arbiters = await upsertArbiters(db);
          if (!arbiters.includes(UNIQUE_INDEX_NAME)) add({ check: 'unique-index', subject: schema, verdict: 'fail', message: `the upsert's arbiters are [${arbiters.join(', ')}], not ${UNIQUE_INDEX_NAME}`, fix: null });
          else add({ check: 'unique-index', subject: schema, verdict: m.state === 'drift' ? 'warn' : 'ok', message: m.state === 'drift' ? `valid and the upsert's arbiter, but: ${m.problems.join('; ')}` : `valid and chosen as the upsert's arbiter`, fix: m.state === 'drift' ? input.command('migrate --apply') : null });
        }
      }
      add(
        dup.totalGroups
          ? { check: 'duplicates', subject: schema, verdict: 'fail', message: `${plural(dup.totalGroups, '(user, day) group')} ${dup.totalGroups === 1 ? 'holds' : 'hold'} ${plural(dup.totalRows, 'in-flight row')} (${formatCount(dup.extraRows)} extra)`, fix: input.command('fix-duplicates --apply') }
          : { check: 'duplicates', subject: schema, verdict: 'ok', message: 'no (user, day) holds two in-flight rows', fix: null },
      );
      if (summary.stuck.count) {
        // mark-stale --apply refuses to write blind (no Redis, or no digest stream under this prefix, to
        // tell which rows a worker holds): then the step to print is its dry run, which says what --apply needs
        const liveCheck = 'client' in input.redis && !(await digestStreamAbsent(input.redis.client).catch(() => true));
        const message = `${plural(summary.stuck.count, 'in-flight row')} older than ${input.stuckAfterText} (oldest created ${summary.stuck.oldestCreatedAt})`;
        const blind = liveCheck ? '' : "; with no digest stream to ask, which of them a worker holds is unknown: mark-stale's dry run says what --apply needs";
        add({ check: 'stuck', subject: schema, verdict: 'fail', message: message + blind, fix: input.command(`mark-stale --older-than ${input.stuckAfterText}${liveCheck ? ' --apply' : ''}`) });
      } else add({ check: 'stuck', subject: schema, verdict: 'ok', message: `no in-flight row older than ${input.stuckAfterText}`, fix: null });
      if ('client' in input.redis && !summary.locks.skipped) {
        const stale = summary.locks.stale;
        add(
          stale.length
            ? { check: 'stale-locks', subject: input.target.redis, verdict: 'fail', message: `${plural(stale.length, 'stale lock')}: ${stale.map((l) => `${l.key} (${l.reason})`).join(', ')}`, fix: input.redisCli(`DEL ${stale.map((l) => (input.keyPrefix ?? '') + l.key).join(' ')}`) }
            : { check: 'stale-locks', subject: input.target.redis, verdict: 'ok', message: 'no digest:lock:* without a TTL or with more TTL than it allows', fix: null },
        );
      }
    }
  }

  // ---- Redis
  if (!('client' in input.redis)) {
    if (input.redis.configured) faultExit ??= input.redis.exitCode ?? ExitCode.UNREACHABLE;
    add({ check: 'redis', subject: input.target.redis, verdict: input.redis.configured ? 'fail' : 'warn', message: `stream checks skipped: ${input.redis.skipped}`, fix: null });
  } else {
    add({ check: 'redis', subject: input.target.redis, verdict: 'ok', message: 'reachable', fix: null });
    const report = await streamsReport(input.redis.client, undefined, { streams: [], discover: true, keyPrefix: input.keyPrefix, thresholds: input.thresholds });
    for (const s of report.streams) {
      for (const g of s.groups) {
        metrics.pending.push({ labels: { stream: s.key, group: g.name }, value: g.pending });
        if (g.lag !== null) metrics.lag.push({ labels: { stream: s.key, group: g.name }, value: g.lag });
      }
      if (isDlqStream(s.key)) metrics.dlqLength.push({ labels: { stream: s.key }, value: s.info?.length ?? 0 });
    }
    for (const f of report.findings) {
      const name = f.check as CheckName;
      const subject = f.group ? `${f.stream}/${f.group}` : f.stream;
      const full = (input.keyPrefix ?? '') + f.stream;
      let fix: string | null = null;
      let message = f.message;
      if (f.verdict !== 'ok') {
        // a DLQ that holds entries is replayed; a missing one (warned about beside a missing digest stream) is not
        if (name === 'dlq-empty' && report.streams.some((s) => s.key === f.stream && s.state === 'ok')) fix = input.command(`replay --from-dlq --apply`);
        // a missing group is created as the worker creates it (README, "What trimmed can know"): from 0,
        // so the entries published while no group read them are delivered, not skipped ($)
        else if (name === 'group' && f.group) fix = input.redisCli(`XGROUP CREATE ${full} ${f.group} 0 MKSTREAM`);
        else if (name === 'exists' && f.stream === DIGEST_STREAM && f.verdict === 'warn') {
          // not where this run looks: under a key prefix it was not given (the last --key-prefix wins)
          const prefixes = (await streamKeyPrefixes(input.redis.client, DIGEST_STREAM)).filter((p) => p !== (input.keyPrefix ?? ''));
          if (prefixes.length) {
            const words = keyPrefixPhrases(input.keyPrefix, prefixes);
            const lead = rerunWithPrefixLead(prefixes);
            message = `${f.message} ${words.here}; ${words.elsewhere}${lead ? `; ${lead}` : ''}`;
            fix = input.command(`--key-prefix ${shellQuote(prefixes[0]!)} check`);
          }
        }
      }
      add({ check: name, subject, verdict: f.verdict, message: !fix && f.fix ? `${message} (${f.fix})` : message, fix, items: f.items });
    }
  }

  const result: CheckResult = {
    schemaVersion: CHECK_SCHEMA_VERSION,
    command: 'check',
    target: input.target,
    strict: input.strict,
    skipped: [...input.skip],
    checks,
    metrics,
    summary: summarize(checks, input.strict),
  };
  return { result: CheckResultSchema.parse(result), faultExit };
}
