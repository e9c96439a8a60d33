import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseEventJson, parseEventObject, serializeEvent } from '../../src/core/event.js';
import { hash64, parseEntryEvent, plainlyValidEvent, RowCheck, ScanAccumulator, U128Index, uuidWords, wordsToUuid } from '../../src/core/stream-scan.js';

const TENANT = '0b7a43c2-9d4e-4b8a-9f1e-2c3d4e5f6a7b';
const USER = '6af5e7d3-e736-46da-bfc1-42786f2ab1c0';

const base = (over: Record<string, unknown> = {}) => ({
  schema_version: 'v1',
  trace_id: randomUUID(),
  occurred_at: '2025-11-25T15:36:57.291323+00:00',
  idempotency_key: `digest:${USER}:2025-11-25`,
  user_id: USER,
  tenant_id: TENANT,
  digest_date: '2025-11-25',
  trigger: 'manual',
  history_id: randomUUID(),
  context: 'channels',
  delivery_channel: 'telegram',
  delivery_format: 'markdown',
  ...over,
});
const entry = (event: Record<string, unknown>) => ['data', serializeEvent(event)];

describe('U128Index', () => {
  it('gives dense ordinals, finds every key again across rehashes', () => {
    const ix = new U128Index(4);
    const keys = Array.from({ length: 20_000 }, (_, i) => [i, i * 7, ~i >>> 0, 0xdeadbeef ^ i] as const);
    keys.forEach((k, i) => expect(ix.intern(...k)).toBe(i));
    expect(ix.size).toBe(keys.length);
    keys.forEach((k, i) => {
      expect(ix.intern(...k)).toBe(i);
      expect(ix.find(...k)).toBe(i);
      expect(ix.keyAt(i)).toEqual(k.map((x) => x >>> 0));
    });
    expect(ix.find(1, 2, 3, 4)).toBe(-1);
    expect(ix.size).toBe(keys.length);
  });
});

describe('uuidWords / wordsToUuid / hash64', () => {
  it('round-trips a UUID, ignoring case', () => {
    const u = randomUUID();
    expect(wordsToUuid([...uuidWords(u)])).toBe(u);
    expect([...uuidWords(u.toUpperCase())]).toEqual([...uuidWords(u)]);
    expect(wordsToUuid([...uuidWords('00000000-0000-4000-8000-00000000000a')])).toBe('00000000-0000-4000-8000-00000000000a');
  });
  it('hashes near-identical keys apart', () => {
    const seen = new Set<string>();
    for (let d = 1; d <= 28; d++) for (const u of [USER, TENANT]) seen.add([...hash64(`digest:${u}:2025-11-${String(d).padStart(2, '0')}`)].join(','));
    expect(seen.size).toBe(56);
    expect([...hash64('ab')]).not.toEqual([...hash64('ba')]);
  });
});

describe('plainlyValidEvent never accepts what the schema rejects', () => {
  const variants: Record<string, unknown[]> = {
    user_id: [USER, USER.toUpperCase(), 'nope', '', 42, null, undefined, `${USER}x`, USER.replace(/-/g, '_')],
    tenant_id: [TENANT, 'x', null, 7],
    digest_date: ['2025-11-25', '202+-11-25', '2x25-11-25', '2025-1+-25', '2024-02-29', '2025-02-29', '2025-13-01', '2025-11-31', '0000-01-01', '0099-05-05', '2025-1-25', '25-11-2025', 20251125, null],
    history_id: [randomUUID(), null, undefined, 'h', 5],
    trigger: ['manual', 'scheduler', 'scheduler_retry', 'cron', null, 1],
    context: ['channels', 'group', 'dm', null],
    window_size_hours: [4, 6, 12, 24, 5, '4', null],
    idempotency_key: ['k', 3, null, {}],
    requested_by: ['1.2.3.4', 12, null],
    extra_unknown_field: [1, 'x', null, { a: 1 }],
  };
  for (const [field, values] of Object.entries(variants)) {
    it(`${field}`, () => {
      for (const v of values) {
        const o = base({ [field]: v });
        if (v === undefined) delete o[field];
        const fast = plainlyValidEvent(o);
        const schema = parseEventObject(o).ok;
        if (fast) expect(schema, `${field}=${JSON.stringify(v)}`).toBe(true);
        // every well-formed value takes the fast path (else the scan would be slow for nothing)
        if (schema && v !== null && typeof v !== 'object') expect(fast, `${field}=${JSON.stringify(v)}`).toBe(true);
      }
    });
  }
});

describe('parseEntryEvent agrees with JSON.parse + the schema', () => {
  it('on thousands of random corruptions of a valid event', () => {
    const text = serializeEvent(base({ window_size_hours: 24 }));
    const alphabet = ['"', '\\', '{', '}', '[', ']', ',', ':', ' ', '0', '1', '9', '-', '+', '.', 'e', 'n', 'u', 'l', 'x', 'A', 'é'];
    let seed = 7;
    const rnd = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    let valid = 0;
    for (let k = 0; k < 5000; k++) {
      let t = text;
      for (let m = 0; m <= rnd(2); m++) {
        const at = rnd(t.length);
        const ch = alphabet[rnd(alphabet.length)]!;
        const op = rnd(3);
        t = op === 0 ? t.slice(0, at) + ch + t.slice(at) : op === 1 ? t.slice(0, at) + t.slice(at + 1) : t.slice(0, at) + ch + t.slice(at + 1);
      }
      const fast = parseEntryEvent(['data', t], false);
      const slow = parseEventJson(t);
      expect(fast.ok, t).toBe(slow.ok);
      if (fast.ok && slow.ok) {
        valid++;
        expect(fast.event.history_id).toBe(slow.event.history_id);
        expect(fast.event.idempotency_key).toBe(slow.event.idempotency_key);
      }
    }
    expect(valid).toBeGreaterThan(0);
  });
});

describe('parseEntryEvent', () => {
  it('reads the data field; reports a missing field and bad JSON without throwing', () => {
    expect(parseEntryEvent(entry(base()), false).ok).toBe(true);
    expect(parseEntryEvent(['payload', '{}'], false)).toEqual({ ok: false, error: 'entry has no data field' });
    const bad = parseEntryEvent(['data', '{nope'], false);
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.error).toMatch(/not JSON/);
    const schema = parseEntryEvent(['data', '{"user_id":"x"}'], false);
    expect(!schema.ok && schema.error).toMatch(/user_id/);
    expect(parseEntryEvent(['data', '[1]'], false).ok).toBe(false);
  });
  it('reads both DLQ shapes', () => {
    const e = base();
    const flat = ['original_stream', 's', 'original_message_id', '1-0', 'error', 'boom', 'retry_count', '3', 'failed_at', 'now', 'data', serializeEvent(e)];
    expect(parseEntryEvent(flat, true)).toMatchObject({ ok: true, event: { history_id: e.history_id } });
    const embedded = ['data', JSON.stringify({ ...e, dlq_reason: 'max', retry_count: 3, origin_stream: 's' })];
    expect(parseEntryEvent(embedded, true)).toMatchObject({ ok: true, event: { history_id: e.history_id } });
    expect(parseEntryEvent(['data', '{"dlq_reason":"x"}'], true).ok).toBe(false);
  });
});

describe('ScanAccumulator', () => {
  const limits = { examples: 2, idsPerExample: 3 };

  it('finds duplicate history_ids with their entry ids, capped, and counts all of them', () => {
    const acc = new ScanAccumulator(limits);
    const hs = [randomUUID(), randomUUID(), randomUUID()];
    let n = 0;
    for (const h of hs) for (let k = 0; k < 4; k++) acc.add(`100-${n++}`, entry(base({ history_id: h, idempotency_key: `digest:${USER}:${h}` })), false);
    acc.add('100-99', entry(base()), false);
    const r = acc.result();
    expect(r).toMatchObject({ entries: 13, valid: 13, distinctHistoryIds: 4 });
    expect(r.duplicates.historyIds).toBe(3);
    expect(r.duplicates.extraEntries).toBe(9);
    expect(r.duplicates.examples).toEqual([
      { historyId: hs[0], count: 4, entryIds: ['100-0', '100-1', '100-2'] },
      { historyId: hs[1], count: 4, entryIds: ['100-4', '100-5', '100-6'] },
    ]);
    expect(acc.lookup(hs[2]!)).toEqual({ firstEntryId: '100-8', count: 4 });
    expect(acc.lookup(hs[2]!.toUpperCase())).toEqual({ firstEntryId: '100-8', count: 4 });
    expect(acc.lookup(randomUUID())).toBeUndefined();
  });

  it('finds an idempotency key bound to several history_ids; a republished history_id is not a conflict', () => {
    const acc = new ScanAccumulator(limits);
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
    const key = `digest:${USER}:2025-11-25`;
    acc.add('1-0', entry(base({ history_id: a })), false);
    acc.add('2-0', entry(base({ history_id: a })), false);
    acc.add('3-0', entry(base({ history_id: b })), false);
    acc.add('4-0', entry(base({ history_id: c })), false);
    acc.add('5-0', entry(base({ history_id: randomUUID(), idempotency_key: `digest:${USER}:2025-11-26` })), false);
    const r = acc.result().idempotencyConflicts;
    expect(r.keys).toBe(1);
    expect(r.extraHistoryIds).toBe(2);
    expect(r.examples).toEqual([{ key, historyIds: [a, b, c] }]);
  });

  it('counts malformed entries, lists the first ones with the error, and keeps going', () => {
    const acc = new ScanAccumulator(limits);
    acc.add('1-0', ['data', 'nope'], false);
    acc.add('2-0', ['x', 'y'], false);
    acc.add('3-0', ['data', '{"user_id":1}'], false);
    acc.add('4-0', entry(base({ history_id: undefined })), false);
    const r = acc.result();
    expect(r.malformed.count).toBe(3);
    expect(r.malformed.examples.map((m) => m.id)).toEqual(['1-0', '2-0']);
    expect(r).toMatchObject({ entries: 4, valid: 1, withoutHistoryId: 1, distinctHistoryIds: 0 });
  });

  it('keeps entry ids past 2^53 exactly', () => {
    const acc = new ScanAccumulator(limits);
    const h = randomUUID();
    acc.add('18446744073709551615-18446744073709551615', entry(base({ history_id: h })), false);
    expect(acc.lookup(h)?.firstEntryId).toBe('18446744073709551615-18446744073709551615');
  });

  it('packs ordinary first ids and keeps odd ones (sequence >= 2048) exactly, past the initial table size', () => {
    const acc = new ScanAccumulator(limits, false, 10);
    const hs = Array.from({ length: 5000 }, () => randomUUID());
    hs.forEach((h, i) => acc.add(`1764085000000-${i}`, entry(base({ history_id: h, idempotency_key: `k${i}` })), false));
    expect(acc.lookup(hs[7]!)).toEqual({ firstEntryId: '1764085000000-7', count: 1 });
    expect(acc.lookup(hs[4999]!)).toEqual({ firstEntryId: '1764085000000-4999', count: 1 });
    acc.add('1764085000001-0', entry(base({ history_id: hs[4999], idempotency_key: 'k4999' })), false);
    expect(acc.result()).toMatchObject({ distinctHistoryIds: 5000, duplicates: { historyIds: 1, extraEntries: 1 }, idempotencyConflicts: { keys: 0 } });
    expect(acc.result().duplicates.examples[0]!.entryIds).toEqual(['1764085000000-4999', '1764085000001-0']);
  });

  it('hands out each new history_id once for the database lookup', () => {
    const acc = new ScanAccumulator(limits, true);
    const h = randomUUID();
    acc.add('1-0', entry(base({ history_id: h })), false);
    acc.add('2-0', entry(base({ history_id: h })), false);
    expect(acc.drainFresh()).toEqual([h]);
    expect(acc.drainFresh()).toEqual([]);
  });
});

describe('RowCheck', () => {
  it('counts sent and missing rows; examples carry the final entry count', () => {
    const acc = new ScanAccumulator({ examples: 5, idsPerExample: 5 });
    const [sent, pending, missing] = [randomUUID(), randomUUID(), randomUUID()];
    acc.add('1-0', entry(base({ history_id: sent })), false);
    acc.add('2-0', entry(base({ history_id: pending })), false);
    acc.add('3-0', entry(base({ history_id: missing })), false);
    const rows = new RowCheck(1);
    rows.record([sent, pending, missing], new Map([[sent, 'sent'], [pending, 'pending']]));
    acc.add('4-0', entry(base({ history_id: sent })), false);
    expect(rows.result(acc)).toEqual({
      checked: 3,
      sent: { count: 1, examples: [{ historyId: sent, firstEntryId: '1-0', entries: 2 }] },
      missing: { count: 1, examples: [{ historyId: missing, firstEntryId: '3-0', entries: 1 }] },
    });
  });
});
