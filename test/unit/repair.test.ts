import { describe, expect, it } from 'vitest';
import {
  allowedStatuses,
  chooseRepairStatus,
  chunkByRows,
  decideDuplicateBatch,
  decideUndo,
  effectiveRunStatus,
  isLiveDelivery,
  parseStatusCheck,
  planDuplicateGroups,
  repairLockKey,
  type AuditEntry,
  type LockedRow,
  type RepairRow,
  type RowImage,
} from '../../src/core/repair.js';

// Exactly as pg_get_constraintdef prints them (Postgres 15).
const STOCK = "CHECK (((status)::text = ANY ((ARRAY['pending'::character varying, 'sent'::character varying, 'failed'::character varying])::text[])))";

describe('parseStatusCheck', () => {
  it('reads the stock varchar IN list', () => {
    expect(parseStatusCheck(STOCK)).toEqual(['pending', 'sent', 'failed']);
  });
  it('reads a text column = ANY (ARRAY[...])', () => {
    expect(parseStatusCheck("CHECK ((status = ANY (ARRAY['failed'::text, 'pending'::text])))")).toEqual(['failed', 'pending']);
  });
  it('reads OR-ed equalities and a single equality', () => {
    expect(parseStatusCheck("CHECK ((((status)::text = 'x'::text) OR ((status)::text = 'y'::text)))")).toEqual(['x', 'y']);
    expect(parseStatusCheck("CHECK (((status)::text = 'pending'::text))")).toEqual(['pending']);
  });
  it('unescapes quotes and accepts NOT VALID', () => {
    expect(parseStatusCheck("CHECK (((status)::text = 'it''s'::text))")).toEqual(["it's"]);
    expect(parseStatusCheck("CHECK (((status)::text = ANY ((ARRAY['failed'::character varying, 'sent'::character varying])::text[]))) NOT VALID")).toEqual(['failed', 'sent']);
  });
  it('reads an IN list written by hand', () => {
    expect(parseStatusCheck("CHECK (status IN ('pending', 'failed'))")).toEqual(['pending', 'failed']);
  });
  it('gives up on expressions that are not a list', () => {
    expect(parseStatusCheck("CHECK (((status)::text <> 'bad'::text))")).toBeUndefined();
    expect(parseStatusCheck("CHECK ((length((status)::text) < 10))")).toBeUndefined();
    expect(parseStatusCheck("CHECK (((status)::text = ANY ((ARRAY['a'::character varying, NULL::character varying])::text[])))")).toBeUndefined();
    expect(parseStatusCheck('not a check')).toBeUndefined();
  });
});

describe('allowedStatuses', () => {
  it('intersects readable constraints and names the first unreadable one', () => {
    expect(allowedStatuses([])).toEqual({ allowed: null });
    expect(allowedStatuses([{ name: 'a', definition: STOCK }])).toEqual({ allowed: ['pending', 'sent', 'failed'] });
    const weird = { name: 'w', definition: "CHECK (((status)::text <> 'x'::text))" };
    expect(allowedStatuses([{ name: 'a', definition: STOCK }, weird])).toEqual({ allowed: ['pending', 'sent', 'failed'], unreadable: weird });
  });
});

describe('chooseRepairStatus', () => {
  it("is 'failed' under the stock constraint", () => {
    expect(chooseRepairStatus([{ name: 'chk_digest_status', definition: STOCK }])).toEqual({ ok: true, status: 'failed', allowed: ['pending', 'sent', 'failed'] });
  });
  it("is 'failed' with no constraint at all", () => {
    expect(chooseRepairStatus([])).toMatchObject({ ok: true, status: 'failed', allowed: null });
  });
  it('intersects several constraints', () => {
    const r = chooseRepairStatus([
      { name: 'a', definition: STOCK },
      { name: 'b', definition: "CHECK (((status)::text = ANY ((ARRAY['pending'::character varying, 'sent'::character varying])::text[])))" },
    ]);
    expect(r.ok).toBe(false);
    expect(r.allowed).toEqual(['pending', 'sent']);
    if (!r.ok) expect(r.reason).toMatch(/allows only 'pending', 'sent'.*allow 'failed'/);
  });
  it('refuses an unreadable constraint', () => {
    const r = chooseRepairStatus([{ name: 'weird', definition: "CHECK (((status)::text <> 'bad'::text))" }]);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(/cannot tell which statuses CHECK weird allows/);
  });
});

const U1 = '11111111-1111-4111-8111-111111111111';
const U2 = '22222222-2222-4222-8222-222222222222';
const row = (id: string, userId: string, status: string, at: string, day = '2025-11-25'): RepairRow => ({ id, userId, digestDate: day, status, createdAt: new Date(at) });

describe('planDuplicateGroups', () => {
  const rows = [
    row('a', U1, 'pending', '2025-11-25T10:00:00Z'),
    row('b', U1, 'pending', '2025-11-25T11:00:00Z'),
    row('c', U1, 'processing', '2025-11-25T12:00:00Z'),
    row('d', U2, 'pending', '2025-11-25T10:00:00Z'),
    row('e', U2, 'sent', '2025-11-25T09:00:00Z'),
  ];
  it('keeps the newest by default and fails the rest', () => {
    const [g, ...rest] = planDuplicateGroups(rows, 'newest');
    expect(rest).toEqual([]);
    expect(g!.kept.id).toBe('c');
    expect(g!.extras.map((r) => r.id)).toEqual(['b', 'a']);
  });
  it('keeps the oldest when asked', () => {
    const [g] = planDuplicateGroups(rows, 'oldest');
    expect(g!.kept.id).toBe('a');
    expect(g!.extras.map((r) => r.id)).toEqual(['b', 'c']);
  });
  it('breaks created_at ties by id, as the service orders rows', () => {
    const [g] = planDuplicateGroups([row('x', U1, 'pending', '2025-11-25T10:00:00Z'), row('y', U1, 'pending', '2025-11-25T10:00:00Z')], 'newest');
    expect(g!.kept.id).toBe('y');
  });
});

describe('chunkByRows', () => {
  it('never splits an item and never exceeds the size unless one item does', () => {
    expect(chunkByRows([2, 2, 3, 1, 5, 1], 4, (n) => n)).toEqual([[2, 2], [3, 1], [5], [1]]);
    expect(chunkByRows([], 4, (n: number) => n)).toEqual([]);
  });
});

describe('decideDuplicateBatch', () => {
  const g1 = { userId: U1, digestDate: '2025-11-25' };
  const g2 = { userId: U2, digestDate: '2025-11-25' };
  const locked = (r: RepairRow, groupInFlight: number): LockedRow => ({ ...r, groupInFlight });
  it('re-decides from what is locked now', () => {
    const d = decideDuplicateBatch(
      [g1, g2],
      [locked(row('a', U1, 'pending', '2025-11-25T10:00:00Z'), 2), locked(row('b', U1, 'pending', '2025-11-25T11:00:00Z'), 2), locked(row('d', U2, 'pending', '2025-11-25T10:00:00Z'), 1)],
      'newest',
    );
    expect(d.updates).toEqual([{ id: 'a', keptId: 'b' }]);
    expect(d.groups).toEqual([{ ...g1, keptId: 'b', failed: ['a'] }]);
    expect(d.resolved).toEqual([g2]);
    expect(d.deferred).toEqual([]);
  });
  it('defers a group when another session holds one of its in-flight rows', () => {
    const d = decideDuplicateBatch([g1], [locked(row('a', U1, 'pending', '2025-11-25T10:00:00Z'), 3), locked(row('b', U1, 'pending', '2025-11-25T11:00:00Z'), 3)], 'newest');
    expect(d.updates).toEqual([]);
    expect(d.deferred).toEqual([g1]);
  });
  it('counts a group with no in-flight row left as resolved', () => {
    expect(decideDuplicateBatch([g1], [], 'oldest').resolved).toEqual([g1]);
  });
});

const image = (id: string, status: string, at: string, userId = U1): RowImage => ({ id, user_id: userId, digest_date: '2025-11-25', status, created_at: at, sent_at: null });
const entry = (id: string, before: string, after: string, at: string, userId = U1): AuditEntry => ({ rowId: id, before: image(id, before, at, userId), after: image(id, after, at, userId) });

describe('decideUndo', () => {
  it('restores rows still as the run left them', () => {
    const e = entry('a', 'pending', 'failed', '2025-11-25T10:00:00Z');
    const d = decideUndo([e], new Map([['a', { id: 'a', status: 'failed' }]]), new Map());
    expect(d.restore).toEqual([e]);
    expect(d.skipped).toEqual([]);
  });
  it('skips rows changed since, and rows deleted', () => {
    const d = decideUndo([entry('a', 'pending', 'failed', '2025-11-25T10:00:00Z'), entry('b', 'pending', 'failed', '2025-11-25T10:00:00Z')], new Map([['a', { id: 'a', status: 'sent' }]]), new Map());
    expect(d.restore).toEqual([]);
    expect(d.skipped.map((s) => [s.entry.rowId, s.reason])).toEqual([
      ['a', 'status-changed'],
      ['b', 'row-deleted'],
    ]);
  });
  it('never puts a second row in flight for a (user, day)', () => {
    const d = decideUndo(
      [entry('a', 'pending', 'failed', '2025-11-25T10:00:00Z'), entry('b', 'pending', 'failed', '2025-11-25T11:00:00Z'), entry('c', 'pending', 'failed', '2025-11-25T10:00:00Z', U2)],
      new Map(['a', 'b', 'c'].map((id) => [id, { id, status: 'failed' }])),
      new Map([[`${U2}|2025-11-25`, ['kept-row']]]),
    );
    expect(d.restore.map((e) => e.rowId)).toEqual(['b']);
    expect(d.skipped.map((s) => [s.entry.rowId, s.reason, s.detail]).sort()).toEqual([
      ['a', 'would-duplicate', 'row b of the same user and day is in flight'],
      ['c', 'would-duplicate', 'row kept-row of the same user and day is in flight'],
    ]);
  });
  it('restores a terminal before-image freely (undo of an undo)', () => {
    const e = entry('a', 'failed', 'pending', '2025-11-25T10:00:00Z');
    const d = decideUndo([e], new Map([['a', { id: 'a', status: 'pending' }]]), new Map([[`${U1}|2025-11-25`, ['a', 'z']]]));
    expect(d.restore).toEqual([e]);
  });
});

describe('small decisions', () => {
  it('isLiveDelivery', () => {
    expect(isLiveDelivery(undefined, 1000)).toBe(false);
    expect(isLiveDelivery({ consumer: 'w', idleMs: 999, deliveries: 1 }, 1000)).toBe(true);
    expect(isLiveDelivery({ consumer: 'w', idleMs: 1000, deliveries: 1 }, 1000)).toBe(false);
  });
  it('effectiveRunStatus and repairLockKey', () => {
    expect(effectiveRunStatus('running', false)).toBe('interrupted');
    expect(effectiveRunStatus('running', true)).toBe('running');
    expect(effectiveRunStatus('done', false)).toBe('done');
    expect(repairLockKey('mark-stale', 'public')).toEqual(['digest-doctor:repair:mark-stale', 'public']);
  });
});
