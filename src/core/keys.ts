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

/** The UTC instants at which service day `day` starts and ends (exclusive) in `timeZone`. */
export function dayBounds(day: string, timeZone: string = DEFAULT_TIME_ZONE): { start: Date; end: Date } {
  assertDay(day);
  const startOf = (d: string) => {
    const guess = Date.parse(`${d}T00:00:00Z`);
    // Two passes settle days whose offset changes near midnight.
    let t = guess - zoneOffsetMs(new Date(guess), timeZone);
    t = guess - zoneOffsetMs(new Date(t), timeZone);
    return new Date(t);
  };
  const next = new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
  return { start: startOf(day), end: startOf(next) };
}
