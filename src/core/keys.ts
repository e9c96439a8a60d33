// Idempotency keys, lock keys and the service day. Pure: the instant is always passed in.
import { DEFAULT_TIME_ZONE, LOCK_PREFIX } from './contract.js';
import { badInput } from '../errors.js';
import { assertDay, assertUuid } from './validate.js';

/** `digest:{user_id}:{YYYY-MM-DD}`: names a user and a day, not a job. */
export function idempotencyKey(userId: string, day: string): string {
  assertUuid(userId, 'user id');
  assertDay(day, 'digest date');
  return `digest:${userId.toLowerCase()}:${day}`;
}

/** `group-digest:{group_id}:{window_id}` for group digests. */
export function groupIdempotencyKey(groupId: string, windowId: string): string {
  return `group-digest:${groupId}:${windowId}`;
}

export interface ParsedIdempotencyKey {
  kind: 'user' | 'group';
  userId?: string;
  day?: string;
  groupId?: string;
  windowId?: string;
}

const USER_KEY = /^digest:([0-9a-fA-F-]{36}):(\d{4}-\d{2}-\d{2})$/;
const GROUP_KEY = /^group-digest:([^:]+):(.+)$/;

export function parseIdempotencyKey(key: string): ParsedIdempotencyKey | undefined {
  const user = USER_KEY.exec(key);
  if (user) return { kind: 'user', userId: user[1]!.toLowerCase(), day: user[2]! };
  const group = GROUP_KEY.exec(key);
  if (group) return { kind: 'group', groupId: group[1]!, windowId: group[2]! };
  return undefined;
}

/** `digest:lock:{user_uuid}`: the bot's double-click lock. */
export function userLockKey(userId: string): string {
  assertUuid(userId, 'user id');
  return `${LOCK_PREFIX}${userId.toLowerCase()}`;
}

const dayFormatters = new Map<string, Intl.DateTimeFormat>();

function dayFormatter(timeZone: string): Intl.DateTimeFormat {
  let f = dayFormatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
    dayFormatters.set(timeZone, f);
  }
  return f;
}

/** Throws a one-line error naming the zone when it is not an IANA zone this runtime knows. */
export function assertTimeZone(timeZone: string): void {
  try {
    dayFormatter(timeZone);
  } catch {
    throw badInput(`unknown time zone "${timeZone}": use an IANA zone such as Europe/Moscow or UTC`);
  }
}

/** The calendar date (YYYY-MM-DD) of `at` in the service's zone (Europe/Moscow unless told otherwise). */
export function serviceDay(at: Date, timeZone: string = DEFAULT_TIME_ZONE): string {
  const parts = dayFormatter(timeZone).formatToParts(at);
  const get = (type: string) => parts.find((p) => p.type === type)!.value;
  return `${get('year')}-${get('month')}-${get('day')}`;
}

/** Wall-clock time of `at` in `timeZone`, `YYYY-MM-DD HH:MM:SS`. */
export function formatInZone(at: Date, timeZone: string = DEFAULT_TIME_ZONE): string {
  const f = new Intl.DateTimeFormat('en-CA', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
  });
  const parts = f.formatToParts(at);
  const get = (type: string) => parts.find((p) => p.type === type)!.value;
  return `${get('year')}-${get('month')}-${get('day')} ${get('hour')}:${get('minute')}:${get('second')}`;
}

/** The offset of `timeZone` from UTC at instant `at`, in ms (Moscow: +3 h). */
export function zoneOffsetMs(at: Date, timeZone: string = DEFAULT_TIME_ZONE): number {
  const local = formatInZone(at, timeZone); // YYYY-MM-DD HH:MM:SS
  const asUtc = Date.parse(local.replace(' ', 'T') + 'Z');
  return asUtc - Math.floor(at.getTime() / 1000) * 1000;
}

/** The first instant whose service day is `day` or later (the local dates of a zone never go back). */
function startOfDay(day: string, timeZone: string): Date {
  const midnight = Date.parse(`${day}T00:00:00Z`);
  // Local midnight of `day` at the offset in force then: right unless the offset changes near midnight.
  const guess = midnight - zoneOffsetMs(new Date(midnight - zoneOffsetMs(new Date(midnight), timeZone)), timeZone);
  if (serviceDay(new Date(guess), timeZone) === day && serviceDay(new Date(guess - 1), timeZone) < day) return new Date(guess);
  // A day whose midnight does not exist (DST starting at midnight: the day starts at 01:00) or whose
  // offset changes around it: search. Offsets lie within -12 h..+14 h, so the start lies within
  // 16 h of midnight read as UTC; about 27 halvings to the millisecond.
  let lo = midnight - 16 * 3_600_000; // its day is before `day`
  let hi = midnight + 16 * 3_600_000; // its day is `day` or later
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (serviceDay(new Date(mid), timeZone) < day) lo = mid;
    else hi = mid;
  }
  return new Date(hi);
}

/**
 * The UTC instants at which service day `day` (YYYY-MM-DD) starts and ends (exclusive) in
 * `timeZone` (an IANA zone): `start` is the first instant whose serviceDay is `day` (local midnight,
 * or 01:00 on a day when DST starts at midnight), `end` the start of the next day; so for every
 * instant t, serviceDay(t) === day exactly when start <= t < end. Bad input (exit 2) when `day` is
 * not a calendar date. Rules: the IANA tz database, as the runtime's Intl carries it.
 */
export function dayBounds(day: string, timeZone: string = DEFAULT_TIME_ZONE): { start: Date; end: Date } {
  assertDay(day);
  const next = new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
  return { start: startOfDay(day, timeZone), end: startOfDay(next, timeZone) };
}
