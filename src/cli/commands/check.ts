import { appendFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { CHECK_NAMES, CheckResultSchema, checkLabel, checkSummaryLine, renderGithubAnnotations, renderGithubSummary, renderOpenMetrics, type CheckName, type CheckResult } from '../../core/check.js';
import { parseDuration, parsePositiveInt } from '../../core/validate.js';
import { DoctorError, ExitCode, badInput } from '../../errors.js';
import { runChecks } from '../../ops/check.js';
import { describeTarget } from '../../postgres/db.js';
import { closeRedis, describeRedis } from '../../redis/connect.js';
import { DEFAULT_REDIS_URL, commandLine, openDb, openOptionalRedis, openRedis, redisCliCommand } from '../options.js';
import { renderFindings } from '../findings.js';
import { printJson } from '../output.js';
import { makeStyle } from '../render.js';
import { act } from '../run.js';

interface CheckOptions {
  format: string;
  strict?: boolean;
  skip: string[];
  stuckAfter: string;
  maxLag: string;
  maxPending: string;
  idle: string;
  maxDeliveries: string;
}

const collect = (v: string, prev: string[] = []) => [...prev, ...v.split(',').map((s) => s.trim()).filter(Boolean)];

export function register(program: Command): void {
  program
    .command('check')
    .description('CI smoke checks: database, table, unique index, duplicates, stuck rows, streams, DLQ, stale locks; every check, then one verdict')
    .addOption(new Option('--format <format>', 'text, json, github (annotations and $GITHUB_STEP_SUMMARY) or openmetrics').choices(['text', 'json', 'github', 'openmetrics']).env('DIGEST_DOCTOR_CHECK_FORMAT').default('text'))
    .addOption(new Option('--strict', 'warnings fail too').env('DIGEST_DOCTOR_CHECK_STRICT'))
    .addOption(new Option('--skip <check>', `leave a check out (repeatable, or comma-separated): ${CHECK_NAMES.join(', ')}`).argParser(collect).env('DIGEST_DOCTOR_CHECK_SKIP').default([]))
    .addOption(new Option('--stuck-after <duration>', 'an in-flight row older than this fails').env('DIGEST_DOCTOR_STUCK_AFTER').default('1h'))
    .addOption(new Option('--max-lag <n>', 'group lag above this warns').env('DIGEST_DOCTOR_MAX_LAG').default('1000'))
    .addOption(new Option('--max-pending <n>', 'pending entries in a group above this warn').env('DIGEST_DOCTOR_MAX_PENDING').default('100'))
    .addOption(new Option('--idle <duration>', 'a consumer idle this long holding entries warns').env('DIGEST_DOCTOR_IDLE').default('10m'))
    .addOption(new Option('--max-deliveries <n>', 'an entry delivered this many times is poison').env('DIGEST_DOCTOR_MAX_DELIVERIES').default('3'))
    .addHelpText(
      'after',
      `
Never runs on the embedded database: with no --database-url / DATABASE_URL (or
databaseUrl in the config file) it exits 2. Exit: 0 nothing failed (--strict:
nothing warned either), 1 a check failed, 2 bad input, 3 the database or a
configured Redis is unreachable or refused the login, 4 it is busy or refused
us (out of connections, no CONNECT privilege): the fault's own exit code.`,
    )
    .action(
      act<CheckOptions>(async (ctx, o) => {
        const g = ctx.g;
        // A skip list from the environment arrives as one string.
        const skipList = (Array.isArray(o.skip) ? o.skip : collect(String(o.skip))).flatMap((s) => collect(s));
        for (const s of skipList) if (!(CHECK_NAMES as readonly string[]).includes(s)) throw badInput(`--skip ${s}: no such check; the checks are ${CHECK_NAMES.join(', ')}`);
        const format = g.json ? 'json' : o.format;
        if (!(['text', 'json', 'github', 'openmetrics'] as const).includes(format as never)) throw badInput(`--format ${format}: expected text, json, github or openmetrics`);
        const stuckAfterMs = parseDuration(o.stuckAfter, '--stuck-after');
        const thresholds = {
          maxLag: parsePositiveInt(o.maxLag, '--max-lag'),
          maxPending: parsePositiveInt(o.maxPending, '--max-pending'),
          idleMs: parseDuration(o.idle, '--idle'),
          maxDeliveries: parsePositiveInt(o.maxDeliveries, '--max-deliveries'),
        };
        if (!g.databaseUrl) {
          throw badInput('check needs a database: pass --database-url or set DATABASE_URL (it never runs on the embedded database, so a CI job that lost its DATABASE_URL fails here instead of passing on an empty one)');
        }
        const dbOrError = await openDb(g, { checkTable: false, embedded: false, applicationName: 'digest-doctor check' }).catch((error: unknown) => ({ error }));
        if (!('error' in dbOrError)) ctx.defer(() => dbOrError.close());

        let redis: { client: import('../../redis/connect.js').RedisClient } | { skipped: string; configured: boolean };
        const redisUrl = g.redisUrl ?? DEFAULT_REDIS_URL;
        if (g.redisUrl) {
          redis = await openRedis(g).then(
            (client) => ({ client }),
            (err: unknown) => ({ skipped: `Redis at ${describeRedis(redisUrl)} unreachable: ${(err as Error).message}`, configured: true, exitCode: err instanceof DoctorError ? err.exitCode : ExitCode.INTERNAL }),
          );
        } else {
          const r = await openOptionalRedis(g);
          redis = r.client ? { client: r.client } : { skipped: r.skipped!, configured: false };
        }
        if ('client' in redis) {
          const c = redis.client;
          ctx.defer(() => closeRedis(c));
        }
        const { result, faultExit } = await runChecks({
          db: dbOrError,
          target: { database: describeTarget(g.databaseUrl), schema: g.schema, redis: 'client' in redis || g.redisUrl ? describeRedis(redisUrl) : null },
          redis,
          keyPrefix: g.keyPrefix,
          stuckAfterMs,
          stuckAfterText: o.stuckAfter,
          thresholds,
          skip: new Set(skipList as CheckName[]),
          strict: Boolean(o.strict),
          command: (args) => [commandLine(g.cliFlags), args].filter(Boolean).join(' '),
          redisCli: (args) => redisCliCommand(g, args),
        });
        if (format === 'json') printJson(CheckResultSchema, result);
        else if (format === 'openmetrics') process.stdout.write(renderOpenMetrics(result));
        else {
          ctx.print(renderCheckText(result));
          if (format === 'github') {
            for (const line of renderGithubAnnotations(result)) ctx.print(line);
            const summaryFile = process.env.GITHUB_STEP_SUMMARY;
            if (summaryFile) appendFileSync(summaryFile, renderGithubSummary(result) + '\n');
          }
        }
        if (faultExit !== null) return faultExit;
        return result.summary.passed ? ExitCode.OK : ExitCode.FINDINGS;
      }),
    );
}

/** check's text format: one line per check (the findings renderer's line layout, no colour: a CI log), then the summary line. */
export function renderCheckText(r: CheckResult): string {
  return [renderFindings(r.checks, makeStyle(false), { layout: 'line', label: checkLabel }), checkSummaryLine(r)].filter(Boolean).join('\n');
}
