// The accumulator a whole-stream read feeds, one entry at a time. Pure. Memory is about 60 bytes per
// distinct history_id (typed arrays, no per-entry objects): a million-entry stream needs some 55 MB
// of tables; only the listed examples keep strings.
import { EVENT_FIELD } from '../contract.js';
import { asciiText, lenientUtf8, matchPlainEvent, notUtf8Error, strictUtf8, type PlainEventAt } from './event-bytes.js';
import { parseEntryEvent } from './event-text.js';
import { grow, HashIndex } from './hash-index.js';
import { hash64, hash64Bytes, uuidWords, uuidWordsAt, wordsToUuid } from './keys.js';

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
  /** history_id (four words) -> history ordinal. */
  private readonly history: HashIndex;
  /** First entry id per history ordinal, packed ms * 2048 + seq; -1: see oddIds. */
  private firstIds: Float64Array<ArrayBuffer>;
  /** Entries per history ordinal, saturating at 65535 (the totals count exactly). */
  private counts: Uint16Array<ArrayBuffer>;
  /** First entry ids that do not pack (sequence >= 2048, or explicit huge ids), by history ordinal. */
  private readonly oddIds = new Map<number, string>();
  /** Idempotency keys as 64-bit hashes -> the first history ordinal seen with each. */
  private readonly keys: HashIndex;
  private keyHistory: Int32Array<ArrayBuffer>;
  private keyConflicted: Uint8Array<ArrayBuffer>;
  private readonly dupExamples = new Map<number, DuplicateExample>();
  private readonly conflictExamples = new Map<number, { key: string; historyIds: Set<string> }>();
  /** Scratch for one key's words (uuidWords, hash64 and their byte forms write here): this scan's own. */
  private readonly words = new Uint32Array(4);
  /** Where the byte matcher found history_id and idempotency_key in the current entry: this scan's own. */
  private readonly at: PlainEventAt = { historyAt: -1, keyStart: -1, keyEnd: -1 };
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
    this.history = new HashIndex(4, cap);
    this.firstIds = new Float64Array(cap);
    this.counts = new Uint16Array(cap);
    this.keys = new HashIndex(2, cap);
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
    if (!dlq) for (let i = 0; i + 1 < flat.length; i += 2) if (flat[i]!.length === 4 && lenientUtf8(flat[i]!) === EVENT_FIELD) dataAt = i + 1;
    for (let i = 0; i < flat.length; i++) {
      if (dlq || i === dataAt) {
        const t = strictUtf8(flat[i]!);
        if (t === undefined) return this.addMalformed(id, notUtf8Error(dlq ? `field ${lenientUtf8(flat[i - (i % 2)]!)}` : EVENT_FIELD));
        text[i] = t;
      } else text[i] = lenientUtf8(flat[i]!);
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
    const w = uuidWords(historyId, this.words);
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
    const h = hash64(key, this.words);
    const k = this.keyConflict(h[0]!, h[1]!, o);
    if (k >= 0) this.conflictExample(k, key, historyId);
  }

  /**
   * One non-DLQ entry straight from the reply bytes: its id at b[idStart, idEnd), its `data` value at
   * b[dataStart, dataEnd) (dataStart < 0: no such field). The same verdicts as add(), without a
   * string or an object per entry when the event takes the fast path.
   */
  addRaw(b: Uint8Array, idStart: number, idEnd: number, dataStart: number, dataEnd: number): void {
    const at = this.at;
    if (dataStart < 0 || !matchPlainEvent(b, dataStart, dataEnd, at)) {
      const id = asciiText(b, idStart, idEnd);
      if (dataStart < 0) return this.add(id, [], false);
      const text = strictUtf8(b.subarray(dataStart, dataEnd));
      if (text === undefined) return this.addMalformed(id, notUtf8Error(EVENT_FIELD));
      this.add(id, [EVENT_FIELD, text], false);
      return;
    }
    this.totals.entries++;
    this.totals.valid++;
    const h = at.historyAt;
    if (h < 0) {
      this.totals.withoutHistoryId++;
      return;
    }
    const w = uuidWordsAt(b, h, this.words);
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
    if (at.keyStart < 0 || at.keyEnd === at.keyStart) return;
    const kh = hash64Bytes(b, at.keyStart, at.keyEnd, this.words);
    const k = this.keyConflict(kh[0]!, kh[1]!, o);
    if (k >= 0) this.conflictExample(k, asciiText(b, at.keyStart, at.keyEnd), asciiText(b, h, h + 36));
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
      this.keyConflicted = grow(this.keyConflicted, this.keyConflicted.length * 2);
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
    const w = uuidWords(historyId, this.words);
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
