// The string-level fast path: an event already parsed by JSON.parse is checked against the schema's
// rules by hand (charCode arithmetic) when it has the plain shape the service writes; anything it
// does not accept goes to DigestGenerateEventSchema for the verdict (and the error text).
import { EVENT_FIELD, TRIGGERS } from '../contract.js';
import { parseDlqEntry, parseEventJson, parseEventObject, type EventParseResult } from '../event.js';
import { isDay } from '../validate.js';
import { HEX } from './keys.js';

/** The UUID shape validate.ts's isUuid accepts (8-4-4-4-12 hex, any case), by charCode: hot in the scan. */
function plainUuid(s: unknown): boolean {
  if (typeof s !== 'string' || s.length !== 36) return false;
  for (let i = 0; i < 36; i++) {
    const c = s.charCodeAt(i);
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== 45) return false;
    } else if (c > 127 || HEX[c]! < 0) return false;
  }
  return true;
}
/** Optional event fields whose values are strings, as the schema has them. */
export const OPTIONAL_STRINGS = ['schema_version', 'trace_id', 'occurred_at', 'idempotency_key', 'requested_by', 'group_id', 'group_window_id', 'delivery_channel', 'delivery_format'] as const;
const TRIGGER_SET = new Set<unknown>(TRIGGERS);
const CONTEXTS = new Set<unknown>(['channels', 'group']);
const WINDOWS = new Set<unknown>([4, 6, 12, 24]);

/** Days per month, 29 for February (a 29 February goes to isDay, which knows leap years). */
export const DAYS_IN_MONTH = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
/** The n decimal digits at s[at, at + n) as a number, or -1 if any is not a digit. */
function digits(s: string, at: number, n: number): number {
  let v = 0;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(at + i) - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

/** isDay without building a Date (hot in the scan); anything unusual is left to isDay. */
function plainDay(s: string): boolean {
  if (s.length !== 10 || s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45) return false;
  const y = digits(s, 0, 4);
  const m = digits(s, 5, 2);
  const d = digits(s, 8, 2);
  if (y < 1000 || m < 1 || m > 12 || d < 1) return y >= 0 && m >= 0 && d >= 0 && isDay(s);
  if (m === 2 && d === 29) return isDay(s);
  return d <= DAYS_IN_MONTH[m]!;
}

/**
 * True only when DigestGenerateEventSchema accepts `o` (nulls count as absent). A fast path for the
 * scan (zod costs ~3 us an entry); anything it does not accept goes to the schema for the verdict.
 */
export function plainlyValidEvent(o: Record<string, unknown>): boolean {
  if (!plainUuid(o.user_id) || !plainUuid(o.tenant_id)) return false;
  if (typeof o.digest_date !== 'string' || !plainDay(o.digest_date)) return false;
  for (const k of OPTIONAL_STRINGS) if (o[k] != null && typeof o[k] !== 'string') return false;
  if (o.history_id != null && !plainUuid(o.history_id)) return false;
  if (o.trigger != null && !TRIGGER_SET.has(o.trigger)) return false;
  if (o.context != null && !CONTEXTS.has(o.context)) return false;
  if (o.window_size_hours != null && !WINDOWS.has(o.window_size_hours)) return false;
  return true;
}

/** An entry's event: the fast path, else the schema's verdict. Never throws. */
export function parseEntryEvent(flat: readonly string[], dlq: boolean): EventParseResult {
  if (dlq) {
    const fields: Record<string, string> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
    return parseDlqEntry(fields).event;
  }
  let data: string | undefined;
  for (let i = 0; i + 1 < flat.length; i += 2) if (flat[i] === EVENT_FIELD) data = flat[i + 1];
  if (data === undefined) return { ok: false, error: `entry has no ${EVENT_FIELD} field` };
  let raw: unknown;
  try {
    raw = JSON.parse(data);
  } catch {
    return parseEventJson(data);
  }
  if (raw !== null && typeof raw === 'object' && !Array.isArray(raw) && plainlyValidEvent(raw as Record<string, unknown>)) {
    return { ok: true, event: raw as never };
  }
  return parseEventObject(raw);
}
