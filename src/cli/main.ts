// Commander wiring: global options, exit codes, and the command list. Commands live in ./commands.
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { DEFAULT_TIME_ZONE } from '../core/contract.js';
import { redactText, secretsOf } from '../core/redact.js';
import { ExitCode } from '../errors.js';
import { COMMANDS, registerCommands } from './commands/index.js';
import { applyConfig } from './config.js';

export const VERSION: string = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;

export const EXIT_CODE_HELP = `
Exit codes:
  0   nothing wrong (or the requested change was applied)
  1   findings: problems found, or a check failed
  2   usage or bad input (nothing was written)
  3   a database or Redis is unreachable or refused us
  4   refused for safety, or busy (another run holds the lock)
  70  internal error (set DEBUG=1 for the stack trace)
  130 interrupted (Ctrl-C), after cleaning up

Writes happen only with --apply; without it every command is a dry run.`;

/** The program with the commands `args` (argv after node and the script) needs registered. */
export async function buildProgram(args: readonly string[] = []): Promise<Command> {
  const program = new Command();
  program
    .name('digest-doctor')
    .description('Diagnose and repair the daily-digest pipeline: digest_history duplicates and stuck rows, Redis stream health, idempotent replay.')
    .version(VERSION, '-V, --version')
    .addOption(new Option('--database-url <url>', 'Postgres URL (a +asyncpg style driver suffix is stripped)').env('DATABASE_URL'))
    .addOption(new Option('--schema <name>', "schema holding the service's digest_history").env('DIGEST_DOCTOR_SCHEMA').default('public'))
    .addOption(new Option('--state-schema <name>', "the tool's own schema (migration ledger, audit)").env('DIGEST_DOCTOR_STATE_SCHEMA').default('digest_doctor'))
    .addOption(new Option('--redis-url <url>', 'Redis URL; a comma-separated list of nodes means a cluster').env('REDIS_URL'))
    .addOption(new Option('--redis-cluster', 'use the Redis Cluster client even for one seed URL').env('DIGEST_DOCTOR_REDIS_CLUSTER'))
    .addOption(new Option('--key-prefix <prefix>', 'prefix prepended to every Redis key (ioredis keyPrefix)').env('DIGEST_DOCTOR_KEY_PREFIX'))
    .addOption(new Option('--statement-timeout <duration>', 'statement_timeout for every Postgres session').default('30s'))
    .addOption(new Option('--connect-timeout <duration>', 'bound on connecting to Postgres and to Redis').env('DIGEST_DOCTOR_CONNECT_TIMEOUT').default('10s'))
    .addOption(new Option('--query-timeout <duration>', 'client-side bound on each Postgres reply, for a server that stops answering (0 = none)').env('DIGEST_DOCTOR_QUERY_TIMEOUT').default(undefined, 'statement timeout + 10s'))
    .addOption(new Option('--redis-command-timeout <duration>', 'bound on each Redis reply (0 = none)').env('DIGEST_DOCTOR_REDIS_COMMAND_TIMEOUT').default('10s'))
    .addOption(new Option('--tz <zone>', 'the service time zone (digest_date is the calendar date there)').env('DIGEST_DOCTOR_TZ').default(DEFAULT_TIME_ZONE))
    .addOption(new Option('--data-dir <dir>', 'the embedded database used when no database URL is configured').env('DIGEST_DOCTOR_DATA_DIR').default('.digest-doctor/db'))
    .addOption(new Option('--config <file>', 'config file (default ./digest-doctor.config.json when present)').env('DIGEST_DOCTOR_CONFIG'))
    .option('--json', 'one JSON document on stdout (with schemaVersion)')
    .option('--no-color', 'no colour (NO_COLOR is honoured too)')
    .showSuggestionAfterError()
    // commander's own messages (an option's value quoted back) are masked like ours
    .configureOutput({ writeErr: (str) => process.stderr.write(redactText(str, argvSecrets(args))) })
    .exitOverride()
    .addHelpText('after', EXIT_CODE_HELP)
    // flags > environment > config file > defaults: the file fills what the first two left unset.
    .hook('preAction', (root, action) => {
      applyConfig(root, action, Object.keys(COMMANDS));
    });
  await registerCommands(program, args);
  return program;
}

/** Passwords of the URLs on the command line (`--x-url v` or `--x-url=v`) and in the environment. */
function argvSecrets(args: readonly string[]): string[] {
  const urls: string[] = [process.env.DATABASE_URL ?? '', process.env.REDIS_URL ?? ''];
  args.forEach((a, i) => {
    if (/^--(?:database|redis)-url$/.test(a)) urls.push(args[i + 1] ?? '');
    else if (/^--(?:database|redis)-url=/.test(a)) urls.push(a.slice(a.indexOf('=') + 1));
  });
  return secretsOf(urls);
}

/** After the command has finished and closed what it opened, the process exits within this even if a socket lingers. */
const EXIT_GRACE_MS = 2_000;

export async function main(argv: string[]): Promise<void> {
  try {
    const program = await buildProgram(argv.slice(2));
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version exit 0; every usage error exits 2 (commander's own default is 1)
      process.exitCode = err.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
      return;
    }
    const { reportError } = await import('./run.js');
    process.exitCode = reportError(err, 'digest-doctor', argv.includes('--json'), argvSecrets(argv.slice(2)));
  }
}

/**
 * The process entry (bin/digest-doctor.js): main, then exit within EXIT_GRACE_MS even if a socket
 * lingers. Not part of main itself: `demo` runs main once per step in its own process.
 */
export async function runMain(argv: string[]): Promise<void> {
  try {
    await main(argv);
  } finally {
    // a half-closed socket to a server that stopped answering must not keep the process alive
    setTimeout(() => process.exit(), EXIT_GRACE_MS).unref();
  }
}
