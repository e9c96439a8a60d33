import { describe, expect, it } from 'vitest';
import {
  allowedStatuses,
  chooseRepairStatus,
  batchOutcome,
  batchEnd,
  chunkByRows,
  decideUndo,
  effectiveRunStatus,
  isLiveDelivery,
  nextBatchRows,
  planDuplicateGroups,
  repairLockKey,
  type AuditEntry,
  type CurrentRow,
  type GroupReport,
  type RepairRow,
  type RowImage,
} from '../../src/core/repair.js';

// Verdicts as src/postgres/checks.ts gets them from the server (which candidates satisfy each CHECK).
const STOCK = { name: 'chk_digest_status', accepts: ['pending', 'sent', 'failed'] };

describe('allowedStatuses', () => {
  it('is null without a constraint, the accepted candidates in candidate order with one', () => {
    expect(allowedStatuses([])).toEqual({ allowed: null });
    expect(allowedStatuses([{ name: 'a', accepts: ['failed', 'sent', 'pending'] }])).toEqual({ allowed: ['pending', 'sent', 'failed'] });
  });
  it('intersects several constraints and stops at one the server could not evaluate', () => {
    const broken = { name: 'b', accepts: null, error: '22P02 invalid input' };
    expect(allowedStatuses([STOCK, { name: 'c', accepts: ['sent', 'failed', 'processing'] }])).toEqual({ allowed: ['sent', 'failed'] });
    expect(allowedStatuses([STOCK, broken])).toEqual({ allowed: ['pending', 'sent', 'failed'], unreadable: broken });
  });
  it('only ever lists candidates', () => {
    expect(allowedStatuses([{ name: 'a', accepts: ['failed', 'x'] }], ['failed', 'sent'])).toEqual({ allowed: ['failed'] });
  });
});

describe('chooseRepairStatus', () => {
  it("is 'failed' under the stock constraint", () => {
    expect(chooseRepairStatus([STOCK])).toEqual({ ok: true, status: 'failed', allowed: ['pending', 'sent', 'failed'] });
  });
  it("is 'failed' with no constraint at all", () => {
    expect(chooseRepairStatus([])).toMatchObject({ ok: true, status: 'failed', allowed: null });
  });
  it('intersects several constraints', () => {
    const r = chooseRepairStatus([STOCK, { name: 'b', accepts: ['pending', 'sent'] }]);
    expect(r.ok).toBe(false);
    expect(r.allowed).toEqual(['pending', 'sent']);
    if (!r.ok) expect(r.reason).toMatch(/allows only 'pending', 'sent'.*allow 'failed'/);
  });
  it('refuses when no candidate fits at all', () => {
    const r = chooseRepairStatus([{ name: 'none', accepts: [] }]);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(/allows only no status/);
  });
  it('refuses a constraint the server could not evaluate', () => {
    const r = chooseRepairStatus([{ name: 'weird', accepts: null, error: '42883 function f(text) does not exist' }]);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(/could not evaluate CHECK weird.*42883/);
  });
});

const U1 = '11111111-1111-4111-8111-111111111111';
const U2 = '22222222-2222-4222-8222-222222222222';
const row = (id: string, userId: string, status: string, keepRank: number, day = '2025-11-25'): RepairRow => ({ id, userId, digestDate: day, status, createdUs: 1_764_000_000_000_000 + keepRank, keepRank });

describe('planDuplicateGroups', () => {
  // Ranks as fix_duplicate_rows gives them, rows in any order.
  const rows = [
    row('a', U1, 'pending', 3),
    row('c', U1, 'processing', 1),
    row('d', U2, 'pending', 1),
    row('b', U1, 'pending', 2),
  ];
  it('keeps the row of rank 1 in each group and fails the others, in rank order', () => {
    const [g, ...rest] = planDuplicateGroups(rows);
    expect(rest).toEqual([]);
    expect(g!.kept.id).toBe('c');
    expect(g!.extras.map((r) => r.id)).toEqual(['b', 'a']);
    expect(planDuplicateGroups([...rows].reverse())).toEqual([g]);
  });
  it('ignores rows not in flight and orders the groups by (user, day)', () => {
    const plans = planDuplicateGroups([row('x', U2, 'sent', 1), row('z', U2, 'pending', 3), row('y', U2, 'pending', 2), row('e', U1, 'pending', 1, '2025-11-24'), ...rows]);
    expect(plans.map((g) => [g.userId, g.digestDate, g.kept.id, g.extras.map((r) => r.id)])).toEqual([
      [U1, '2025-11-25', 'c', ['b', 'a']],
      [U2, '2025-11-25', 'd', ['y', 'z']],
    ]);
  });
});

describe('chunkByRows', () => {
  it('never splits an item and never exceeds the size unless one item does', () => {
    expect(chunkByRows([2, 2, 3, 1, 5, 1], 4, (n) => n)).toEqual([[2, 2], [3, 1], [5], [1]]);
    expect(chunkByRows([], 4, (n: number) => n)).toEqual([]);
  });
});

describe('batchEnd', () => {
  it('takes items while they fit, at least one, from where it is told', () => {
    const items = [2, 2, 3, 1, 5, 1];
    expect(batchEnd(items, 0, 4, (n) => n)).toBe(2);
    expect(batchEnd(items, 2, 4, (n) => n)).toBe(4);
    // 5 rows do not fit in 4, but a batch takes at least one item
    expect(batchEnd(items, 4, 4, (n) => n)).toBe(5);
    expect(batchEnd(items, 5, 4, (n) => n)).toBe(6);
    expect(batchEnd(items, 6, 4, (n) => n)).toBe(6);
  });
});

describe('nextBatchRows', () => {
  it('scales the last batch by budget over time taken', () => {
    // 500 rows took 200 ms, budget 100 ms: half
    expect(nextBatchRows(500, 200, 100, 500, 25)).toBe(250);
    // 250 rows in 50 ms: 500 fit the budget, which is also at most twice the last and the maximum
    expect(nextBatchRows(250, 50, 100, 500, 25)).toBe(500);
  });
  it('at most doubles, and stays within the bounds', () => {
    // 100 rows in 10 ms would scale to 1000: twice the last is 200
    expect(nextBatchRows(100, 10, 100, 500, 25)).toBe(200);
    // 100 rows in 2 s would scale to 5: the minimum is 25
    expect(nextBatchRows(100, 2000, 100, 500, 25)).toBe(25);
    // a batch timed at 0 ms: twice the last
    expect(nextBatchRows(10, 0, 100, 500)).toBe(20);
    // a maximum below the minimum wins
    expect(nextBatchRows(100, 1000, 100, 10, 25)).toBe(10);
  });
});

describe('batchOutcome', () => {
  const g1 = { userId: U1, digestDate: '2025-11-25' };
  const g2 = { userId: U2, digestDate: '2025-11-25' };
  const g3 = { userId: U1, digestDate: '2025-11-26' };
  const report = (g: typeof g1, visibleN: number, stableN: number, keptId: string | null = null, failed: string[] | null = null): GroupReport => ({ ...g, visibleN, stableN, keptId, failed });
  it('sorts the groups into fixed, deferred (held or changed since the snapshot) and resolved', () => {
    const d = batchOutcome([g1, g2, g3], [report(g1, 3, 3, 'c', ['a', 'b']), report(g2, 2, 1)]);
    expect(d.groups).toEqual([{ ...g1, keptId: 'c', failed: ['a', 'b'] }]);
    expect(d.deferred).toEqual([g2]);
    expect(d.resolved).toEqual([g3]);
  });
  it('counts a group down to one in-flight row as resolved, held or not', () => {
    expect(batchOutcome([g1], [report(g1, 1, 0)]).resolved).toEqual([g1]);
  });
  it('defers a stable group that reports no change rather than count it fixed', () => {
    expect(batchOutcome([g1], [report(g1, 2, 2)]).deferred).toEqual([g1]);
  });
});

const image = (id: string, status: string, at: string, userId = U1): RowImage => ({ id, user_id: userId, digest_date: '2025-11-25', status, created_at: at, sent_at: null });
const entry = (id: string, before: string, after: string, at: string, userId = U1): AuditEntry => ({ rowId: id, before: image(id, before, at, userId), after: image(id, after, at, userId) });
/** A row as it is now: its status, (user, day) and created_at. */
const now = (id: string, status: string, at = '2025-11-25T10:00:00Z', userId = U1): [string, CurrentRow] => [id, { id, status, user_id: userId, digest_date: '2025-11-25', created_at: at }];

describe('decideUndo', () => {
  it('restores rows still as the run left them', () => {
    const e = entry('a', 'pending', 'failed', '2025-11-25T10:00:00Z');
    const d = decideUndo([e], new Map([now('a', 'failed')]), new Map());
    expect(d.restore).toEqual([e]);
    expect(d.skipped).toEqual([]);
  });
  it('skips rows changed since, and rows deleted', () => {
    const d = decideUndo([entry('a', 'pending', 'failed', '2025-11-25T10:00:00Z'), entry('b', 'pending', 'failed', '2025-11-25T10:00:00Z')], new Map([now('a', 'sent')]), new Map());
    expect(d.restore).toEqual([]);
    expect(d.skipped.map((s) => [s.entry.rowId, s.reason])).toEqual([
      ['a', 'status-changed'],
      ['b', 'row-deleted'],
    ]);
  });
  it('never puts a second row in flight for a (user, day)', () => {
    const d = decideUndo(
      [entry('a', 'pending', 'failed', '2025-11-25T10:00:00Z'), entry('b', 'pending', 'failed', '2025-11-25T11:00:00Z'), entry('c', 'pending', 'failed', '2025-11-25T10:00:00Z', U2)],
      new Map([now('a', 'failed', '2025-11-25T10:00:00Z'), now('b', 'failed', '2025-11-25T11:00:00Z'), now('c', 'failed', '2025-11-25T10:00:00Z', U2)]),
      new Map([[`${U2}|2025-11-25`, ['kept-row']]]),
    );
    expect(d.restore.map((e) => e.rowId)).toEqual(['b']);
    expect(d.skipped.map((s) => [s.entry.rowId, s.reason, s.detail]).sort()).toEqual([
      ['a', 'would-duplicate', 'row b of the same user and day is in flight'],
      ['c', 'would-duplicate', 'row kept-row of the same user and day is in flight'],
    ]);
  });
  it('of candidates inside one millisecond, restores the newest to the microsecond', () => {
    // Before-images as the audit's jsonb holds them. 'a' is 100 µs newer than 'b' and 'z' although
    // all share one millisecond; by milliseconds with ties broken by id, 'z' would be restored.
    const at = (us: string) => `2025-11-25T10:00:00.000${us}+00:00`;
    const d = decideUndo(
      [entry('b', 'pending', 'failed', at('100')), entry('a', 'pending', 'failed', at('200')), entry('z', 'pending', 'failed', at('100'))],
      new Map([now('b', 'failed', at('100')), now('a', 'failed', at('200')), now('z', 'failed', at('100'))]),
      new Map(),
    );
    expect(d.restore.map((e) => e.rowId)).toEqual(['a']);
    expect(d.skipped.map((s) => s.entry.rowId).sort()).toEqual(['b', 'z']);
  });
  it('decides "one in flight" in the (user, day) the row is in now, not the one its before-image names', () => {
    // The before-image says U1's day; the row is now in U2's day, where kept-row is in flight.
    const e = entry('a', 'pending', 'failed', '2025-11-25T10:00:00Z', U1);
    const d = decideUndo([e], new Map([now('a', 'failed', '2025-11-25T10:00:00Z', U2)]), new Map([[`${U2}|2025-11-25`, ['kept-row']]]));
    expect(d.skipped.map((s) => [s.entry.rowId, s.reason, s.detail])).toEqual([['a', 'would-duplicate', 'row kept-row of the same user and day is in flight']]);
  });
  it('restores a terminal before-image freely (undo of an undo)', () => {
    const e = entry('a', 'failed', 'pending', '2025-11-25T10:00:00Z');
    const d = decideUndo([e], new Map([now('a', 'pending')]), new Map([[`${U1}|2025-11-25`, ['a', 'z']]]));
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
