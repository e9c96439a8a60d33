// `streams --scan`: the accumulator a whole-stream read feeds, one entry at a time. Pure. Memory is
// about 60 bytes per distinct history_id (typed arrays, no per-entry objects): a million-entry
// stream needs some 55 MB of tables; only the listed examples keep strings.
import { EVENT_FIELD, TRIGGERS } from './contract.js';
import { parseDlqEntry, parseEventJson, parseEventObject, type EventParseResult } from './event.js';
import { isDay } from './validate.js';

/** 128-bit keys -> dense ordinals 0..n-1: open addressing over an Int32Array of ordinals. */
export class U128Index {
  private keys: Uint32Array;
  private slots: Int32Array;
  private mask: number;
  size = 0;

  constructor(initialCapacity = 1024) {
    let cap = 16;
    while (cap * 3 < initialCapacity * 4) cap *= 2;
    this.slots = new Int32Array(cap).fill(-1);
    this.mask = cap - 1;
    this.keys = new Uint32Array(Math.max(16, initialCapacity) * 4);
  }

  private static hash(a: number, b: number, c: number, d: number): number {
    let h = a ^ Math.imul(b, 0x9e3779b1) ^ Math.imul(c, 0x85ebca6b) ^ Math.imul(d, 0xc2b2ae35);
    h ^= h >>> 16;
    h = Math.imul(h, 0x7feb352d);
    h ^= h >>> 15;
    h = Math.imul(h, 0x846ca68b);
    return (h ^ (h >>> 16)) >>> 0;
  }

  /** The ordinal of the key, or -1. */
  find(a: number, b: number, c: number, d: number): number {
    // compared with Uint32Array cells: signed inputs (results of ^, |) must be made unsigned
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    for (let i = U128Index.hash(a, b, c, d) & this.mask; ; i = (i + 1) & this.mask) {
      const o = this.slots[i]!;
      if (o < 0) return -1;
      const k = o * 4;
      if (this.keys[k] === a && this.keys[k + 1] === b && this.keys[k + 2] === c && this.keys[k + 3] === d) return o;
    }
  }

  /** The key's ordinal; a new key gets the next one (check `size` before and after to tell). */
  intern(a: number, b: number, c: number, d: number): number {
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    let i = U128Index.hash(a, b, c, d) & this.mask;
    for (; ; i = (i + 1) & this.mask) {
      const o = this.slots[i]!;
      if (o < 0) break;
      const k = o * 4;
      if (this.keys[k] === a && this.keys[k + 1] === b && this.keys[k + 2] === c && this.keys[k + 3] === d) return o;
    }
    const o = this.size++;
    if (o * 4 + 4 > this.keys.length) this.keys = grow(this.keys, this.keys.length * 2);
    const k = o * 4;
    this.keys[k] = a;
    this.keys[k + 1] = b;
    this.keys[k + 2] = c;
    this.keys[k + 3] = d;
    this.slots[i] = o;
    if (this.size * 4 > this.slots.length * 3) this.rehash();
    return o;
  }

  /** The four words of the key with this ordinal. */
  keyAt(o: number): [number, number, number, number] {
    const k = o * 4;
    return [this.keys[k]!, this.keys[k + 1]!, this.keys[k + 2]!, this.keys[k + 3]!];
  }

  private rehash(): void {
    const cap = this.slots.length * 2;
    this.slots = new Int32Array(cap).fill(-1);
    this.mask = cap - 1;
    for (let o = 0; o < this.size; o++) {
      const k = o * 4;
      let i = U128Index.hash(this.keys[k]!, this.keys[k + 1]!, this.keys[k + 2]!, this.keys[k + 3]!) & this.mask;
      while (this.slots[i]! >= 0) i = (i + 1) & this.mask;
      this.slots[i] = o;
    }
  }
}

/** 64-bit keys (hashes) -> dense ordinals: the same table as U128Index at half the key size. */
export class U64Index {
  private keys: Uint32Array;
  private slots: Int32Array;
  private mask: number;
  size = 0;

  constructor(initialCapacity = 1024) {
    let cap = 16;
    while (cap * 3 < initialCapacity * 4) cap *= 2;
    this.slots = new Int32Array(cap).fill(-1);
    this.mask = cap - 1;
    this.keys = new Uint32Array(Math.max(16, initialCapacity) * 2);
  }

  private static hash(a: number, b: number): number {
    let h = a ^ Math.imul(b, 0x9e3779b1);
    h ^= h >>> 16;
    h = Math.imul(h, 0x7feb352d);
    h ^= h >>> 15;
    return (h ^ (h >>> 16)) >>> 0;
  }

  intern(a: number, b: number): number {
    a >>>= 0;
    b >>>= 0;
    let i = U64Index.hash(a, b) & this.mask;
    for (; ; i = (i + 1) & this.mask) {
      const o = this.slots[i]!;
      if (o < 0) break;
      if (this.keys[o * 2] === a && this.keys[o * 2 + 1] === b) return o;
    }
    const o = this.size++;
    if (o * 2 + 2 > this.keys.length) this.keys = grow(this.keys, this.keys.length * 2);
    this.keys[o * 2] = a;
    this.keys[o * 2 + 1] = b;
    this.slots[i] = o;
    if (this.size * 4 > this.slots.length * 3) {
      this.slots = new Int32Array(this.slots.length * 2).fill(-1);
      this.mask = this.slots.length - 1;
      for (let k = 0; k < this.size; k++) {
        let j = U64Index.hash(this.keys[k * 2]!, this.keys[k * 2 + 1]!) & this.mask;
        while (this.slots[j]! >= 0) j = (j + 1) & this.mask;
        this.slots[j] = k;
      }
    }
    return o;
  }
}

type Growable = Uint32Array | Uint16Array | Float64Array | Int32Array;

/** A copy of `a` with room for `n` elements, of the same typed-array kind. */
function grow<T extends Growable>(a: T, n: number): T {
  const b = new (a.constructor as new (length: number) => T)(n);
  b.set(a as ArrayLike<number>);
  return b;
}

const U = new Uint32Array(4);
const HEX = new Int8Array(128).fill(-1);
for (let i = 0; i < 16; i++) HEX['0123456789abcdef'.charCodeAt(i)] = HEX['0123456789ABCDEF'.charCodeAt(i)] = i;

/** A UUID string as four 32-bit words (case does not matter); charCode arithmetic, no substrings. */
export function uuidWords(uuid: string): Uint32Array {
  let w = 0;
  let nibbles = 0;
  for (let i = 0; i < uuid.length && nibbles < 32; i++) {
    const v = HEX[uuid.charCodeAt(i)] ?? -1;
    if (v < 0) continue;
    w = (w << 4) | v;
    if ((++nibbles & 7) === 0) {
      U[(nibbles >> 3) - 1] = w;
      w = 0;
    }
  }
  return U;
}

const hex8 = (n: number) => n.toString(16).padStart(8, '0');
/** The inverse of uuidWords: lower-case 8-4-4-4-12. */
export function wordsToUuid(w: readonly number[]): string {
  const [a, b, c, d] = w.map(hex8) as [string, string, string, string];
  return `${a}-${b.slice(0, 4)}-${b.slice(4)}-${c.slice(0, 4)}-${c.slice(4)}${d}`;
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** A 64-bit hash of any string (two independent 32-bit lanes): a compact identity for idempotency keys. */
export function hash64(s: string): Uint32Array {
  let a = 0x811c9dc5;
  let b = 0x5bd1e995;
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    a = Math.imul(a ^ ch, 0x01000193);
    b = Math.imul(b ^ ch, 0x27d4eb2d) ^ (b >>> 15);
  }
  U[0] = fmix(a ^ s.length);
  U[1] = fmix(b);
  return U;
}


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
const OPTIONAL_STRINGS = ['schema_version', 'trace_id', 'occurred_at', 'idempotency_key', 'requested_by', 'group_id', 'group_window_id', 'delivery_channel', 'delivery_format'] as const;
const TRIGGER_SET = new Set<unknown>(TRIGGERS);
const CONTEXTS = new Set<unknown>(['channels', 'group']);
const WINDOWS = new Set<unknown>([4, 6, 12, 24]);

const DAYS_IN_MONTH = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
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

// ---- The byte-level fast path: an entry's `data` read straight from the reply bytes ----
// Accepts only a narrow subset of JSON (a flat object of plain ASCII strings without escapes, nulls,
// and 4/6/12/24 for window_size_hours; no repeated known field) whose every member the schema
// accepts; anything else returns false and goes to JSON.parse + the schema for the verdict.

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

/** hash64 of the ASCII text at b[s, e): the same words as hash64 of that string. */
export function hash64Bytes(b: Uint8Array, s: number, e: number): Uint32Array {
  let a = 0x811c9dc5;
  let h = 0x5bd1e995;
  for (let i = s; i < e; i++) {
    const ch = b[i]!;
    a = Math.imul(a ^ ch, 0x01000193);
    h = Math.imul(h ^ ch, 0x27d4eb2d) ^ (h >>> 15);
  }
  U[0] = fmix(a ^ (e - s));
  U[1] = fmix(h);
  return U;
}

/** uuidWords of the 36 ASCII bytes at b[s]. */
export function uuidWordsAt(b: Uint8Array, s: number): Uint32Array {
  let w = 0;
  let nibbles = 0;
  for (let i = s; i < s + 36; i++) {
    const v = HEX[b[i]!] ?? -1;
    if (v < 0) continue;
    w = (w << 4) | v;
    if ((++nibbles & 7) === 0) {
      U[(nibbles >> 3) - 1] = w;
      w = 0;
    }
  }
  return U;
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
const AT: PlainEventAt = { historyAt: -1, keyStart: -1, keyEnd: -1 };

export interface ScanLimits {
  /** Examples listed per kind of finding. */
  examples: number;
  /** Entry ids listed per duplicated history_id. */
  idsPerExample: number;
}

export interface DuplicateExample {
  historyId: string;
  count: number;
  entryIds: string[];
}

export interface ScanTotals {
  entries: number;
  valid: number;
  withoutHistoryId: number;
  distinctHistoryIds: number;
  malformed: { count: number; examples: Array<{ id: string; error: string }> };
  duplicates: { historyIds: number; extraEntries: number; examples: DuplicateExample[] };
  idempotencyConflicts: { keys: number; extraHistoryIds: number; examples: Array<{ key: string; historyIds: string[] }> };
}

/** Feeds on entries in id order; keeps compact per-history_id state and capped examples. */
export class ScanAccumulator {
  private readonly history: U128Index;
  /** First entry id per history ordinal, packed ms * 2048 + seq; -1: see oddIds. */
  private firstIds: Float64Array<ArrayBuffer>;
  /** Entries per history ordinal, saturating at 65535 (the totals count exactly). */
  private counts: Uint16Array<ArrayBuffer>;
  /** First entry ids that do not pack (sequence >= 2048, or explicit huge ids), by history ordinal. */
  private readonly oddIds = new Map<number, string>();
  /** Idempotency keys as 64-bit hashes -> the first history ordinal seen with each. */
  private readonly keys: U64Index;
  private keyHistory: Int32Array<ArrayBuffer>;
  private keyConflicted: Uint8Array<ArrayBuffer>;
  private readonly dupExamples = new Map<number, DuplicateExample>();
  private readonly conflictExamples = new Map<number, { key: string; historyIds: Set<string> }>();
  /** History ids seen for the first time since the last drain (for the database lookup). */
  private fresh: string[] = [];
  readonly totals: ScanTotals = {
    entries: 0,
    valid: 0,
    withoutHistoryId: 0,
    distinctHistoryIds: 0,
    malformed: { count: 0, examples: [] },
    duplicates: { historyIds: 0, extraEntries: 0, examples: [] },
    idempotencyConflicts: { keys: 0, extraHistoryIds: 0, examples: [] },
  };

  /** `expectedEntries` (the stream's length) sizes the tables once, so they never grow by copying. */
  constructor(
    readonly limits: ScanLimits,
    private readonly collectFresh = false,
    expectedEntries = 1024,
  ) {
    const cap = Math.min(Math.max(expectedEntries, 1024), 4_000_000);
    this.history = new U128Index(cap);
    this.firstIds = new Float64Array(cap);
    this.counts = new Uint16Array(cap);
    this.keys = new U64Index(cap);
    this.keyHistory = new Int32Array(cap);
    this.keyConflicted = new Uint8Array(cap);
  }

  /** An entry that does not parse, with the reason. */
  addMalformed(id: string, error: string): void {
    this.totals.entries++;
    this.totals.malformed.count++;
    if (this.totals.malformed.examples.length < this.limits.examples) this.totals.malformed.examples.push({ id, error });
  }

  /**
   * An entry as reply bytes (ioredis xrangeBuffer): the text the service reads is decoded strictly,
   * as the worker does: the effective `data` value of an event (the last one, as JSON.parse of the
   * fields would keep), every field of a DLQ entry. Bytes that are not UTF-8 make it malformed.
   * Other fields of an event are never read by the service and are not checked.
   */
  addBuffers(id: string, flat: readonly Uint8Array[], dlq: boolean): void {
    const text: string[] = new Array<string>(flat.length);
    let dataAt = -1;
    if (!dlq) for (let i = 0; i + 1 < flat.length; i += 2) if (flat[i]!.length === 4 && lenient.decode(flat[i]) === EVENT_FIELD) dataAt = i + 1;
    for (let i = 0; i < flat.length; i++) {
      if (dlq || i === dataAt) {
        const t = strictUtf8(flat[i]!);
        if (t === undefined) return this.addMalformed(id, notUtf8Error(dlq ? `field ${lenient.decode(flat[i - (i % 2)])}` : EVENT_FIELD));
        text[i] = t;
      } else text[i] = lenient.decode(flat[i]);
    }
    this.add(id, text, dlq);
  }

  add(id: string, flat: readonly string[], dlq: boolean): void {
    const parsed = parseEntryEvent(flat, dlq);
    if (!parsed.ok) return this.addMalformed(id, parsed.error);
    this.totals.entries++;
    this.totals.valid++;
    const historyId = parsed.event.history_id;
    if (!historyId) {
      this.totals.withoutHistoryId++;
      return;
    }
    const w = uuidWords(historyId);
    const before = this.history.size;
    const o = this.history.intern(w[0]!, w[1]!, w[2]!, w[3]!);
    if (this.history.size === before) {
      this.seenAgain(o, id, historyId);
      return;
    }
    const dash = id.indexOf('-');
    this.firstSeen(o, Number(id.slice(0, dash)), Number(id.slice(dash + 1)), id, historyId);
    const key = parsed.event.idempotency_key;
    if (!key) return;
    const h = hash64(key);
    const k = this.keyConflict(h[0]!, h[1]!, o);
    if (k >= 0) this.conflictExample(k, key, historyId);
  }

  /**
   * One non-DLQ entry straight from the reply bytes: its id at b[idStart, idEnd), its `data` value at
   * b[dataStart, dataEnd) (dataStart < 0: no such field). The same verdicts as add(), without a
   * string or an object per entry when the event takes the fast path.
   */
  addRaw(b: Uint8Array, idStart: number, idEnd: number, dataStart: number, dataEnd: number): void {
    if (dataStart < 0 || !matchPlainEvent(b, dataStart, dataEnd, AT)) {
      const id = asciiText(b, idStart, idEnd);
      if (dataStart < 0) return this.add(id, [], false);
      const text = strictUtf8(b.subarray(dataStart, dataEnd));
      if (text === undefined) return this.addMalformed(id, notUtf8Error(EVENT_FIELD));
      this.add(id, [EVENT_FIELD, text], false);
      return;
    }
    this.totals.entries++;
    this.totals.valid++;
    const h = AT.historyAt;
    if (h < 0) {
      this.totals.withoutHistoryId++;
      return;
    }
    const w = uuidWordsAt(b, h);
    const before = this.history.size;
    const o = this.history.intern(w[0]!, w[1]!, w[2]!, w[3]!);
    if (this.history.size === before) {
      this.seenAgain(o, asciiText(b, idStart, idEnd), asciiText(b, h, h + 36));
      return;
    }
    let ms = 0;
    let p = idStart;
    for (; p < idEnd && b[p] !== 45; p++) ms = ms * 10 + b[p]! - 48;
    let seq = 0;
    for (p++; p < idEnd; p++) seq = seq * 10 + b[p]! - 48;
    const packs = ms < 2 ** 42 && seq < 2048;
    this.firstSeen(o, ms, seq, packs ? undefined : asciiText(b, idStart, idEnd), this.collectFresh ? asciiText(b, h, h + 36) : undefined);
    if (AT.keyStart < 0 || AT.keyEnd === AT.keyStart) return;
    const kh = hash64Bytes(b, AT.keyStart, AT.keyEnd);
    const k = this.keyConflict(kh[0]!, kh[1]!, o);
    if (k >= 0) this.conflictExample(k, asciiText(b, AT.keyStart, AT.keyEnd), asciiText(b, h, h + 36));
  }

  /** A history ordinal's first entry (ms-seq; `id` is the text, needed only when it does not pack). */
  private firstSeen(o: number, ms: number, seq: number, id: string | undefined, historyId: string | undefined): void {
    if (o >= this.counts.length) {
      const n = this.counts.length * 2;
      this.firstIds = grow(this.firstIds, n);
      this.counts = grow(this.counts, n);
    }
    // 42 bits of ms (until year 2109) and 11 of sequence fit a double exactly
    if (ms < 2 ** 42 && seq < 2048) this.firstIds[o] = ms * 2048 + seq;
    else {
      this.firstIds[o] = -1;
      this.oddIds.set(o, id ?? `${ms}-${seq}`);
    }
    this.counts[o] = 1;
    this.totals.distinctHistoryIds++;
    if (this.collectFresh && historyId !== undefined) this.fresh.push(historyId);
  }

  private seenAgain(o: number, id: string, historyId: string): void {
    const n = this.counts[o]! < 65535 ? ++this.counts[o]! : 65535;
    this.totals.duplicates.extraEntries++;
    if (n === 2) this.totals.duplicates.historyIds++;
    let ex = this.dupExamples.get(o);
    if (!ex && n === 2 && this.dupExamples.size < this.limits.examples) {
      ex = { historyId: historyId.toLowerCase(), count: 1, entryIds: [this.firstEntryId(o)] };
      this.dupExamples.set(o, ex);
    }
    if (ex) {
      ex.count = n;
      if (ex.entryIds.length < this.limits.idsPerExample) ex.entryIds.push(id);
    }
  }

  /**
   * One idempotency key (one user and day) bound to several distinct history_ids: interns the key's
   * hash for this new history ordinal; returns the key's ordinal when that makes a conflict, else -1.
   */
  private keyConflict(h0: number, h1: number, historyOrdinal: number): number {
    const before = this.keys.size;
    const k = this.keys.intern(h0, h1);
    if (k >= this.keyHistory.length) {
      this.keyHistory = grow(this.keyHistory, this.keyHistory.length * 2);
      const c = new Uint8Array(this.keyConflicted.length * 2);
      c.set(this.keyConflicted);
      this.keyConflicted = c;
    }
    if (this.keys.size > before) {
      this.keyHistory[k] = historyOrdinal;
      return -1;
    }
    return k;
  }

  /** Counts a conflict found by keyConflict and keeps capped examples. */
  private conflictExample(k: number, key: string, historyId: string): void {
    const c = this.totals.idempotencyConflicts;
    c.extraHistoryIds++;
    if (!this.keyConflicted[k]) {
      this.keyConflicted[k] = 1;
      c.keys++;
      if (this.conflictExamples.size < this.limits.examples) {
        this.conflictExamples.set(k, { key, historyIds: new Set([this.historyIdOf(this.keyHistory[k]!)]) });
      }
    }
    this.conflictExamples.get(k)?.historyIds.add(historyId.toLowerCase());
  }

  /** The history_id text of an ordinal, rebuilt from the 128 bits the index keeps. */
  private historyIdOf(o: number): string {
    return wordsToUuid(this.history.keyAt(o));
  }

  firstEntryId(o: number): string {
    const v = this.firstIds[o]!;
    if (v < 0) return this.oddIds.get(o)!;
    const ms = Math.floor(v / 2048);
    return `${ms}-${v - ms * 2048}`;
  }

  /** The first entry id and entry count of a history_id seen in the scan. */
  lookup(historyId: string): { firstEntryId: string; count: number } | undefined {
    const w = uuidWords(historyId);
    const o = this.history.find(w[0]!, w[1]!, w[2]!, w[3]!);
    return o < 0 ? undefined : { firstEntryId: this.firstEntryId(o), count: this.counts[o]! };
  }

  /** History ids first seen since the last call. */
  drainFresh(): string[] {
    const out = this.fresh;
    this.fresh = [];
    return out;
  }

  result(): ScanTotals {
    this.totals.duplicates.examples = [...this.dupExamples.values()];
    this.totals.idempotencyConflicts.examples = [...this.conflictExamples.values()].map((e) => ({ key: e.key, historyIds: [...e.historyIds] }));
    return this.totals;
  }
}

/** Rows the database says about the scanned history ids: `sent` already, or no row at all. */
export class RowCheck {
  private readonly sentIds: string[] = [];
  private readonly missingIds: string[] = [];
  sent = 0;
  missing = 0;
  checked = 0;

  constructor(private readonly examples: number) {}

  record(historyIds: readonly string[], statusById: ReadonlyMap<string, string>): void {
    for (const h of historyIds) {
      this.checked++;
      const status = statusById.get(h.toLowerCase());
      if (status === undefined) {
        this.missing++;
        if (this.missingIds.length < this.examples) this.missingIds.push(h.toLowerCase());
      } else if (status === 'sent') {
        this.sent++;
        if (this.sentIds.length < this.examples) this.sentIds.push(h.toLowerCase());
      }
    }
  }

  /** Counts and examples, each with its first entry id and entry count as the whole scan saw them. */
  result(scan: ScanAccumulator) {
    const example = (historyId: string) => {
      const seen = scan.lookup(historyId);
      return { historyId, firstEntryId: seen?.firstEntryId ?? '', entries: seen?.count ?? 0 };
    };
    return {
      checked: this.checked,
      sent: { count: this.sent, examples: this.sentIds.map(example) },
      missing: { count: this.missing, examples: this.missingIds.map(example) },
    };
  }
}
