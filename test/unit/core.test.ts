import { describe, expect, it } from 'vitest';
import {
  DEFAULT_STREAMS,
  DIGEST_STREAM,
  IN_FLIGHT_STATUSES,
  isInFlight,
  resolveStreamKey,
  STREAMS,
} from '../../src/core/contract.js';
import { compareNewestFirst, correctedDecision, microsFromTimestamp, newestFirst, serviceDecision, type DecisionRow } from '../../src/core/decision.js';
import { ageBucket, classifyGroup, formatAge, isDuplicateGroup, staleRows } from '../../src/core/duplicates.js';
import { dayBounds, formatInZone, groupIdempotencyKey, idempotencyKey, parseIdempotencyKey, serviceDay, userLockKey, zoneOffsetMs } from '../../src/core/keys.js';
import { compareEntryIds, entryIdTime, idAtOrAfter, idAtOrBefore, parseEntryId } from '../../src/core/stream-id.js';
import { assertDay, assertUuid, isDay, parseDuration, parsePositiveInt, parseSince } from '../../src/core/validate.js';
import { DoctorError } from '../../src/errors.js';

const USER = '6af5e7d3-e736-46da-bfc1-42786f2ab1c0';

describe('contract', () => {
  it('maps logical stream names to keys and passes keys through', () => {
    expect(resolveStreamKey('digests.generate')).toBe('stream:digests:generate');
    expect(resolveStreamKey('digests.generate.dlq')).toBe('stream:digests:generate:dlq');
    expect(resolveStreamKey('digest.context.prepared')).toBe('stream:digests:context:prepared');
    expect(resolveStreamKey('stream:digests:generate')).toBe(DIGEST_STREAM);
    expect(DEFAULT_STREAMS).toEqual([STREAMS['digests.generate'], STREAMS['digests.generate.dlq'], STREAMS['digest.context.prepared']]);
  });

  it('treats scheduled, pending and processing as in flight, and nothing else', () => {
    expect([...IN_FLIGHT_STATUSES]).toEqual(['scheduled', 'pending', 'processing']);
    for (const s of ['scheduled', 'pending', 'processing']) expect(isInFlight(s)).toBe(true);
    for (const s of ['sent', 'failed', 'PENDING', '']) expect(isInFlight(s)).toBe(false);
  });
});

describe('keys and the service day', () => {
  it('builds the idempotency key digest:{user_id}:{YYYY-MM-DD}', () => {
    expect(idempotencyKey(USER, '2025-11-25')).toBe(`digest:${USER}:2025-11-25`);
    expect(idempotencyKey(USER.toUpperCase(), '2025-11-25')).toBe(`digest:${USER}:2025-11-25`);
    expect(groupIdempotencyKey('g1', 'w-2025-11-25-12')).toBe('group-digest:g1:w-2025-11-25-12');
    expect(() => idempotencyKey('nope', '2025-11-25')).toThrow(DoctorError);
    expect(() => idempotencyKey(USER, '2025-13-01')).toThrow(/calendar date/);
  });

  it('parses both idempotency key forms back', () => {
    expect(parseIdempotencyKey(`digest:${USER}:2025-11-25`)).toEqual({ kind: 'user', userId: USER, day: '2025-11-25' });
    expect(parseIdempotencyKey('group-digest:g1:w:7')).toEqual({ kind: 'group', groupId: 'g1', windowId: 'w:7' });
    expect(parseIdempotencyKey('something')).toBeUndefined();
  });

  it('builds the bot lock key', () => {
    expect(userLockKey(USER)).toBe(`digest:lock:${USER}`);
  });

  it('takes the Moscow calendar date, which runs three hours ahead of UTC', () => {
    expect(serviceDay(new Date('2025-11-25T20:59:59Z'))).toBe('2025-11-25');
    expect(serviceDay(new Date('2025-11-25T21:00:00Z'))).toBe('2025-11-26');
    expect(serviceDay(new Date('2025-11-25T21:00:00Z'), 'UTC')).toBe('2025-11-25');
    expect(formatInZone(new Date('2025-11-25T15:36:57Z'))).toBe('2025-11-25 18:36:57');
  });

  it('computes zone offsets and day bounds, including across a DST change', () => {
    expect(zoneOffsetMs(new Date('2025-11-25T12:00:00Z'), 'Europe/Moscow')).toBe(3 * 3600_000);
    expect(dayBounds('2025-11-25')).toEqual({ start: new Date('2025-11-24T21:00:00Z'), end: new Date('2025-11-25T21:00:00Z') });
    // Berlin moves to summer time on 2025-03-30: that day is 23 hours long.
    const b = dayBounds('2025-03-30', 'Europe/Berlin');
    expect(b.start.toISOString()).toBe('2025-03-29T23:00:00.000Z');
    expect(b.end.toISOString()).toBe('2025-03-30T22:00:00.000Z');
  });

  it('rejects an unknown time zone with one line', async () => {
    const { assertTimeZone } = await import('../../src/core/keys.js');
    expect(() => assertTimeZone('Mars/Olympus')).toThrow(/unknown time zone "Mars\/Olympus"/);
  });
});

describe('validation', () => {
  it('accepts UUIDs in any case and rejects the rest with the fix named', () => {
    expect(assertUuid(USER.toUpperCase())).toBe(USER);
    expect(() => assertUuid('6af5e7d3', '--user')).toThrow(/--user "6af5e7d3" is not a UUID: expected/);
  });

  it('accepts only real calendar dates', () => {
    expect(isDay('2024-02-29')).toBe(true);
    expect(isDay('2025-02-29')).toBe(false);
    expect(isDay('2025-1-5')).toBe(false);
    expect(assertDay('2025-11-25')).toBe('2025-11-25');
    expect(() => assertDay('25.11.2025', '--date')).toThrow(/--date "25.11.2025" is not a calendar date/);
  });

  it('parses durations', () => {
    expect(parseDuration('30m')).toBe(1_800_000);
    expect(parseDuration('6h')).toBe(21_600_000);
    expect(parseDuration('7d')).toBe(604_800_000);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('1.5h')).toBe(5_400_000);
    for (const bad of ['7', 'd', '-1h', '0m', '7 days']) expect(() => parseDuration(bad)).toThrow(DoctorError);
  });

  it('parses positive integers and --since', () => {
    expect(parsePositiveInt('20')).toBe(20);
    for (const bad of ['0', '-3', '2.5', 'x', '']) expect(() => parsePositiveInt(bad)).toThrow(DoctorError);
    const now = new Date('2025-11-25T12:00:00Z');
    expect(parseSince('2025-11-01', now, (d) => serviceDay(d))).toBe('2025-11-01');
    expect(parseSince('7d', now, (d) => serviceDay(d))).toBe('2025-11-18');
    expect(() => parseSince('last week', now, (d) => serviceDay(d))).toThrow(/neither a date nor a duration/);
  });
});

const row = (id: string, status: string, createdAt: string): DecisionRow => ({ id, status, createdUs: microsFromTimestamp(createdAt) });

describe('the service decision (as shipped) and the corrected one', () => {
  const now = new Date('2025-11-25T15:39:09Z');

  it('no row: both insert and publish', () => {
    for (const t of ['manual', 'scheduler', 'scheduler_retry'] as const) {
      expect(serviceDecision([], t, now)).toMatchObject({ action: 'insert', publish: true });
      expect(correctedDecision([], t)).toMatchObject({ action: 'insert', publish: true });
    }
  });

  it('the incident: a manual click on a 2-minute-old pending row supersedes it; the corrected flow returns it', () => {
    const rows = [row('a', 'pending', '2025-11-25T15:36:57Z')];
    expect(serviceDecision(rows, 'manual', now)).toMatchObject({ action: 'supersede', rowId: 'a', publish: true });
    expect(serviceDecision(rows, 'scheduler', now)).toMatchObject({ action: 'return', rowId: 'a', publish: false });
    expect(correctedDecision(rows, 'manual')).toMatchObject({ action: 'return', rowId: 'a', publish: false });
  });

  it('an in-flight row younger than 30 s is returned even to a manual click', () => {
    const rows = [row('a', 'processing', '2025-11-25T15:38:50Z')];
    expect(serviceDecision(rows, 'manual', now)).toMatchObject({ action: 'return', publish: false });
    expect(serviceDecision([row('a', 'pending', '2025-11-25T15:38:39Z')], 'manual', now)).toMatchObject({ action: 'supersede' });
  });

  it('sent: manual inserts a new row, the scheduler gets the sent one', () => {
    const rows = [row('s', 'sent', '2025-11-25T06:00:00Z')];
    expect(serviceDecision(rows, 'manual', now)).toMatchObject({ action: 'insert', publish: true });
    expect(serviceDecision(rows, 'scheduler_retry', now)).toMatchObject({ action: 'return', rowId: 's', publish: false });
    expect(correctedDecision(rows, 'manual')).toMatchObject({ action: 'insert', publish: true });
    expect(correctedDecision(rows, 'scheduler')).toMatchObject({ action: 'return', rowId: 's' });
  });

  it('failed: the service resets the same row; the corrected flow inserts a fresh one', () => {
    const rows = [row('f', 'failed', '2025-11-25T06:00:00Z')];
    expect(serviceDecision(rows, 'scheduler', now)).toMatchObject({ action: 'reset', rowId: 'f', publish: true });
    expect(correctedDecision(rows, 'scheduler')).toMatchObject({ action: 'insert', publish: true });
  });

  it('the corrected flow finds an in-flight row hidden behind a newer failed one', () => {
    const rows = [row('p', 'pending', '2025-11-25T06:00:00Z'), row('f', 'failed', '2025-11-25T07:00:00Z')];
    expect(serviceDecision(rows, 'scheduler', now)).toMatchObject({ action: 'reset', rowId: 'f' });
    expect(correctedDecision(rows, 'manual')).toMatchObject({ action: 'return', rowId: 'p', publish: false });
  });
});

describe('duplicate classification and staleness', () => {
  const rows = [
    row('f', 'failed', '2025-11-25T15:36:57Z'),
    row('p1', 'pending', '2025-11-25T15:39:09Z'),
    row('p2', 'processing', '2025-11-25T15:39:10Z'),
    row('s', 'scheduled', '2025-11-25T06:00:00Z'),
    row('x', 'sent', '2025-11-25T16:00:00Z'),
  ];

  it('keeps the newest in-flight row by default and lists the rest as extras', () => {
    const c = classifyGroup(rows);
    expect(c.inFlight.map((r) => r.id)).toEqual(['p2', 'p1', 's']);
    expect(c.kept?.id).toBe('p2');
    expect(c.extras.map((r) => r.id)).toEqual(['p1', 's']);
  });

  it('keeps the oldest with --keep oldest', () => {
    const c = classifyGroup(rows, 'oldest');
    expect(c.kept?.id).toBe('s');
    expect(c.extras.map((r) => r.id)).toEqual(['p1', 'p2']);
  });

  it('breaks created_at ties by id, deterministically', () => {
    const tie = [row('b', 'pending', '2025-11-25T10:00:00Z'), row('a', 'pending', '2025-11-25T10:00:00Z')];
    expect(classifyGroup(tie).kept?.id).toBe('b');
    expect(classifyGroup([...tie].reverse()).kept?.id).toBe('b');
    expect(classifyGroup(tie, 'oldest').kept?.id).toBe('a');
  });

  it('orders to the microsecond: rows inside one millisecond, ids against their order in time', () => {
    // 10:00:00.000300 is newer than .000200 and .000100 although all three share one millisecond;
    // a millisecond clock with ties broken by id would keep 'c' (the greatest id) instead.
    const ms = [row('a', 'pending', '2025-11-25T10:00:00.000300Z'), row('b', 'processing', '2025-11-25T10:00:00.000200Z'), row('c', 'scheduled', '2025-11-25T10:00:00.000100Z')];
    for (const order of [ms, [...ms].reverse(), [ms[1]!, ms[2]!, ms[0]!]]) {
      expect(classifyGroup(order).inFlight.map((r) => r.id)).toEqual(['a', 'b', 'c']);
      expect(classifyGroup(order, 'oldest').kept?.id).toBe('c');
      expect(classifyGroup(order, 'oldest').extras.map((r) => r.id)).toEqual(['b', 'a']);
    }
    // The corrected decision reads the newest row the same way: a sent row 100 µs newer than a failed one.
    const day = [row('f', 'failed', '2025-11-25T10:00:00.000100Z'), row('e', 'sent', '2025-11-25T10:00:00.000200Z')];
    expect(correctedDecision(day, 'scheduler')).toMatchObject({ action: 'return', rowId: 'e' });
    expect(serviceDecision(day, 'scheduler', new Date('2025-11-25T12:00:00Z'))).toMatchObject({ action: 'return', rowId: 'e' });
  });

  it('compares ids as Postgres compares uuids, whatever their case', () => {
    const at = microsFromTimestamp('2025-11-25T10:00:00Z');
    const lower = { id: '0000000a-0000-4000-8000-000000000000', createdUs: at };
    const upper = { id: '0000000B-0000-4000-8000-000000000000', createdUs: at };
    expect(newestFirst([lower, upper]).map((r) => r.id)).toEqual([upper.id, lower.id]);
    expect(compareNewestFirst(upper, { ...upper, id: upper.id.toLowerCase() })).toBe(0);
  });

  it('reads timestamps to the microsecond as ISO, JSON from Postgres and its text output', () => {
    const base = Date.UTC(2025, 10, 25, 15, 36, 57) * 1000;
    expect(microsFromTimestamp('2025-11-25T15:36:57Z')).toBe(base);
    expect(microsFromTimestamp('2025-11-25T15:36:57.123456Z')).toBe(base + 123_456);
    expect(microsFromTimestamp('2025-11-25T15:36:57.1+00:00')).toBe(base + 100_000);
    expect(microsFromTimestamp('2025-11-25 15:36:57.000001+00')).toBe(base + 1);
    expect(microsFromTimestamp('2025-11-25T18:36:57.000007+03:00')).toBe(base + 7);
    expect(microsFromTimestamp('2025-11-25T18:36:57.000007+0300')).toBe(base + 7);
    expect(microsFromTimestamp('2025-11-25T12:06:57.5-03:30')).toBe(base + 500_000);
    for (const bad of ['2025-11-25T15:36:57', '2025-11-25T15:36:57.1234567Z', 'yesterday', '2025-13-25T15:36:57Z']) expect(() => microsFromTimestamp(bad)).toThrow(DoctorError);
  });

  it('a group of one or none has no extras', () => {
    expect(classifyGroup([row('a', 'pending', '2025-11-25T10:00:00Z')]).extras).toEqual([]);
    expect(classifyGroup([row('a', 'sent', '2025-11-25T10:00:00Z')]).kept).toBeUndefined();
    expect(isDuplicateGroup(rows)).toBe(true);
    expect(isDuplicateGroup(rows.slice(0, 2))).toBe(false);
  });

  it('finds in-flight rows older than a threshold against the time passed in', () => {
    const now = new Date('2025-11-25T16:39:09Z');
    expect(staleRows(rows, now, 3_600_000).map((r) => r.id)).toEqual(['s']);
    expect(staleRows(rows, now, 60_000).map((r) => r.id).sort()).toEqual(['p1', 'p2', 's']);
  });

  it('buckets and formats ages', () => {
    expect(ageBucket(59 * 60_000)).toBe('< 1 h');
    expect(ageBucket(3_600_000)).toBe('1 h - 1 d');
    expect(ageBucket(86_400_000)).toBe('1 - 7 d');
    expect(ageBucket(8 * 86_400_000)).toBe('> 7 d');
    expect(formatAge(5_000)).toBe('5s');
    expect(formatAge(125_000)).toBe('2m 5s');
    expect(formatAge(3 * 86_400_000 + 4 * 3_600_000)).toBe('3d 4h');
  });
});

describe('stream ids', () => {
  it('parses, compares and bounds ids by time', () => {
    expect(parseEntryId('1700000000000-3')).toEqual({ ms: 1700000000000n, seq: 3n });
    expect(parseEntryId('nope')).toBeUndefined();
    expect(compareEntryIds('1-1', '1-2')).toBe(-1);
    expect(compareEntryIds('2-0', '1-99')).toBe(1);
    expect(compareEntryIds('5-5', '5-5')).toBe(0);
    expect(entryIdTime('1764085017291-0')?.toISOString()).toBe('2025-11-25T15:36:57.291Z');
    expect(idAtOrAfter(new Date(1000))).toBe('1000-0');
    expect(compareEntryIds(idAtOrBefore(new Date(1000)), '1000-99999')).toBe(1);
  });
});
