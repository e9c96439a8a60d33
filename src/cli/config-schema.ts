// The config file's zod schema, built from the commander options (see ./config.ts), and reading a file
// against it: imported only when a config file is found.
import { readFileSync } from 'node:fs';
import type { Command, Option } from 'commander';
import * as z from 'zod';
import { badInput } from '../errors.js';

type Kind = 'flag' | 'value' | 'list';

function kindOf(o: Option): Kind {
  if (!o.required && !o.optional) return 'flag';
  return Array.isArray(o.defaultValue) || o.variadic ? 'list' : 'value';
}

const EXPECTED: Record<Kind, string> = { flag: 'a boolean', value: 'a string or a number', list: 'an array of strings' };

function valueSchema(kind: Kind): z.ZodType {
  if (kind === 'flag') return z.boolean();
  if (kind === 'list') return z.array(z.string());
  return z.union([z.string(), z.number()]);
}

function optionsShape(cmd: Command, skip: ReadonlySet<string> = new Set()): Record<string, z.ZodType> {
  const shape: Record<string, z.ZodType> = {};
  for (const o of cmd.options) {
    const key = o.attributeName();
    if (skip.has(key)) continue;
    shape[key] = valueSchema(kindOf(o)).optional();
  }
  return shape;
}

/** The path of every command under `root` (`inspect`, `migrate status`), with its Command. */
function commandsOf(root: Command): Map<string, Command> {
  const out = new Map<string, Command>();
  const walk = (c: Command, prefix: string) => {
    for (const sub of c.commands) {
      const path = prefix ? `${prefix} ${sub.name()}` : sub.name();
      out.set(path, sub);
      walk(sub, path);
    }
  };
  walk(root, '');
  return out;
}

/** Options that make no sense in a file (they would change what the file means or print). */
const GLOBAL_NOT_IN_FILE = new Set(['config', 'version']);

/**
 * The zod schema of a config file for `root` as registered: strict (an unknown key is an error),
 * each option typed by its kind. `otherCommands`: command names not registered in this run (only
 * the running command's module is loaded); their sections must be objects and are not checked.
 */
export function configSchema(root: Command, otherCommands: readonly string[] = []): z.ZodObject {
  const shape = optionsShape(root, GLOBAL_NOT_IN_FILE);
  for (const [path, cmd] of commandsOf(root)) shape[path] = z.object(optionsShape(cmd)).strict().optional();
  for (const name of otherCommands) if (!(name in shape)) shape[name] = z.record(z.string(), z.unknown()).optional();
  return z.object(shape).strict();
}

function describeIssue(root: Command, issue: z.core.$ZodIssue): string {
  const path = issue.path.map(String);
  if (issue.code === 'unrecognized_keys') {
    const where = path.length ? `${path.join('.')}.` : '';
    return `unknown key "${where}${issue.keys[0]}": not an option of ${path.length ? `digest-doctor ${path.join(' ')}` : 'digest-doctor (global options, or a command name holding its options)'}`;
  }
  const key = path.join('.');
  // The expected type from the option itself.
  let cmd: Command | undefined = root;
  const optKey = path[path.length - 1];
  if (path.length > 1) cmd = commandsOf(root).get(path.slice(0, -1).join(' '));
  const opt = cmd?.options.find((o) => o.attributeName() === optKey);
  const expected = opt ? EXPECTED[kindOf(opt)] : path.length === 1 ? 'an object of that command\'s options' : 'a valid value';
  return `key "${key}": expected ${expected}`;
}

/** Reads and validates the file; BAD_INPUT (exit 2) naming the file, the key and the expected type. */
export function loadConfigFile(root: Command, file: string, otherCommands: readonly string[] = []): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw badInput(`config file ${file} cannot be read as JSON (${(err as Error).message}): fix it or pass --config <file>`);
  }
  const parsed = configSchema(root, otherCommands).safeParse(raw);
  if (!parsed.success) throw badInput(`config file ${file}: ${describeIssue(root, parsed.error.issues[0]!)}`);
  return parsed.data as Record<string, unknown>;
}
