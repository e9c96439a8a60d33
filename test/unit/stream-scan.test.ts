import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DigestGenerateEventSchema, parseEventJson, parseEventObject, serializeEvent } from '../../src/core/event.js';
import { hash64, hash64Bytes, matchPlainEvent, parseEntryEvent, plainlyValidEvent, RowCheck, ScanAccumulator, U128Index, uuidWords, uuidWordsAt, wordsToUuid, type PlainEventAt } from '../../src/core/stream-scan/index.js';

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

/** Random small edits of `text` (insert, delete, replace) from an alphabet of JSON's troublemakers. */
function corruptions(text: string, n: number, seed: number): string[] {
  const alphabet = ['"', '\\', '{', '}', '[', ']', ',', ':', ' ', '\n', '\t', '\u0001', '0', '1', '4', '9', '-', '+', '.', 'e', 'n', 'u', 'l', 'x', 'A', 'é', '\u007f'];
  const rnd = (k: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % k;
  };
  const out: string[] = [];
  for (let k = 0; k < n; k++) {
    let t = text;
    for (let m = 0; m <= rnd(2); m++) {
      const at = rnd(t.length);
      const ch = alphabet[rnd(alphabet.length)]!;
      const op = rnd(3);
      t = op === 0 ? t.slice(0, at) + ch + t.slice(at) : op === 1 ? t.slice(0, at) + t.slice(at + 1) : t.slice(0, at) + ch + t.slice(at + 1);
    }
    out.push(t);
  }
  return out;
}

describe('matchPlainEvent (the byte-level fast path) never accepts what JSON.parse + the schema reject', () => {
  const enc = new TextEncoder();
  /** The fast path's verdict on `text`, checked against the slow path whenever it says yes. */
  const check = (text: string): boolean => {
    // padding on both sides: offsets into a larger buffer, as in a reply
    const b = enc.encode(`xx${text}yy`);
    const at: PlainEventAt = { historyAt: 0, keyStart: 0, keyEnd: 0 };
    const fast = matchPlainEvent(b, 2, b.length - 2, at);
    if (!fast) return false;
    const slow = parseEventJson(text);
    expect(slow.ok, text).toBe(true);
    if (!slow.ok) return true;
    const h = slow.event.history_id;
    expect(at.historyAt >= 0 ? wordsToUuid([...uuidWordsAt(b, at.historyAt)]) : undefined, text).toBe(h?.toLowerCase());
    const key = slow.event.idempotency_key;
    expect(at.keyStart >= 0 ? new TextDecoder().decode(b.subarray(at.keyStart, at.keyEnd)) : undefined, text).toBe(key);
    if (key) expect([...hash64Bytes(b, at.keyStart, at.keyEnd)]).toEqual([...hash64(key)]);
    return true;
  };
  const python = (o: Record<string, unknown>) => JSON.stringify(o).replace(/","/g, '", "').replace(/":"/g, '": "');

  it('takes the common shapes: the service\'s and ours, compact or spaced, with nulls and window sizes', () => {
    expect(check(serializeEvent(base()))).toBe(true);
    expect(check(python(base()))).toBe(true);
    expect(check(` \n${JSON.stringify(base({ window_size_hours: 12, requested_by: null, extra: 'x', history_id: null }), null, 2)}\t`)).toBe(true);
    expect(check(serializeEvent(base({ user_id: USER.toUpperCase(), history_id: undefined, idempotency_key: undefined })))).toBe(true);
  });

  it('on every field variant', () => {
    const variants: Record<string, unknown[]> = {
      user_id: [USER, USER.toUpperCase(), 'nope', '', 42, null, `${USER}x`, USER.replace(/-/g, '_'), { a: 1 }],
      tenant_id: [TENANT, 'x', null, 7],
      digest_date: ['2025-11-25', '202+-11-25', '2x25-11-25', '2025-1+-25', '2024-02-29', '2025-02-29', '2025-13-01', '2025-11-31', '2025-11-00', '0000-01-01', '0099-05-05', '0999-05-05', '2025-1-25', '25-11-2025', 20251125, null],
      history_id: [randomUUID(), randomUUID().toUpperCase(), null, 'h', 5, ''],
      trigger: ['manual', 'scheduler', 'scheduler_retry', 'cron', 'Manual', '', null, 1],
      context: ['channels', 'group', 'dm', null, true],
      window_size_hours: [4, 6, 12, 24, 5, 0, 40, 124, 4.5, -4, '4', null, Infinity],
      idempotency_key: ['k', '', 'ключ', 'a\\b', 'tab\there', 3, null, {}],
      requested_by: ['1.2.3.4', 12, null, false],
      extra_unknown_field: [1, 'x', null, { a: 1 }, [1], true],
      __proto__: ['x', null, { user_id: 'x' }],
    };
    for (const [field, values] of Object.entries(variants)) {
      for (const v of values) {
        const o: Record<string, unknown> = base();
        Object.defineProperty(o, field, { value: v, enumerable: true, configurable: true, writable: true });
        check(JSON.stringify(o));
        check(python(o));
      }
    }
    // every field the schema knows, today's and any added later, with values a constraint would refuse
    for (const field of Object.keys(DigestGenerateEventSchema.shape)) {
      for (const v of ['zz', '', 12, '2025-11-25', USER]) check(JSON.stringify({ ...base(), [field]: v }));
    }
    // numbers JSON.parse reads as 4 but the fast path leaves to it; a repeated field (the last wins)
    for (const w of ['4.0', '4e0', '04', '0x4', '4 ', '-0', '6.']) check(serializeEvent(base()).replace(/}$/, `,"window_size_hours":${w}}`));
    check(serializeEvent(base()).replace(/}$/, `,"user_id":"nope"}`));
    check(serializeEvent(base()).replace(/}$/, `,"user_id":"${randomUUID()}"}`));
    check(serializeEvent(base()).replace(/}$/, `,"history_id":null}`));
  });

  it('on thousands of random corruptions of valid events', () => {
    let taken = 0;
    for (const t of [...corruptions(serializeEvent(base({ window_size_hours: 24 })), 4000, 11), ...corruptions(python(base()), 4000, 13)]) if (check(t)) taken++;
    expect(taken).toBeGreaterThan(100);
  });
});

describe('ScanAccumulator.addRaw agrees with add', () => {
  /** Entries laid out in one buffer as a reply would hold them, with their offsets. */
  const layout = (entries: Array<[string, string[]]>) => {
    const enc = new TextEncoder();
    const parts: Uint8Array[] = [];
    const at: number[] = [];
    let len = 0;
    const put = (t: string) => {
      const bytes = enc.encode(`$${t.length}\r\n${t}\r\n`);
      const start = len + bytes.length - enc.encode(`${t}\r\n`).length;
      parts.push(bytes);
      len += bytes.length;
      return [start, start + enc.encode(t).length] as const;
    };
    for (const [id, flat] of entries) {
      const [is, ie] = put(id);
      let ds = -1;
      let de = -1;
      flat.forEach((f, i) => {
        const [s, e] = put(f);
        if (i % 2 === 1 && flat[i - 1] === 'data') [ds, de] = [s, e];
      });
      at.push(is, ie, ds, de);
    }
    const b = new Uint8Array(len);
    let o = 0;
    for (const p of parts) {
      b.set(p, o);
      o += p.length;
    }
    return { b, at };
  };

  it('on duplicates, conflicts, malformed and non-ASCII events, odd ids and fresh ids', () => {
    const [h1, h2, h3] = [randomUUID(), randomUUID(), randomUUID()];
    const key = `digest:${USER}:2025-11-25`;
    const entries: Array<[string, string[]]> = [
      ['1-0', entry(base({ history_id: h1 }))],
      ['1-1', entry(base({ history_id: h1.toUpperCase() }))],
      ['2-0', entry(base({ history_id: h2 }))],
      ['2-1', ['data', JSON.stringify(base({ history_id: h3, requested_by: 'José', idempotency_key: key }))]],
      ['3-0', ['data', '{"user_id":1}']],
      ['3-1', ['other', 'x']],
      ['3-2', ['data', 'not json', 'data', serializeEvent(base({ history_id: h2 }))]],
      ['3-3', ['data', serializeEvent(base({ history_id: h2 })), 'data', 'not json']],
      ['4-0', entry(base({ history_id: undefined }))],
      ['5-4096', entry(base({ history_id: randomUUID(), idempotency_key: 'k5' }))],
      ['18446744073709551615-18446744073709551615', entry(base({ history_id: randomUUID(), idempotency_key: 'k5' }))],
      ['6-0', ['data', serializeEvent(base({ history_id: randomUUID(), idempotency_key: '' }))]],
    ];
    const slow = new ScanAccumulator({ examples: 5, idsPerExample: 5 }, true);
    const fast = new ScanAccumulator({ examples: 5, idsPerExample: 5 }, true);
    for (const [id, flat] of entries) slow.add(id, flat, false);
    const { b, at } = layout(entries);
    for (let k = 0; k < at.length; k += 4) fast.addRaw(b, at[k]!, at[k + 1]!, at[k + 2]!, at[k + 3]!);
    expect(fast.drainFresh()).toEqual(slow.drainFresh());
    const r = fast.result();
    expect(r).toEqual(slow.result());
    expect(r).toMatchObject({ entries: 12, duplicates: { historyIds: 2 }, idempotencyConflicts: { keys: 2 }, malformed: { count: 3 } });
    for (const h of [h1, h2, h3]) expect(fast.lookup(h)).toEqual(slow.lookup(h));
  });
});

describe('strict UTF-8: addRaw and addBuffers agree', () => {
  it('an event whose data bytes are not UTF-8 is malformed in both; valid non-ASCII is not', () => {
    const good = serializeEvent(base({ history_id: randomUUID(), requested_by: 'José' }));
    const bad = Buffer.concat([Buffer.from(good.slice(0, -1) + ',"note":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
    const entries: Array<[string, Buffer]> = [['1-0', Buffer.from(good)], ['2-0', bad]];
    const viaBuffers = new ScanAccumulator({ examples: 5, idsPerExample: 5 });
    const viaRaw = new ScanAccumulator({ examples: 5, idsPerExample: 5 });
    for (const [id, data] of entries) {
      viaBuffers.addBuffers(id, [Buffer.from('data'), data], false);
      const b = Buffer.concat([Buffer.from(id), data]);
      viaRaw.addRaw(b, 0, id.length, id.length, b.length);
    }
    expect(viaRaw.result()).toEqual(viaBuffers.result());
    expect(viaRaw.result()).toMatchObject({ entries: 2, valid: 1, malformed: { count: 1, examples: [{ id: '2-0', error: 'data is not valid UTF-8' }] } });
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
