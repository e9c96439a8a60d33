// Parsing of user input into typed values. Every failure is one line naming the problem and the fix.
import { badInput } from '../errors.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;

export function isUuid(value: string): boolean {
  return UUID.test(value);
}

export function assertUuid(value: string, what = 'id'): string {
  if (!isUuid(value)) throw badInput(`${what} "${value}" is not a UUID: expected 8-4-4-4-12 hex digits, e.g. 6af5e7d3-e736-46da-bfc1-42786f2ab1c0`);
  return value.toLowerCase();
}

export function isDay(value: string): boolean {
  const m = DAY.exec(value);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const dt = new Date(Date.UTC(y, mo - 1, d));
  return dt.getUTCFullYear() === y && dt.getUTCMonth() === mo - 1 && dt.getUTCDate() === d;
}

export function assertDay(value: string, what = 'date'): string {
  if (!isDay(value)) throw badInput(`${what} "${value}" is not a calendar date: expected YYYY-MM-DD, e.g. 2025-11-25`);
  return value;
}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `30m`, `6h`, `7d`, `90s`, `500ms`, `2w` -> milliseconds. */
export function parseDuration(value: string, what = 'duration'): number {
  const m = DURATION.exec(value.trim());
  if (!m) throw badInput(`${what} "${value}" is not a duration: use a number and a unit (ms, s, m, h, d, w), e.g. 30m, 6h or 7d`);
  const ms = Math.round(Number(m[1]) * UNIT_MS[m[2]!]!);
  if (ms <= 0) throw badInput(`${what} "${value}" must be greater than zero`);
  return ms;
}

export function parsePositiveInt(value: string, what = 'number'): number {
  if (!/^\d+$/.test(value.trim()) || Number(value) < 1 || !Number.isSafeInteger(Number(value))) {
    throw badInput(`${what} "${value}" is not a positive whole number`);
  }
  return Number(value);
}

/**
 * `--since`: a date (YYYY-MM-DD, the digest_date lower bound) or a duration back from `now`
 * (`7d` = the service days from seven days ago on). Returns a YYYY-MM-DD day.
 */
export function parseSince(value: string, now: Date, toDay: (at: Date) => string): string {
  if (isDay(value)) return value;
  if (DURATION.test(value.trim())) return toDay(new Date(now.getTime() - parseDuration(value, '--since')));
  throw badInput(`--since "${value}" is neither a date nor a duration: use YYYY-MM-DD or e.g. 7d`);
}

/** Postgres' NAMEDATALEN - 1: a longer identifier is silently truncated by the server. */
export const MAX_IDENTIFIER_BYTES = 63;

/**
 * A schema name as given (`--schema`, `--state-schema`): any name Postgres accepts as a quoted
 * identifier (upper case, hyphens, spaces, quotes, unicode), used exactly, quoted in every statement.
 * Bad input: empty, a NUL character (no identifier can hold one), or longer than 63 bytes in UTF-8
 * (Postgres would truncate it and reach another schema). Source: PostgreSQL 15 manual, 4.1.1
 * "Identifiers and Key Words".
 */
export function assertSchemaName(value: string, flag: string): string {
  if (value === '') throw badInput(`${flag} is empty: name a schema, e.g. ${flag} public`);
  if (value.includes('\0')) throw badInput(`${flag} contains a NUL character, which no Postgres identifier can hold`);
  const bytes = new TextEncoder().encode(value).length;
  if (bytes > MAX_IDENTIFIER_BYTES) throw badInput(`${flag} "${value}" is ${bytes} bytes long: Postgres identifiers are at most ${MAX_IDENTIFIER_BYTES} bytes (a longer one is truncated)`);
  return value;
}

const SHELL_SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/**
 * One argument as a POSIX shell reads it back unchanged: as it is when it holds only characters no
 * shell treats specially, else in single quotes (a quote inside as '\''). Source: POSIX.1-2017,
 * Shell Command Language, 2.2.2 "Single-Quotes".
 */
export function shellQuote(arg: string): string {
  if (SHELL_SAFE.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/**
 * `--schema <name>` as a hint to paste into a POSIX shell: the name shell-quoted, and joined with
 * `=` when it starts with a dash (so the option parser cannot take it for an option).
 */
export function schemaFlag(flag: '--schema' | '--state-schema', name: string): string {
  return name.startsWith('-') ? `${flag}=${shellQuote(name)}` : `${flag} ${shellQuote(name)}`;
}
