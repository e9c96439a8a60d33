// Each command's module, by name (the names, in help order, are in ../command-list.ts). Each module
// exports register(program, host). Only the module of the command being run is imported (with all
// its operations, zod schemas and drivers): start-up stays quick. `--help` or an unknown command
// registers every command for the listing and suggestions: in the bundle from the summaries
// serialised at build time (./summaries.ts), importing none of the modules; in the tsc output by
// loading them all. A module registers with the CliHost main.ts gives (demo runs its steps through
// it), so no command imports main.ts: the import graph has no cycle.
import { Option, type Command } from 'commander';
import { COMMAND_NAMES, type CliHost, type CommandName } from '../command-list.js';
import { COMMAND_SUMMARIES, type CommandSummary } from './summaries.js';

type Loader = () => Promise<{ register(program: Command, host: CliHost): void }>;

export const COMMANDS: Readonly<Record<CommandName, Loader>> = {
  inspect: () => import('./inspect.js'),
  streams: () => import('./streams.js'),
  migrate: () => import('./migrate.js'),
  'fix-duplicates': () => import('./fix-duplicates.js'),
  'mark-stale': () => import('./mark-stale.js'),
  undo: () => import('./undo.js'),
  runs: () => import('./runs.js'),
  replay: () => import('./replay.js'),
  check: () => import('./check.js'),
  demo: () => import('./demo.js'),
};

/** The first operand of `args` (argv without node and script), skipping the values of the program's options. */
export function commandOperand(program: Command, args: readonly string[]): string | undefined {
  const takesValue = new Set(program.options.filter((o) => o.required || o.optional).flatMap((o) => [o.long, o.short].filter((f): f is string => Boolean(f))));
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') return args[i + 1];
    if (!a.startsWith('-')) return a;
    if (!a.includes('=') && takesValue.has(a)) i++;
  }
  return undefined;
}

/** Registers the command `args` names (every command for help, an unknown one or none), each given `host`. */
export async function registerCommands(program: Command, args: readonly string[], host: CliHost): Promise<void> {
  const wanted = commandOperand(program, args);
  const versionOnly = wanted === undefined && args.some((a) => a === '-V' || a === '--version');
  if (versionOnly) return;
  const alias = COMMAND_SUMMARIES?.find((c) => c.aliases.includes(wanted ?? ''))?.name;
  const run = wanted !== undefined && Object.hasOwn(COMMANDS, wanted) ? (wanted as CommandName) : (alias as CommandName | undefined);
  // `help <command>` prints that command's own help: every module is loaded for it
  if (run === undefined && wanted !== 'help' && COMMAND_SUMMARIES) {
    for (const c of COMMAND_SUMMARIES) registerSummary(program, c);
    return;
  }
  const names = run !== undefined ? [run] : COMMAND_NAMES;
  const modules = await Promise.all(names.map((n) => COMMANDS[n]()));
  for (const m of modules) m.register(program, host);
}

/**
 * A command as the listing shows it, from its summary; it never runs (the command named on the
 * command line is registered from its module).
 */
function registerSummary(program: Command, c: CommandSummary): void {
  const cmd = program.command(c.name, { hidden: c.hidden }).description(c.description);
  if (c.summary) cmd.summary(c.summary);
  if (c.helpGroup) cmd.helpGroup(c.helpGroup);
  for (const a of c.aliases) cmd.alias(a);
  for (const a of c.args) cmd.argument(a);
  for (const o of c.options) cmd.addOption(new Option(o.flags, o.description).hideHelp(o.hidden));
}
