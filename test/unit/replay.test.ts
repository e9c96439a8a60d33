import { describe, expect, it } from 'vitest';
import { planReplay, rateDelayMs, replayIdempotencyId, type ReplayCandidate } from '../../src/core/replay.js';

const U = '6af5e7d3-e736-46da-bfc1-42786f2ab1c0';
const T = '0b7a43c2-9d4e-4b8a-9f1e-2c3d4e5f6a7b';
const H = (n: number) => `a${n}111111-1111-4111-8111-111111111111`;
const input = (h?: string) => ({ userId: U, tenantId: T, digestDate: '2025-11-25', trigger: 'scheduler_retry' as const, historyId: h });
const dlq = (id: string, h?: string): ReplayCandidate => ({ source: 'dlq', sourceId: id, historyId: h, input: input(h) });

describe('planReplay', () => {
  const rows = new Map([
    [H(1), { id: H(1), status: 'pending' }],
    [H(2), { id: H(2), status: 'sent' }],
    [H(3), { id: H(3), status: 'failed' }],
  ]);

  it('publishes in-flight and failed rows, skips sent, missing, no history_id and repeats', () => {
    const plan = planReplay([dlq('1-0', H(1)), dlq('2-0', H(2)), dlq('3-0', H(3)), dlq('4-0', H(4)), dlq('5-0'), dlq('6-0', H(1))], rows);
    expect(plan.map((p) => [p.sourceId, p.action, p.reason])).toEqual([
      ['1-0', 'publish', null],
      ['2-0', 'skip', 'row already sent'],
      ['3-0', 'publish', null],
      ['4-0', 'skip', 'row missing'],
      ['5-0', 'skip', 'no history_id'],
      ['6-0', 'skip', 'repeat in the source'],
    ]);
  });

  it('--force includes sent and missing rows, never a repeat or an event with nothing to rebuild from', () => {
    const named: ReplayCandidate = { source: 'history-id', sourceId: H(9), historyId: H(9), input: null };
    const plan = planReplay([dlq('2-0', H(2)), dlq('4-0', H(4)), dlq('5-0'), dlq('6-0', H(2)), named], rows, { force: true });
    expect(plan.map((p) => p.action)).toEqual(['publish', 'publish', 'publish', 'skip', 'skip']);
    expect(plan[4]!.reason).toBe('row missing');
  });
});

describe('replay helpers', () => {
  it('dedupes on the history_id, or on the DLQ entry when the event has none', () => {
    expect(replayIdempotencyId({ source: 'dlq', sourceId: '1-0', historyId: H(1) })).toBe(H(1));
    expect(replayIdempotencyId({ source: 'dlq', sourceId: '1-0' })).toBe('dlq:1-0');
  });

  it('waits so that sent events take sent/rate seconds', () => {
    expect(rateDelayMs(100, 0, undefined)).toBe(0);
    expect(rateDelayMs(100, 0, 100)).toBe(1000);
    expect(rateDelayMs(100, 400, 100)).toBe(600);
    expect(rateDelayMs(100, 2000, 100)).toBe(0);
  });
});

describe('planReplay and the rest of the day', () => {
  it('skips a row whose (user, day) has another row sent or in flight; --force includes it', () => {
    const rows = new Map([[H(1), { id: H(1), status: 'failed', other_id: H(2) }]]);
    const c: ReplayCandidate = { source: 'failed', sourceId: H(1), historyId: H(1), input: input(H(1)) };
    expect(planReplay([c], rows)[0]).toMatchObject({ action: 'skip', reason: 'another row of the day is sent or in flight' });
    expect(planReplay([c], rows, { force: true })[0]!.action).toBe('publish');
  });
});
