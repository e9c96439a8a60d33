// The config file: digest-doctor.config.json in the working directory, or --config <file>
// (DIGEST_DOCTOR_CONFIG). Its top-level keys are the global options (camelCase: databaseUrl,
// schema, keyPrefix, ...), and a key per command holds that command's options
// ({ "check": { "maxLag": 500, "skip": ["dlq-empty"] }, "migrate status": { ... } }). Values fill
// only options neither the command line nor the environment set: flags > environment > file >
// built-in defaults. The schema is built from the commander options themselves, so every option of
// every command can be set there and nothing else can (./config-schema.ts, loaded only when a file is found).
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { badInput } from '../errors.js';

export const DEFAULT_CONFIG_FILE = 'digest-doctor.config.json';

function applyTo(cmd: Command, values: Record<string, unknown> | undefined): void {
  if (!values) return;
  for (const o of cmd.options) {
    const key = o.attributeName();
    if (!(key in values) || values[key] === undefined) continue;
    const source = cmd.getOptionValueSource(key);
    if (source !== undefined && source !== 'default' && source !== 'implied') continue;
    const v = values[key];
    cmd.setOptionValueWithSource(key, typeof v === 'number' ? String(v) : v, 'config');
  }
}

/**
 * Finds the config file (--config / DIGEST_DOCTOR_CONFIG, else ./digest-doctor.config.json if it
 * exists) and fills the options of `root` and of the running command `action` that the command line
 * and environment left unset. A --config file that does not exist is bad input.
 */
export async function applyConfig(root: Command, action: Command, otherCommands: readonly string[] = []): Promise<string | null> {
  const given = (root.getOptionValue('config') as string | undefined) ?? undefined;
  const file = given ? resolve(given) : existsSync(DEFAULT_CONFIG_FILE) ? resolve(DEFAULT_CONFIG_FILE) : null;
  if (!file) return null;
  if (given && !existsSync(file)) throw badInput(`config file ${given} does not exist: check --config / DIGEST_DOCTOR_CONFIG`);
  const { loadConfigFile } = await import('./config-schema.js');
  const data = loadConfigFile(root, file, otherCommands);
  applyTo(root, data);
  const path: string[] = [];
  for (let c: Command | null = action; c && c.parent; c = c.parent) path.unshift(c.name());
  if (path.length) applyTo(action, data[path.join(' ')] as Record<string, unknown> | undefined);
  return file;
}
