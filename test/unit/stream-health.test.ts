import { entryIdAfter } from '../../src/core/stream-id.js';
import { redirection } from '../../src/redis/stream-reader.js';
import { classifyRedisFault } from '../../src/core/faults.js';
import { describe, expect, it } from 'vitest';
import { DIGEST_DLQ_GROUP, DIGEST_DLQ_STREAM, DIGEST_GROUP, DIGEST_STREAM, CONTEXT_STREAM } from '../../src/core/contract.js';
import {
  DEFAULT_THRESHOLDS,
  evaluateStream,
  idAgeMs,
  nextEntryId,
  parseXinfoConsumers,
  parseXinfoGroups,
  parseXinfoStream,
  parseXpendingEntries,
  parseXpendingSummary,
  summarize,
  groupAccounting,
  type GroupSnapshot,
  type StreamInfoData,
  type StreamSnapshot,
} from '../../src/core/stream-health.js';

const NOW = 1_764_085_000_000;
const id = (msAgo: number, seq = 0) => `${NOW - msAgo}-${seq}`;

describe('XINFO / XPENDING reply parsing', () => {
  it('reads the 7.0 XINFO STREAM shape (flat list)', () => {
    const reply = ['length', 2, 'radix-tree-keys', 1, 'radix-tree-nodes', 2, 'last-generated-id', '1795875395034-0', 'max-deleted-entry-id', '0-0',
      'entries-added', 2, 'recorded-first-entry-id', '1795875395031-0', 'groups', 1,
      'first-entry', ['1795875395031-0', ['data', '{"a":1}']], 'last-entry', ['1795875395034-0', ['data', '{"a":2}']]];
    expect(parseXinfoStream(reply)).toEqual({
      length: 2,
      lastGeneratedId: '1795875395034-0',
      maxDeletedEntryId: '0-0',
      entriesAdded: 2,
      recordedFirstEntryId: '1795875395031-0',
      groups: 1,
      firstEntry: { id: '1795875395031-0', fields: { data: '{"a":1}' } },
      lastEntry: { id: '1795875395034-0', fields: { data: '{"a":2}' } },
    });
  });

  it('reads a 6.2 reply without the 7.0 counters, an empty stream, and a RESP3 map', () => {
    const old = parseXinfoStream(['length', 0, 'last-generated-id', '5-1', 'groups', 0, 'first-entry', null, 'last-entry', null]);
    expect(old).toMatchObject({ length: 0, maxDeletedEntryId: null, entriesAdded: null, recordedFirstEntryId: null, firstEntry: null, lastEntry: null });
    const map = parseXinfoStream(new Map<string, unknown>([['length', 3], ['last-generated-id', '9-0'], ['entries-added', 4]]));
    expect(map).toMatchObject({ length: 3, lastGeneratedId: '9-0', entriesAdded: 4 });
  });

  it('reads groups: a null lag stays null; 6.2 groups have no entries-read or lag', () => {
    const groups = parseXinfoGroups([
      ['name', 'g', 'consumers', 1, 'pending', 1, 'last-delivered-id', '1-0', 'entries-read', 1, 'lag', null],
      ['name', 'old', 'consumers', 0, 'pending', 0, 'last-delivered-id', '0-0'],
    ]);
    expect(groups).toEqual([
      { name: 'g', consumers: 1, pending: 1, lastDeliveredId: '1-0', entriesRead: 1, lag: null },
      { name: 'old', consumers: 0, pending: 0, lastDeliveredId: '0-0', entriesRead: null, lag: null },
    ]);
  });

  it('reads consumers with and without 7.2 inactive', () => {
    expect(parseXinfoConsumers([['name', 'c1', 'pending', 1, 'idle', 2], ['name', 'c2', 'pending', 0, 'idle', 50, 'inactive', 40]])).toEqual([
      { name: 'c1', pending: 1, idleMs: 2, inactiveMs: null },
      { name: 'c2', pending: 0, idleMs: 50, inactiveMs: 40 },
    ]);
  });

  it('reads XPENDING summaries (empty too) and extended rows', () => {
    expect(parseXpendingSummary([0, null, null, null])).toEqual({ count: 0, minId: null, maxId: null, consumers: [] });
    expect(parseXpendingSummary([3, '1-0', '3-0', [['a', '2'], ['b', '1']]])).toEqual({
      count: 3, minId: '1-0', maxId: '3-0', consumers: [{ name: 'a', pending: 2 }, { name: 'b', pending: 1 }],
    });
    expect(parseXpendingEntries([['1-0', 'a', 20, 3]])).toEqual([{ id: '1-0', consumer: 'a', idleMs: 20, deliveries: 3 }]);
  });

  it('nextEntryId steps the sequence, and the millisecond at the sequence limit', () => {
    expect(nextEntryId('5-0')).toBe('5-1');
    expect(nextEntryId('5-18446744073709551615')).toBe('6-0');
    expect(() => nextEntryId('x')).toThrow();
  });

  it('idAgeMs is measured against the given clock', () => {
    expect(idAgeMs(id(5000), NOW)).toBe(5000);
    expect(idAgeMs(null, NOW)).toBeNull();
  });
});

const info = (over: Partial<StreamInfoData> = {}): StreamInfoData => ({
  length: 5,
  lastGeneratedId: id(0, 9),
  maxDeletedEntryId: '0-0',
  entriesAdded: 5,
  recordedFirstEntryId: id(1000),
  groups: 1,
  firstEntry: { id: id(1000), fields: {} },
  lastEntry: { id: id(0, 9), fields: {} },
  ...over,
});

const group = (over: Partial<GroupSnapshot['info']> = {}, rest: Partial<GroupSnapshot> = {}): GroupSnapshot => ({
  info: { name: DIGEST_GROUP, consumers: 1, pending: 0, lastDeliveredId: id(0, 9), entriesRead: 5, lag: 0, ...over },
  consumers: [{ name: 'digest-worker-1', pending: 0, idleMs: 10, inactiveMs: null }],
  pendingSummary: { count: 0, minId: null, maxId: null, consumers: [] },
  pending: { scanned: 0, complete: true, oldest: null, mostDelivered: null, poison: [], dangling: [], danglingChecked: 0 },
  ...rest,
});

const ok = (g: GroupSnapshot[] = [group()], i = info(), key = DIGEST_STREAM): StreamSnapshot => ({ key, state: 'ok', info: i, groups: g });
const checks = (s: StreamSnapshot, t = DEFAULT_THRESHOLDS) => Object.fromEntries(evaluateStream(s, t, NOW).map((f) => [`${f.group ?? ''}/${f.check}`, f]));

describe('groupAccounting (each expectation worked out by hand from the ids and counters)', () => {
  // a stream whose entries are 1-0..N-0; first/last/length set per case
  const st = (o: { len: number; first: number | null; last: number | null; added: number | null; deleted?: string | null; gen?: string }): StreamInfoData => ({
    length: o.len, lastGeneratedId: o.gen ?? `${o.last ?? 0}-0`, maxDeletedEntryId: o.deleted === undefined ? (o.added === null ? null : '0-0') : o.deleted,
    entriesAdded: o.added, recordedFirstEntryId: null, groups: 1,
    firstEntry: o.first === null ? null : { id: `${o.first}-0`, fields: {} }, lastEntry: o.last === null ? null : { id: `${o.last}-0`, fields: {} },
  });
  const gr = (L: string, E: number | null, lag: number | null = null) => group({ lastDeliveredId: L, entriesRead: E, lag }).info;

  it('3000 added, entry 1 read, trimmed to 1, entry 3000 read: lag 0, 2998 trimmed unread (Redis says lag 2998, entries-read 2)', () => {
    expect(groupAccounting(st({ len: 1, first: 3000, last: 3000, added: 3000 }), gr('3000-0', 2, 2998))).toMatchObject({ lag: 0, trimmedMin: 2998, trimmedMax: 2998 });
  });
  it('group at 0-0, 20 added, trimmed to 5: lag 5, exactly 15 trimmed unread (entries-read null counts as 0)', () => {
    expect(groupAccounting(st({ len: 5, first: 16, last: 20, added: 20 }), gr('0-0', null, 5))).toMatchObject({ lag: 5, trimmedMin: 15, trimmedMax: 15, behindStart: true });
  });
  it('group at 3-0 (created at $ after 3), 23 added, trimmed to 5: between 0 and 18, behind the start', () => {
    expect(groupAccounting(st({ len: 5, first: 19, last: 23, added: 23 }), gr('3-0', null, 5))).toMatchObject({ lag: 5, trimmedMin: 0, trimmedMax: 18, behindStart: true });
  });
  it('group at 0-0, 3 added, 2-0 XDELed: 1 gone and it is the deleted one: nothing trimmed, lag 2', () => {
    expect(groupAccounting(st({ len: 2, first: 1, last: 3, added: 3, deleted: '2-0' }), gr('0-0', null, null))).toMatchObject({ lag: 2, trimmedMin: 0, trimmedMax: 0 });
  });
  it('a healthy group in the middle: Redis lag used when it fits 1..length-1; no loss claimed', () => {
    expect(groupAccounting(st({ len: 10, first: 1, last: 10, added: 10 }), gr('7-0', 7, 3))).toMatchObject({ lag: 3, lagSource: 'redis', trimmedMin: 0 });
  });
  it('in the middle with a Redis lag beyond what length allows: bounds, and the excess is a certain skip', () => {
    // 100 added, trimmed to 10 (91..100); the group read 1, was trimmed past, then read 91..95: E = 6, L = 95
    // present after L: 5; U = 100 - 6 - 5 = 89 (2..90 trimmed unread); Redis lag 94 > 9 so only 1..9 is known:
    // at least 100 - 6 - 9 = 85, at most 100 - 6 - 1 = 93, capped by the 90 gone
    expect(groupAccounting(st({ len: 10, first: 91, last: 100, added: 100 }), gr('95-0', 6, 94))).toMatchObject({ lag: null, lagMin: 1, lagMax: 9, trimmedMin: 85, trimmedMax: 90 });
  });
  it('an emptied stream the group never reached: its last entry was trimmed unread', () => {
    expect(groupAccounting(st({ len: 0, first: null, last: null, added: 4, gen: '4-0' }), gr('2-0', null))).toMatchObject({ lag: 0, trimmedMin: 1, trimmedMax: 4, behindStart: true });
  });
  it('Redis 5.0-6.2 (no entries-added, no entries-read): behind the start has no bound; else nothing claimed', () => {
    expect(groupAccounting(st({ len: 5, first: 16, last: 20, added: null }), gr('0-0', null))).toMatchObject({ lag: 5, trimmedMin: 0, trimmedMax: null, behindStart: true });
    expect(groupAccounting(st({ len: 5, first: 16, last: 20, added: null }), gr('20-0', null))).toMatchObject({ lag: 0, trimmedMin: 0, trimmedMax: 0, behindStart: false });
  });
});

describe('6.x-shaped replies', () => {
  it('XINFO STREAM / GROUPS of 6.2 (no entries-added, max-deleted-entry-id, entries-read, lag) parse to nulls, and the checks do not FAIL', () => {
    const s = parseXinfoStream(['length', 2, 'radix-tree-keys', 1, 'radix-tree-nodes', 2, 'last-generated-id', '2-0', 'groups', 1, 'first-entry', ['1-0', ['data', 'x']], 'last-entry', ['2-0', ['data', 'y']]]);
    const [g] = parseXinfoGroups([['name', DIGEST_GROUP, 'consumers', 1, 'pending', 0, 'last-delivered-id', '2-0']]);
    expect(s).toMatchObject({ entriesAdded: null, maxDeletedEntryId: null });
    expect(g).toMatchObject({ entriesRead: null, lag: null });
    const c = checks({ key: DIGEST_STREAM, state: 'ok', info: s, groups: [group(g)] });
    expect(c[`${DIGEST_GROUP}/trimmed`]!.verdict).toBe('ok');
    expect(c[`${DIGEST_GROUP}/lag`]!.message).toBe('lag 0');
  });
});

describe('entryIdAfter, redirection, classifyRedisFault', () => {
  it('pages from the next id, the sequence overflowing into the millisecond; nothing after the largest id', () => {
    expect(entryIdAfter('5-0')).toBe('5-1');
    expect(entryIdAfter('5-18446744073709551615')).toBe('6-0');
    expect(entryIdAfter('18446744073709551615-18446744073709551615')).toBeNull();
  });
  it('reads MOVED and ASK, an empty host meaning the same one', () => {
    expect(redirection('ASK 3999 127.0.0.1:7001', { host: 'h', port: 1 })).toEqual({ kind: 'ask', host: '127.0.0.1', port: 7001 });
    expect(redirection('MOVED 1 :7002', { host: 'h', port: 1 })).toEqual({ kind: 'moved', host: 'h', port: 7002 });
    expect(redirection('ERR x', { host: 'h', port: 1 })).toBeUndefined();
  });
  it('maps NOPERM and unknown commands to one line with an exit code other than 70', () => {
    const e = classifyRedisFault(new Error("NOPERM this user has no permissions to run the 'info' command"), 'h:1')!;
    expect(e.exitCode).toBe(4);
    expect(e.message).toContain("'info'");
    const u = classifyRedisFault(new Error("ERR unknown command 'XAUTOCLAIM', with args beginning with: "), 'h:1')!;
    expect(u.exitCode).toBe(4);
    expect(u.message).toContain('Redis 6.2 or later');
  });
});

describe('evaluateStream', () => {
  it('a healthy stream passes every check, with no fix', () => {
    const c = checks(ok());
    expect(Object.keys(c).sort()).toEqual(['/exists', `${DIGEST_GROUP}/dangling`, `${DIGEST_GROUP}/group`, `${DIGEST_GROUP}/idle-consumers`, `${DIGEST_GROUP}/lag`, `${DIGEST_GROUP}/pending`, `${DIGEST_GROUP}/poison`, `${DIGEST_GROUP}/stray-consumers`, `${DIGEST_GROUP}/trimmed`].sort());
    expect(Object.values(c).every((f) => f.verdict === 'ok' && f.fix === null)).toBe(true);
    expect(summarize(Object.values(c))).toMatchObject({ healthy: true, warn: 0, fail: 0 });
  });

  it('missing: a warning for the digest stream, fine for a DLQ; a non-stream key fails', () => {
    expect(checks({ key: DIGEST_STREAM, state: 'missing' })['/exists']!.verdict).toBe('warn');
    expect(checks({ key: DIGEST_DLQ_STREAM, state: 'missing' })['/dlq-empty']!.verdict).toBe('ok');
    // ...unless the digest stream is missing too: then nothing shows the DLQ was never needed
    const [dlq] = evaluateStream({ key: DIGEST_DLQ_STREAM, state: 'missing' }, DEFAULT_THRESHOLDS, NOW, '', true);
    expect(dlq).toMatchObject({ check: 'dlq-empty', verdict: 'warn' });
    expect(dlq!.message).not.toContain('nothing ever failed');
    expect(dlq!.fix).toContain('--key-prefix');
    expect(checks({ key: CONTEXT_STREAM, state: 'wrong-type', type: 'hash' })['/exists']).toMatchObject({ verdict: 'fail' });
  });

  it('expected group missing: fail on the digest stream, warn on its DLQ; a DLQ with entries warns', () => {
    expect(checks(ok([]))[`${DIGEST_GROUP}/group`]!.verdict).toBe('fail');
    const dlq = checks(ok([], info({ length: 2 }), DIGEST_DLQ_STREAM));
    expect(dlq[`${DIGEST_DLQ_GROUP}/group`]!.verdict).toBe('warn');
    expect(dlq['/dlq-empty']).toMatchObject({ verdict: 'warn', items: [info().firstEntry!.id] });
  });

  it('lag: over the threshold warns; a group that delivered the last entry has lag 0 whatever Redis says; unknown shows its bounds', () => {
    const big = info({ length: 5000, entriesAdded: 5000 });
    // before the first entry: all 5000 are still to deliver
    expect(checks(ok([group({ lastDeliveredId: '0-0', entriesRead: null, lag: 5000 })], big))[`${DIGEST_GROUP}/lag`]!.verdict).toBe('warn');
    expect(checks(ok([group({ lag: 5000 })]))[`${DIGEST_GROUP}/lag`]!).toMatchObject({ verdict: 'ok', message: 'lag 0' });
    const unknown = checks(ok([group({ lastDeliveredId: id(500), entriesRead: null, lag: null })], big))[`${DIGEST_GROUP}/lag`]!;
    expect(unknown.verdict).toBe('ok');
    expect(unknown.message).toBe('lag unknown (between 1 and 4999)');
  });

  it('pending over the threshold, dead and stray consumers', () => {
    const g = group({ pending: 150 }, {
      pendingSummary: { count: 150, minId: id(60_000), maxId: id(1000), consumers: [] },
      consumers: [
        { name: 'digest-worker-1', pending: 100, idleMs: 3_600_000, inactiveMs: null },
        { name: 'digest-worker-2', pending: 0, idleMs: 3_600_000, inactiveMs: null },
        { name: 'bob', pending: 50, idleMs: 5, inactiveMs: null },
      ],
    });
    const c = checks(ok([g]));
    expect(c[`${DIGEST_GROUP}/pending`]!.verdict).toBe('warn');
    expect(c[`${DIGEST_GROUP}/idle-consumers`]).toMatchObject({ verdict: 'warn', items: ['digest-worker-1'] });
    expect(c[`${DIGEST_GROUP}/stray-consumers`]).toMatchObject({ verdict: 'fail', items: ['bob'] });
    // a stray consumer holding nothing is only a warning
    const idleStray = group({}, { consumers: [{ name: 'bob', pending: 0, idleMs: 1, inactiveMs: null }] });
    expect(checks(ok([idleStray]))[`${DIGEST_GROUP}/stray-consumers`]!.verdict).toBe('warn');
  });

  it("on 7.2+ a consumer's inactive time decides, not its idle time (a failing XCLAIM loop resets idle)", () => {
    const g = group({}, { consumers: [
      { name: 'digest-worker-1', pending: 3, idleMs: 5, inactiveMs: 3_600_000 },
      { name: 'digest-worker-2', pending: 3, idleMs: 3_600_000, inactiveMs: 5 },
      { name: 'digest-worker-3', pending: 3, idleMs: 3_600_000, inactiveMs: -1 },
    ] });
    expect(checks(ok([g]))[`${DIGEST_GROUP}/idle-consumers`]!.items).toEqual(['digest-worker-1', 'digest-worker-3']);
  });

  it('stray consumer names are only checked on the digest workers group', () => {
    const other = group({ name: 'context-workers' }, { consumers: [{ name: 'whatever', pending: 1, idleMs: 1, inactiveMs: null }] });
    expect(checks(ok([other], info(), CONTEXT_STREAM))['context-workers/stray-consumers']).toBeUndefined();
  });

  it('dangling and poison entries are listed up to the list limit', () => {
    const poison = Array.from({ length: 12 }, (_, i) => ({ id: id(9000, i), consumer: 'digest-worker-1', idleMs: 1, deliveries: 3 + (i % 2) }));
    const g = group({}, {
      pending: { scanned: 12, complete: false, oldest: poison[0]!, mostDelivered: poison[1]!, poison, dangling: poison.map((p) => p.id), danglingChecked: 12 },
      pendingSummary: { count: 40, minId: poison[0]!.id, maxId: poison[11]!.id, consumers: [] },
    });
    const c = checks(ok([g]), { ...DEFAULT_THRESHOLDS, listLimit: 5 });
    expect(c[`${DIGEST_GROUP}/poison`]!.verdict).toBe('fail');
    expect(c[`${DIGEST_GROUP}/poison`]!.items).toHaveLength(5);
    expect(c[`${DIGEST_GROUP}/poison`]!.message).toContain('max 4');
    expect(c[`${DIGEST_GROUP}/dangling`]!.verdict).toBe('warn');
    expect(c[`${DIGEST_GROUP}/dangling`]!.message).toContain('first 12 of 40');
  });

  it("a DLQ's group is never read by design: no lag or trimming checks on it", () => {
    const dlqGroup = group({ name: DIGEST_DLQ_GROUP, lag: 5000, entriesRead: 0, lastDeliveredId: '0-0' }, { consumers: [] });
    const c = checks(ok([dlqGroup], info({ length: 5000, entriesAdded: 9000 }), DIGEST_DLQ_STREAM));
    expect(c[`${DIGEST_DLQ_GROUP}/lag`]).toBeUndefined();
    expect(c[`${DIGEST_DLQ_GROUP}/trimmed`]).toBeUndefined();
    expect(c[`${DIGEST_DLQ_GROUP}/pending`]!.verdict).toBe('ok');
    expect(c['/dlq-empty']!.verdict).toBe('warn');
  });

  it('trimmed before delivery fails with the count', () => {
    const c = checks(ok([group({ entriesRead: 2, lag: null, lastDeliveredId: id(3000) })], info({ entriesAdded: 10 })));
    expect(c[`${DIGEST_GROUP}/trimmed`]).toMatchObject({ verdict: 'fail' });
    expect(c[`${DIGEST_GROUP}/trimmed`]!.message).toContain('(3)');
  });
});
