// Lua scripts as files (src/redis/lua/<name>-<numberOfKeys>.lua, `-n` when the caller passes the
// count), read once and registered on each
// client with ioredis defineCommand: callers get a method, EVALSHA (with a NOSCRIPT fallback) is
// automatic, and ioredis applies keyPrefix to every KEYS entry.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DoctorError } from '../errors.js';
import type { RedisClient } from './connect.js';

/** <package root>/src/redis/lua, from src/ (tests) and dist/ (the built CLI) alike. */
export const LUA_DIR = fileURLToPath(new URL('../../src/redis/lua/', import.meta.url));

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

const sources = new Map<string, string>();

export function scriptSource(file: string): string {
  let text = sources.get(file);
  if (text === undefined) {
    text = readFileSync(`${LUA_DIR}${file}.lua`, 'utf8');
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

/** What each negative code a script returns means. */
const SCRIPT_ERRORS: Record<number, (key: string) => DoctorError> = {
  [-1]: (key) => new DoctorError('REFUSED', `Redis key ${key} is not a stream: refusing to publish into it (check the stream name)`),
  [-2]: (key) => new DoctorError('REFUSED', `idempotency marker ${key} holds a value that is not a string: delete it or choose another marker prefix`),
};

/** The one place negative script codes become errors; `key` names what the code is about. */
export function scriptError(code: number, key: string): DoctorError {
  const make = SCRIPT_ERRORS[code];
  return make ? make(key) : new DoctorError('INTERNAL', `script returned unknown code ${code} for ${key}`);
}
