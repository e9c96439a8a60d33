// Commander wiring: global options, exit codes, and the command list. Commands live in ./commands.
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { DEFAULT_TIME_ZONE } from '../core/contract.js';
import { redactText, secretsOf } from '../core/redact.js';
import { ExitCode } from '../errors.js';
import { COMMAND_NAMES } from './command-list.js';
import { registerCommands } from './commands/index.js';
import { fitErr } from './stderr.js';
import { exitAfterCommand } from './exit.js';

export const VERSION: string = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;

export const EXIT_CODE_HELP = `
Exit codes:
  0   nothing wrong (or the requested change was applied)
  1   findings: problems found, or a check failed
  2   usage or bad input (nothing was written)
  3   a database or Redis is unreachable or refused us
  4   refused for safety, or busy (another run holds the lock)
  70  internal error (set DEBUG=1 for the stack trace)
  130 interrupted (Ctrl-C or SIGTERM), after cleaning up

Writes happen only with --apply; without it every command is a dry run.`;

export const GLOBAL_OPTIONS_HELP = `
Global options (before or after the command): --database-url, --schema,
--state-schema, --redis-url, --redis-cluster, --key-prefix, --tz, --data-dir,
--config, the timeouts, --json, --wide, --no-color: digest-doctor --help.`;

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
    .addOption(new Option('--wide', 'tables as wide as they need, ids whole (default: fit the terminal, or COLUMNS, or 80 columns)').env('DIGEST_DOCTOR_WIDE'))
    .showSuggestionAfterError()
    // commander's own messages (an option's value quoted back) are masked like ours, under our one prefix;
    // with --json the error document on stdout carries them (main below)
    // and commander's suggestion joins its line: one line naming the problem and the fix
    .configureOutput({ writeErr: (str) => process.stderr.write(fitErr(redactText(str.replace(/^error: /, 'digest-doctor: ').replace(/\n(?=\(Did you mean )/, ' '), argvSecrets(args)))) })
    .exitOverride()
    // every command's --help ends with where the global options are and the exit codes
    .addHelpText('afterAll', ({ command }) => (command.parent ? `${GLOBAL_OPTIONS_HELP}\n${EXIT_CODE_HELP}` : EXIT_CODE_HELP))
    // flags > environment > config file > defaults: the file fills what the first two left unset.
    // (config.ts and output.ts build zod schemas: imported when used, so `--help` loads no zod)
    .hook('preAction', async (root, action) => {
      const { applyConfig } = await import('./config.js');
      await applyConfig(root, action, COMMAND_NAMES);
    });
  // demo's steps run through main() itself, given to it here rather than imported (no import cycle)
  await registerCommands(program, args, { run: runInProcess });
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

let quietOnEpipe = false;

export async function main(argv: string[]): Promise<void> {
  if (!quietOnEpipe) {
    quietOnEpipe = true;
    // a reader that closed early (`digest-doctor --help | head -1`): nothing left to say, exit quietly
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw err;
    });
  }
  try {
    const program = await buildProgram(argv.slice(2));
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version exit 0; every usage error exits 2 (commander's own default is 1)
      process.exitCode = err.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
      if (err.exitCode !== 0 && argv.includes('--json')) {
        // the parser's own errors (unknown option or command, missing value) as the BAD_INPUT document
        const message = redactText(err.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ').trim(), argvSecrets(argv.slice(2)));
        const name = commandOperand(argv.slice(2)) ?? 'digest-doctor';
        const [{ ErrorDocumentSchema }, { SCHEMA_VERSION }] = await Promise.all([import('./error-document.js'), import('./output.js')]);
        process.stdout.write(JSON.stringify(ErrorDocumentSchema.parse({ schemaVersion: SCHEMA_VERSION, command: name, ok: false, error: { code: 'BAD_INPUT', message, exitCode: ExitCode.USAGE } }), null, 2) + '\n');
      }
      return;
    }
    const { reportError } = await import('./run.js');
    process.exitCode = await reportError(err, 'digest-doctor', argv.includes('--json'), argvSecrets(argv.slice(2)));
  }
}

/** CliHost.run: one command line through main(), its exit code returned and process.exitCode restored. */
async function runInProcess(args: readonly string[]): Promise<number> {
  const outer = process.exitCode;
  process.exitCode = 0;
  try {
    await main(['node', 'digest-doctor', ...args]);
    return Number(process.exitCode ?? 0);
  } finally {
    process.exitCode = outer;
  }
}

/**
 * The binary's entry: main(), then the process exits as soon as its output is flushed, and within
 * EXIT_GRACE_MS in any case (a half-closed socket to a server that stopped answering must not keep
 * it alive). Its Postgres sessions close without waiting for the server's side (src/cli/exit.ts).
 * Not part of main() itself, which runs in-process too (demo's steps).
 */
export async function runBinary(argv: string[]): Promise<void> {
  exitAfterCommand();
  try {
    await main(argv);
  } finally {
    // Once stdout and stderr have taken everything written (a pipe or file takes it at once on
    // Linux), the process exits: the connections it said goodbye on close with it.
    let flushed = 0;
    const exitWhenFlushed = () => ++flushed === 2 && process.exit();
    process.stdout.write('', exitWhenFlushed);
    process.stderr.write('', exitWhenFlushed);
    setTimeout(() => process.exit(), EXIT_GRACE_MS).unref();
  }
}

/** The command named in `args` (its first operand that is a command name), for the error document. */
function commandOperand(args: readonly string[]): string | undefined {
  return args.find((a) => (COMMAND_NAMES as readonly string[]).includes(a));
}
