// Lua scripts as files (lua/<name>-<numberOfKeys>.lua at the package root, `-n` when the caller passes the
// count), read once and registered on each
// client with ioredis defineCommand: callers get a method, EVALSHA (with a NOSCRIPT fallback) is
// automatic, and ioredis applies keyPrefix to every KEYS entry. Every script returns codes from the
// one table SCRIPT_CODES: it is prepended to each script as `local C = {...}`, so a script names
// its codes (`return C.NOT_OWNER`) and never writes a number of its own.
// Scripts cannot import each other, so what several of them share is a prelude, lua/prelude/<name>.lua
// (functions only, no command run at load), prepended after the code table to each script whose
// header names it in a `-- Prelude: <name>[, <name>]` line. Only the named ones: a lock script is
// sent without the publish scripts' functions, so what Redis runs (and SCRIPT LOAD, SLOWLOG or a
// `user_script:<line>` error shows) is the script and what it uses. Every key still comes through
// KEYS (a prelude function takes the key from its caller), so the scripts stay cluster-safe.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DoctorError } from '../errors.js';
import type { RedisClient } from './connect.js';

/**
 * <package root>/lua: two levels up from this module both as src/redis/scripts.ts (tests) and as
 * dist/redis/scripts.js (the built CLI and the installed package, whose `files` ship lua/), as
 * sql.ts finds <package root>/sql.
 */
export const LUA_DIR = fileURLToPath(new URL('../../lua/', import.meta.url));

export const SCRIPTS = {
  releaseLock: 'release-lock-1',
  extendLock: 'extend-lock-1',
  publishIdempotent: 'publish-idempotent-n',
  publishIdmp: 'publish-idmp-1',
} as const;
export type ScriptName = keyof typeof SCRIPTS;

/** `name-N.lua` -> N keys; `name-n.lua` -> undefined: the caller passes numkeys first. */
export function keyCount(file: string): number | undefined {
  const m = /-(\d+|n)$/.exec(file);
  if (!m) throw new Error(`script file ${file} does not end in -<numberOfKeys> or -n`);
  return m[1] === 'n' ? undefined : Number(m[1]);
}

/**
 * Every code any script returns, distinct across all scripts, so one number has one meaning
 * wherever it comes from (before, -1 was "held by another token" in the lock scripts and "not a
 * stream" in the publish scripts). Negative codes are refusals (scriptError names them); the
 * others are outcomes the caller reads with the same names.
 */
export const SCRIPT_CODES = {
  /** lock scripts: released / extended */
  LOCK_DONE: 1,
  /** lock scripts: not held (expired or never taken) */
  LOCK_NOT_HELD: 0,
  /** lock scripts: held by another token: refused, the lock is untouched */
  LOCK_NOT_OWNER: -1,
  /** publish scripts, per event: a new entry was added */
  ADDED: 10,
  /** publish scripts, per event: added, the marker pointed at an entry gone before the group read it */
  ADDED_OVER_STALE_MARKER: 11,
  /** publish scripts, per event: a repeat, its first entry is still in the stream */
  REPEAT_PRESENT: 12,
  /** publish scripts, per event: a repeat, its first entry was delivered to the group and has gone since */
  REPEAT_DELIVERED: 13,
  /** publish scripts, per event: not added, the group's unread backlog is at the limit */
  NO_ROOM: 14,
  /** publish scripts: the stream key holds another type (nothing written) */
  NOT_A_STREAM: -2,
  /** publish scripts, per event: the marker key holds another type */
  MARKER_WRONG_TYPE: -3,
  /** publish scripts, per event: the marker holds a string that is not a stream entry id */
  MARKER_NOT_AN_ID: -4,
  /** IDMP script, per event: too many entries of one id gone undelivered in a row */
  IDMP_CHAIN_TOO_LONG: -5,
} as const;
export type ScriptCodeName = keyof typeof SCRIPT_CODES;

/** The Lua line that gives a script the code table. */
export const LUA_CODE_TABLE = `local C = { ${Object.entries(SCRIPT_CODES)
  .map(([k, v]) => `${k} = ${v}`)
  .join(', ')} }\n`;

const sources = new Map<string, string>();

/** The script file's text as written (its header and body), without the code table or preludes. */
export function scriptFile(file: string): string {
  return readFileSync(`${LUA_DIR}${file}.lua`, 'utf8');
}

const preludes = new Map<string, string>();

/** The text of lua/prelude/<name>.lua (read once). Throws (a bug of ours) when a script names a prelude that does not exist. */
export function preludeFile(name: string): string {
  if (!/^[a-z][a-z0-9-]*$/.test(name)) throw new Error(`prelude name ${JSON.stringify(name)} is not <lowercase-name>`);
  let text = preludes.get(name);
  if (text === undefined) {
    text = readFileSync(`${LUA_DIR}prelude/${name}.lua`, 'utf8');
    if (!text.endsWith('\n')) text += '\n';
    preludes.set(name, text);
  }
  return text;
}

/**
 * The preludes a script's text names in its `-- Prelude: a, b` header lines, in that order, each
 * once. A prelude names none of its own (throws): one level, so the order is the script's.
 */
export function preludesOf(text: string, file = 'script'): string[] {
  const names: string[] = [];
  for (const m of text.matchAll(/^-- Prelude: (.+)$/gm)) {
    for (const name of m[1]!.split(',').map((n) => n.trim())) if (!names.includes(name)) names.push(name);
  }
  for (const name of names) {
    let prelude: string;
    try {
      prelude = preludeFile(name);
    } catch (err) {
      throw new Error(`${file} names prelude ${name}: ${(err as Error).message}`, { cause: err });
    }
    if (/^-- Prelude: /m.test(prelude)) throw new Error(`lua/prelude/${name}.lua names a prelude of its own (${file} must name each it needs)`);
  }
  return names;
}

/** What is sent to Redis: the code table, the preludes the file names (each under a `-- lua/prelude/<name>.lua` line), then the file. */
export function scriptSource(file: string): string {
  let text = sources.get(file);
  if (text === undefined) {
    const body = scriptFile(file);
    const preludes = preludesOf(body, `lua/${file}.lua`).map((name) => `-- lua/prelude/${name}.lua\n${preludeFile(name)}`);
    text = LUA_CODE_TABLE + preludes.join('') + `-- lua/${file}.lua\n` + body;
    sources.set(file, text);
  }
  return text;
}

type ScriptMethod = (...args: Array<string | number>) => Promise<unknown>;
export type ScriptedClient = RedisClient & Record<ScriptName, ScriptMethod>;

const registered = new WeakSet<object>();

/** Registers every script on `client` (once per client) and returns it typed with the methods. */
export function withScripts(client: RedisClient): ScriptedClient {
  if (!registered.has(client)) {
    for (const [name, file] of Object.entries(SCRIPTS)) {
      const numberOfKeys = keyCount(file);
      client.defineCommand(name, numberOfKeys === undefined ? { lua: scriptSource(file) } : { numberOfKeys, lua: scriptSource(file) });
    }
    registered.add(client);
  }
  return client as ScriptedClient;
}

/** What each refusal code a publish script returns means (the lock scripts' LOCK_NOT_OWNER is an
 * outcome their callers report, not an error). */
const SCRIPT_ERRORS: Record<number, (key: string) => DoctorError> = {
  [SCRIPT_CODES.NOT_A_STREAM]: (key) => new DoctorError('REFUSED', `Redis key ${key} is not a stream: refusing to publish into it (check the stream name)`),
  [SCRIPT_CODES.MARKER_WRONG_TYPE]: (key) => new DoctorError('REFUSED', `idempotency marker ${key} holds a value that is not a string: delete it or choose another marker prefix`),
  [SCRIPT_CODES.MARKER_NOT_AN_ID]: (key) => new DoctorError('REFUSED', `idempotency marker ${key} holds a string that is not a stream entry id: delete it or choose another marker prefix`),
  [SCRIPT_CODES.IDMP_CHAIN_TOO_LONG]: (key) => new DoctorError('REFUSED', `idempotent id ${key}: its entries were trimmed before delivery again and again: raise MAXLEN or start the workers, then publish again`),
};

/** The one place negative script codes become errors; `key` names what the code is about. */
export function scriptError(code: number, key: string): DoctorError {
  const make = SCRIPT_ERRORS[code];
  return make ? make(key) : new DoctorError('INTERNAL', `script returned unknown code ${code} for ${key}`);
}
