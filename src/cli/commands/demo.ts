import { Option, type Command } from 'commander';
import { DIGEST_DLQ_STREAM, DIGEST_GROUP, DIGEST_STREAM } from '../../core/contract.js';
import { ExitCode } from '../../errors.js';
import { recentRuns } from '../../ops/runs.js';
import { DEMO_KEY_PREFIX, FRESH_USER, INCIDENT_DAY, INCIDENT_USER, seedDemoDatabase, seedDemoRedis } from '../../ops/demo.js';
import { closeRedis, connectRedis, describeRedis } from '../../redis/connect.js';
import type { CliHost } from '../command-list.js';
import { DEFAULT_REDIS_URL, commandLine, openDb, openOptionalRedis, shellQuote } from '../options.js';
import { act } from '../run.js';

interface DemoOptions {
  force?: boolean;
}

/** `host.run` runs each step's command line in this process, through the CLI's own entry. */
export function register(program: Command, host: CliHost): void {
  program
    .command('demo')
    .description('build the incident in the embedded database (or the one --database-url names) and Redis, then walk through diagnosing and repairing it')
    .addOption(new Option('--force', 'rebuild the demo tables even in a schema that already holds digest_history rows (drops them)'))
    .addHelpText(
      'after',
      `
Without --database-url / DATABASE_URL the demo uses the embedded database
(./.digest-doctor/db, --data-dir to move it) and leaves its state there, so you
can go on typing commands against it. A named database is refused when its
schema already holds digest_history rows, unless --force.
Redis: the demo's keys live under --key-prefix (default ${DEMO_KEY_PREFIX});
without a reachable Redis (REDIS_URL, or ${DEFAULT_REDIS_URL}) the Redis
steps are skipped, and mark-stale, which cannot check for a worker on a row,
runs with --include-live.`,
    )
    .action(
      act<DemoOptions>(async (ctx, o) => {
        const g = ctx.g;
        const started = performance.now();
        const say = (text: string) => ctx.print(ctx.style.heading(`\n# ${text}`));
        // The demo's own session keeps the embedded engine open between the steps (one start-up).
        const db = await openDb(g, { checkTable: false, applicationName: 'digest-doctor demo' });
        ctx.defer(() => db.close());
        say(`building the incident in ${db.target}, schema ${g.schema}`);
        const seeded = await seedDemoDatabase(db, { force: Boolean(o.force) });
        ctx.print(`${seeded.rows} digest_history rows: the incident of ${INCIDENT_DAY}, double clicks, rows stuck for days, a week of sent digests`);

        const prefix = g.keyPrefix ?? DEMO_KEY_PREFIX;
        const redis = await openOptionalRedis({ ...g, keyPrefix: prefix });
        const redisUrl = g.redisUrl ?? DEFAULT_REDIS_URL;
        let raw: Awaited<ReturnType<typeof connectRedis>> | undefined;
        if (redis.client) {
          const c = redis.client;
          ctx.defer(() => closeRedis(c));
          raw = await connectRedis({ url: redisUrl, cluster: g.redisCluster });
          const r = raw;
          ctx.defer(() => closeRedis(r));
        }
        const facts = redis.client ? await seedDemoRedis(redis.client, raw!, prefix, db) : null;
        if (facts) ctx.print(`Redis ${describeRedis(redisUrl)}, keys under ${prefix}: the digest stream and its group, duplicate events, a stray consumer, a poison entry, a DLQ in both shapes, a lock without TTL`);
        else ctx.print(`Redis skipped: ${redis.skipped}`);

        // Every step is the command a user would type, run in this process through the same entry.
        // the key prefix the demo chose goes where the program declares it, as in every other printed command
        const flags = facts && !g.keyPrefix ? inProgramOrder(program, [...g.cliFlags, '--key-prefix', prefix]) : [...g.cliFlags];
        const codes: Array<{ args: string; code: number }> = [];
        const step = async (given: string[], expect: number[]) => {
          // the demo is the person who confirms: its writes carry --yes, so a terminal never stops it at a prompt
          const args = given.includes('--apply') && !given.includes('--yes') ? [...given, '--yes'] : given;
          const line = commandLine([...flags, ...args]);
          ctx.print(ctx.style.accent(`\n$ ${line}`));
          const code = await host.run([...flags, ...args]);
          codes.push({ args: args.join(' '), code });
          if (!expect.includes(code)) throw new Error(`demo step "${line}" exited ${code}, expected ${expect.join(' or ')}`);
          ctx.print(ctx.style.dim(`(exit ${code})`));
        };
        const redisCli = async (args: string[], why: string, keyAt = 1) => {
          const full = args.map((a, i) => (i === keyAt ? prefix + a : a));
          // the reason on a line of its own: a comment after the command would be cut by the wrap and its
          // second line run as a command when the block is pasted
          ctx.print(ctx.style.dim(`\n# ${why}`));
          ctx.print(ctx.style.accent(`$ redis-cli -u ${shellQuote(describeRedisUrl(redisUrl))} ${full.map(shellQuote).join(' ')}`));
          const out = await raw!.call(full[0]!, ...full.slice(1));
          ctx.print(String(out));
        };

        say('1. What is wrong? (exit 1: findings)');
        await step(['inspect'], [1]);
        say(`2. The user of the incident, on ${INCIDENT_DAY}`);
        await step(['inspect', '--user', INCIDENT_USER, '--date', INCIDENT_DAY], [1]);
        say('3. Repair the duplicates: first the plan (a dry run writes nothing), then --apply');
        await step(['fix-duplicates'], [1]);
        await step(['fix-duplicates', '--apply'], [0]);
        say('4. Rows stuck in pending for more than a day are marked failed');
        // without Redis mark-stale cannot see a worker on a row and refuses to apply blind: the demo's rows have no worker, so it says so
        const blind = facts ? [] : ['--include-live'];
        if (!facts) ctx.print(ctx.style.dim('# no Redis: mark-stale cannot check whether a worker holds a row, so --apply needs --include-live (the demo has no workers)'));
        await step(['mark-stale', '--older-than', '1d', '--apply', ...blind], [0]);
        say('5. Install the guard that stops duplicates for good');
        await step(['migrate', '--apply'], [0]);
        await step(['migrate', 'status'], [0]);
        if (facts) {
          say('6. The streams: the stray consumer, the poison entry, the DLQ, the lock without TTL');
          await step(['streams'], [1]);
          say('   What the workers and an operator do about them');
          await redisCli(['XGROUP', 'DELCONSUMER', DIGEST_STREAM, DIGEST_GROUP, facts.strayConsumer], 'the stray consumer and the entry it held (its row was sent long ago)', 2);
          await redisCli(['XACK', DIGEST_STREAM, DIGEST_GROUP, facts.poisonEntry], 'the worker gives up on the poison entry (its row is failed: replay --failed retries it later)');
          await redisCli(['DEL', facts.staleLock], 'the lock the crashed bot never released');
          say('7. Replay the DLQ (both shapes), idempotently');
          await step(['replay', '--from-dlq'], [1]);
          await step(['replay', '--from-dlq', '--apply'], [0]);
          await redisCli(['XTRIM', DIGEST_DLQ_STREAM, 'MAXLEN', '0'], 'replayed: empty the DLQ');
        }
        say('8. A repair that was a mistake: user 13 clicked ten minutes ago and a worker is on it');
        await step(['mark-stale', '--user', FRESH_USER, '--older-than', '5m', '--apply', ...blind], [0]);
        await step(['runs', '--limit', '3'], [0]);
        const [last] = (await recentRuns(db, { limit: 1, command: 'mark-stale' })).runs;
        say('9. Undo it: the row is pending again, exactly as it was');
        await step(['undo', last!.id, '--apply'], [0]);
        if (g.databaseUrl) {
          say('10. CI smoke checks: everything green');
          await step(['check'], [0]);
        } else {
          say('10. CI smoke checks');
          ctx.print('check never runs on the embedded database (a CI job that lost its DATABASE_URL must fail, not pass on an empty one).');
          ctx.print('Here it runs on the same engine through the library; in CI: digest-doctor check --format github, with DATABASE_URL set.');
          const { runChecks } = await import('../../ops/check.js');
          const { renderCheckText } = await import('./check.js');
          const { result } = await runChecks({
            db,
            target: { database: db.target, schema: g.schema, redis: facts ? describeRedis(redisUrl) : null },
            redis: redis.client ? { client: redis.client } : { skipped: redis.skipped!, configured: false },
            keyPrefix: prefix,
            stuckAfterMs: 3_600_000,
            stuckAfterText: '1h',
            thresholds: {},
            skip: new Set(),
            strict: false,
            command: (a) => `${commandLine(flags)} ${a}`,
            redisCli: (a) => `redis-cli ${a}`,
          });
          ctx.print(renderCheckText(result));
          if (!result.summary.passed) throw new Error('demo: check is not green at the end');
        }
        ctx.print(ctx.style.heading(`\ndemo done in ${((performance.now() - started) / 1000).toFixed(1)} s; the database keeps its state: try ${commandLine([...flags, 'inspect'])}`));
        return ExitCode.OK;
      }),
    );
}

/**
 * Global flags (pasteableFlags' tokens: a flag, then its value unless boolean or joined with `=`)
 * sorted as `program` declares its options, which is the order pasteableFlags prints them in.
 */
export function inProgramOrder(program: Command, flags: readonly string[]): string[] {
  const units: string[][] = [];
  for (const f of flags) {
    if (f.startsWith('--') || !units.length) units.push([f]);
    else units[units.length - 1]!.push(f);
  }
  const rank = (unit: string[]) => {
    const i = program.options.findIndex((o) => o.long === unit[0]!.split('=')[0]);
    return i < 0 ? program.options.length : i;
  };
  return units
    .map((u, i) => ({ u, i }))
    .sort((a, b) => rank(a.u) - rank(b.u) || a.i - b.i)
    .flatMap(({ u }) => u);
}

function describeRedisUrl(url: string): string {
  try {
    const u = new URL(url.split(',')[0]!.trim());
    u.password = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return url;
  }
}
