// The command list, in help order. Each module exports register(program). Only the module of the
// command being run is imported (with all its operations, zod schemas and drivers): start-up stays
// quick, and `--help` or an unknown command loads them all for the listing and suggestions.
import type { Command } from 'commander';

type Loader = () => Promise<{ register(program: Command): void }>;

export const COMMANDS: Readonly<Record<string, Loader>> = {
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

export async function registerCommands(program: Command, args: readonly string[]): Promise<void> {
  const wanted = commandOperand(program, args);
  const versionOnly = wanted === undefined && args.some((a) => a === '-V' || a === '--version');
  if (versionOnly) return;
  const names = wanted !== undefined && wanted in COMMANDS ? [wanted] : Object.keys(COMMANDS);
  const modules = await Promise.all(names.map((n) => COMMANDS[n]!()));
  for (const m of modules) m.register(program);
}
