// The byte-level fast path: an entry's `data` value read straight from the XRANGE reply bytes.
// Accepts only a narrow subset of JSON (a flat object of plain ASCII strings without escapes, nulls,
// and 4/6/12/24 for window_size_hours; no repeated known field) whose every member the schema
// accepts; anything else returns false and goes to JSON.parse + the schema for the verdict.
import { TRIGGERS } from '../contract.js';
import { DAYS_IN_MONTH, OPTIONAL_STRINGS } from './event-text.js';

/** Known field names by length: [ordinal, bytes] (a name is matched against those of its length only). */
const FIELDS_BY_LENGTH: Array<Array<[number, Uint8Array]>> = [];
const KNOWN = [
  'user_id', 'tenant_id', 'digest_date', 'history_id', 'idempotency_key', 'trigger', 'context', 'window_size_hours',
  ...OPTIONAL_STRINGS.filter((k) => k !== 'idempotency_key'),
] as const;
KNOWN.forEach((k, i) => {
  (FIELDS_BY_LENGTH[k.length] ??= []).push([i, Uint8Array.from(k, (c) => c.charCodeAt(0))]);
});
const F_USER = 0, F_TENANT = 1, F_DAY = 2, F_HISTORY = 3, F_KEY = 4, F_TRIGGER = 5, F_CONTEXT = 6, F_WINDOW = 7;
const REQUIRED = (1 << F_USER) | (1 << F_TENANT) | (1 << F_DAY);
const ascii = (xs: readonly string[]) => xs.map((x) => Uint8Array.from(x, (c) => c.charCodeAt(0)));
const TRIGGER_BYTES = ascii(TRIGGERS);
const CONTEXT_BYTES = ascii(['channels', 'group']);

/** Where the fast path found the fields the accumulator needs (offsets into the bytes, -1: absent). */
export interface PlainEventAt {
  historyAt: number;
  keyStart: number;
  keyEnd: number;
}

function bytesEqual(b: Uint8Array, s: number, e: number, lit: Uint8Array): boolean {
  if (e - s !== lit.length) return false;
  for (let i = 0; i < lit.length; i++) if (b[s + i] !== lit[i]) return false;
  return true;
}

/** The known field at b[s, e), or -1 for any other name. */
function fieldAt(b: Uint8Array, s: number, e: number): number {
  const named = FIELDS_BY_LENGTH[e - s];
  if (named === undefined) return -1;
  for (let j = 0; j < named.length; j++) if (bytesEqual(b, s, e, named[j]![1])) return named[j]![0];
  return -1;
}

// Byte classes as tables: one load per byte in the loops every event goes through.
/** Bytes a plain string holds: printable ASCII but `"` and `\`. */
const PLAIN = new Uint8Array(256);
for (let c = 0x20; c < 0x7f; c++) PLAIN[c] = 1;
PLAIN[34] = PLAIN[92] = 0;
const WS = new Uint8Array(256);
for (const c of [32, 9, 10, 13]) WS[c] = 1;
const HEX_DIGIT = new Uint8Array(256);
for (const c of '0123456789abcdefABCDEF') HEX_DIGIT[c.charCodeAt(0)] = 1;

/** End of a plain string starting after its opening quote: printable ASCII, no backslash; -1 otherwise. */
function plainStringEnd(b: Uint8Array, p: number, end: number): number {
  while (p < end && PLAIN[b[p]!] === 1) p++;
  return p < end && b[p] === 34 ? p : -1;
}

function skipWs(b: Uint8Array, p: number, end: number): number {
  while (p < end && WS[b[p]!] === 1) p++;
  return p;
}

/** A UUID (isUuid's shape) at b[s] closed by a quote before `end`. */
function quotedUuidAt(b: Uint8Array, s: number, end: number): boolean {
  if (s + 36 >= end || b[s + 36] !== 34) return false;
  for (let i = 0; i < 36; i++) {
    const c = b[s + i]!;
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== 45) return false;
    } else if (HEX_DIGIT[c] === 0) return false;
  }
  return true;
}

function digitsAt(b: Uint8Array, at: number, n: number): number {
  let v = 0;
  for (let i = 0; i < n; i++) {
    const c = b[at + i]! - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

/** A day isDay certainly accepts; the unusual ones (29 February, years before 1000) go to the slow path. */
function dayBytes(b: Uint8Array, s: number, e: number): boolean {
  if (e - s !== 10 || b[s + 4] !== 45 || b[s + 7] !== 45) return false;
  const y = digitsAt(b, s, 4);
  const m = digitsAt(b, s + 5, 2);
  const d = digitsAt(b, s + 8, 2);
  return y >= 1000 && m >= 1 && m <= 12 && d >= 1 && d <= DAYS_IN_MONTH[m]! && !(m === 2 && d === 29);
}

function plainValue(f: number, b: Uint8Array, s: number, e: number, at: PlainEventAt): boolean {
  switch (f) {
    case F_DAY:
      return dayBytes(b, s, e);
    case F_KEY:
      at.keyStart = s;
      at.keyEnd = e;
      return true;
    case F_TRIGGER:
      return TRIGGER_BYTES.some((t) => bytesEqual(b, s, e, t));
    case F_CONTEXT:
      return CONTEXT_BYTES.some((t) => bytesEqual(b, s, e, t));
    case F_WINDOW:
      return false;
    default:
      return true;
  }
}

/** 4, 6, 12 or 24 at b[p]: the end of the number, or -1 (any other number goes to the slow path). */
function windowNumberEnd(b: Uint8Array, p: number, end: number): number {
  let q = p;
  while (q < end && b[q]! >= 48 && b[q]! <= 57) q++;
  const v = q - p <= 2 ? digitsAt(b, p, q - p) : -1;
  if (b[p] === 48 || !(v === 4 || v === 6 || v === 12 || v === 24)) return -1;
  return q;
}

/**
 * True only when JSON.parse + DigestGenerateEventSchema accept b[start, end) as an event; fills `at`
 * with where history_id and idempotency_key are. False means "ask the slow path", not "invalid".
 */
export function matchPlainEvent(b: Uint8Array, start: number, end: number, at: PlainEventAt): boolean {
  at.historyAt = at.keyStart = at.keyEnd = -1;
  let p = skipWs(b, start, end);
  if (b[p] !== 123 || p >= end) return false;
  p = skipWs(b, p + 1, end);
  let seen = 0;
  for (;;) {
    if (p >= end || b[p] !== 34) return false;
    const nameEnd = plainStringEnd(b, p + 1, end);
    if (nameEnd < 0) return false;
    const f = fieldAt(b, p + 1, nameEnd);
    p = skipWs(b, nameEnd + 1, end);
    if (p >= end || b[p] !== 58) return false;
    p = skipWs(b, p + 1, end);
    if (p >= end) return false;
    if (f >= 0) {
      // a repeated field: JSON.parse keeps the last one; not worth following here
      if (seen & (1 << f)) return false;
      seen |= 1 << f;
    }
    const c = b[p]!;
    if (c === 34 && (f === F_USER || f === F_TENANT || f === F_HISTORY)) {
      if (!quotedUuidAt(b, p + 1, end)) return false;
      if (f === F_HISTORY) at.historyAt = p + 1;
      p += 38;
    } else if (c === 34) {
      const vEnd = plainStringEnd(b, p + 1, end);
      if (vEnd < 0 || !plainValue(f, b, p + 1, vEnd, at)) return false;
      p = vEnd + 1;
    } else if (c === 110) {
      // null is absent: fine for an optional field, the required ones go to the slow path for the error
      if (p + 4 > end || b[p + 1] !== 117 || b[p + 2] !== 108 || b[p + 3] !== 108) return false;
      if (f >= 0 && REQUIRED & (1 << f)) return false;
      p += 4;
    } else if (f === F_WINDOW) {
      p = windowNumberEnd(b, p, end);
      if (p < 0) return false;
    } else return false;
    p = skipWs(b, p, end);
    if (p >= end) return false;
    if (b[p] === 44) {
      p = skipWs(b, p + 1, end);
      continue;
    }
    if (b[p] !== 125) return false;
    p = skipWs(b, p + 1, end);
    break;
  }
  if (p !== end) return false;
  // unknown fields and null optional ones never change the verdict: only the required three matter
  return (seen & REQUIRED) === REQUIRED;
}

/** ASCII bytes as a string (entry ids, UUIDs, keys the fast path accepted). */
export function asciiText(b: Uint8Array, s: number, e: number): string {
  return String.fromCharCode.apply(null, b.subarray(s, e) as unknown as number[]);
}

// Strict, as the worker decodes (Python's bytes.decode('utf-8')): a BOM is kept as text, a byte
// sequence that is not UTF-8 makes the entry malformed (never replaced by U+FFFD).
const utf8 = new TextDecoder('utf-8', { ignoreBOM: true, fatal: true });
const lenient = new TextDecoder('utf-8', { ignoreBOM: true });

/** The error an entry whose text is not UTF-8 is listed with. */
export function notUtf8Error(field: string): string {
  return `${field} is not valid UTF-8`;
}

/** `bytes` as UTF-8 text, or undefined when they are not valid UTF-8. */
export function strictUtf8(bytes: Uint8Array): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** `bytes` as UTF-8 text with any invalid sequence replaced by U+FFFD (for text the service never reads). */
export function lenientUtf8(bytes: Uint8Array): string {
  return lenient.decode(bytes);
}
