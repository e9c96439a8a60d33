import { describe, expect, it } from 'vitest';
import { renderReplay } from '../../src/cli/commands/replay.js';
import { redisCliCommand } from '../../src/cli/options.js';
import { makeStyle } from '../../src/cli/render.js';
import { REPLAY_SCHEMA_VERSION, type ReplayResult } from '../../src/ops/replay.js';
import { dayKey, deliveryProblem, forceOverrides, planReplay, rateDelayMs, recheckInFlight, replayIdempotencyId, type ReplayCandidate, type StreamTarget } from '../../src/core/replay.js';

const U = '6af5e7d3-e736-46da-bfc1-42786f2ab1c0';
const T = '0b7a43c2-9d4e-4b8a-9f1e-2c3d4e5f6a7b';
const H = (n: number) => `a${n}111111-1111-4111-8111-111111111111`;
const input = (h?: string) => ({ userId: U, tenantId: T, digestDate: '2025-11-25', trigger: 'scheduler_retry' as const, historyId: h });
const dlq = (id: string, h?: string): ReplayCandidate => ({ source: 'dlq', sourceId: id, historyId: h, input: input(h) });
const dlqOfU = dlq;

describe('planReplay', () => {
  // each event its own user here: one (user, day) per event, so only the rule under test decides
  const dlq = (id: string, h?: string): ReplayCandidate => {
    const c = dlqOfU(id, h);
    return { ...c, input: { ...c.input!, userId: `${id.replace('-', '').padStart(8, '0')}-0000-4000-8000-000000000000` } };
  };
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

  it('one event per (user, day) in a run: the first publishes, the others of that day skip, --force or not', () => {
    // three failed rows of user U on 2025-11-25 (a double click, then the duplicate fix-duplicates failed), newest first
    const failed = (n: number): ReplayCandidate => ({ source: 'failed', sourceId: H(n), historyId: H(n), input: input(H(n)) });
    const rowsOfDay = new Map([5, 6, 7].map((n) => [H(n), { id: H(n), status: 'failed' }]));
    for (const force of [false, true]) {
      const plan = planReplay([failed(5), failed(6), failed(7)], rowsOfDay, { force });
      expect(plan.map((p) => [p.sourceId, p.action, p.reason])).toEqual([
        [H(5), 'publish', null],
        [H(6), 'skip', 'another event of the day in this replay'],
        [H(7), 'skip', 'another event of the day in this replay'],
      ]);
    }
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
  const failed: ReplayCandidate = { source: 'failed', sourceId: H(1), historyId: H(1), input: input(H(1)) };

  it('another row of the day sent: skipped, and --force publishes it (a resend asked for on purpose)', () => {
    const rows = new Map([[H(1), { id: H(1), status: 'failed', sent_other_id: H(2) }]]);
    expect(planReplay([failed], rows)[0]).toMatchObject({ action: 'skip', reason: 'another row of the day is sent' });
    expect(planReplay([failed], rows, { force: true })[0]).toMatchObject({ action: 'publish', reason: 'another row of the day is sent' });
  });

  it('another row of the day in flight: skipped with or without --force (the worker would send a second digest)', () => {
    const rows = new Map([[H(1), { id: H(1), status: 'failed', in_flight_other_id: H(2) }]]);
    for (const force of [false, true]) expect(planReplay([failed], rows, { force })[0]).toMatchObject({ action: 'skip', reason: 'another row of the day is in flight' });
  });

  it('in flight and sent both: the reason is the one --force cannot override; so is a sent row beside an in-flight one', () => {
    const rows = new Map([
      [H(1), { id: H(1), status: 'failed', in_flight_other_id: H(2), sent_other_id: H(3) }],
      [H(4), { id: H(4), status: 'sent', in_flight_other_id: H(2) }],
    ]);
    const plan = planReplay([failed, dlq('4-0', H(4))], rows, { force: true });
    expect(plan.map((p) => [p.action, p.reason])).toEqual([
      ['skip', 'another row of the day is in flight'],
      ['skip', 'another row of the day is in flight'],
    ]);
  });

  it('an event with no row (no history_id, or its row gone) is blocked by an in-flight row of its own (user, day), with or without --force', () => {
    // the in-flight row H(7) is of user U on 2025-11-25, the day input() gives every event
    const inFlightByDay = new Map([[dayKey(U, '2025-11-25'), H(7)]]);
    const upper: ReplayCandidate = { source: 'dlq', sourceId: '3-0', input: { ...input(), userId: U.toUpperCase() } };
    const otherDay: ReplayCandidate = { source: 'dlq', sourceId: '4-0', input: { ...input(), digestDate: '2025-11-26' } };
    for (const force of [false, true]) {
      const plan = planReplay([dlq('1-0'), dlq('2-0', H(5)), upper, otherDay], new Map(), { force, inFlightByDay });
      expect(plan.map((p) => [p.sourceId, p.action, p.reason])).toEqual([
        ['1-0', 'skip', 'another row of the day is in flight'],
        ['2-0', 'skip', 'another row of the day is in flight'],
        // the database prints user ids lower-case; a DLQ copy may carry them upper-case
        ['3-0', 'skip', 'another row of the day is in flight'],
        // another day of the same user: only the usual reason, which --force overrides
        ['4-0', force ? 'publish' : 'skip', 'no history_id'],
      ]);
    }
  });

  it('forceOverrides: sent, missing and no history_id yes; in flight, a repeat, nothing to rebuild from, an invalid event no', () => {
    for (const r of ['row already sent', 'row missing', 'no history_id', 'another row of the day is sent']) expect(forceOverrides(r, true), r).toBe(true);
    for (const r of ['another row of the day is in flight', 'row went in flight', 'repeat in the source', 'invalid event', null]) expect(forceOverrides(r, true), String(r)).toBe(false);
    expect(forceOverrides('row missing', false)).toBe(false);
  });
});

describe('recheckInFlight: the in-flight rows of the day, read right before a batch is published', () => {
  const DAY = '2025-11-25';
  // user U's (U, DAY) in-flight rows, as the statement returns them (ids lower-case)
  const row = (id: string, userId = U, day = DAY) => ({ id, user_id: userId, digest_date: day });

  it('no in-flight row of the day: nothing blocks', () => {
    expect(recheckInFlight([{ historyId: H(1), userId: U, digestDate: DAY, plannedStatus: 'failed' }], [])).toEqual([null]);
  });

  it('a row other than the event own: another row of the day is in flight, whatever the own row was', () => {
    for (const plannedStatus of ['failed', 'pending', 'sent', undefined]) {
      expect(recheckInFlight([{ historyId: H(1), userId: U, digestDate: DAY, plannedStatus }], [row(H(2))]), String(plannedStatus)).toEqual(['another row of the day is in flight']);
    }
    // the own row in flight too does not hide the other one
    expect(recheckInFlight([{ historyId: H(1), userId: U, digestDate: DAY, plannedStatus: 'pending' }], [row(H(1)), row(H(2))])).toEqual(['another row of the day is in flight']);
  });

  it('the own row in flight now: blocks when it was not in flight at the plan (the service republished it), not when it was (a stuck row, what the replay is for)', () => {
    const events = [
      { historyId: H(1), userId: U, digestDate: DAY, plannedStatus: 'failed' },
      { historyId: H(2), userId: U, digestDate: DAY, plannedStatus: 'sent' },
      // a DLQ event whose row was gone at the plan
      { historyId: H(3), userId: U, digestDate: DAY },
      { historyId: H(4), userId: U, digestDate: DAY, plannedStatus: 'pending' },
    ];
    expect(events.map((e) => recheckInFlight([e], [row(e.historyId)])[0])).toEqual(['row went in flight', 'row went in flight', 'row went in flight', null]);
  });

  it('an event with no history_id is blocked by any in-flight row of its (user, day); a DLQ user id in upper case matches; another user or day does not', () => {
    const V = '7bf5e7d3-e736-46da-bfc1-42786f2ab1c1';
    const reasons = recheckInFlight(
      [
        { userId: U, digestDate: DAY },
        { userId: U.toUpperCase(), digestDate: DAY, historyId: H(5), plannedStatus: 'failed' },
        { userId: U, digestDate: '2025-11-26', historyId: H(6), plannedStatus: 'failed' },
        { userId: V, digestDate: DAY, historyId: H(7), plannedStatus: 'failed' },
      ],
      [row(H(8))],
    );
    expect(reasons).toEqual(['another row of the day is in flight', 'another row of the day is in flight', null, null]);
  });
});

describe('renderReplay: events the recheck before their batch skipped', () => {
  const event = (n: number, over: Partial<ReplayResult['events'][number]>): ReplayResult['events'][number] => ({
    source: 'failed', sourceId: H(n), historyId: H(n), userId: U, digestDate: '2025-11-25',
    action: 'publish', reason: null, skippedAt: null, entryId: `${n}-0`, duplicate: false, outcome: 'added', ...over,
  });
  const result: ReplayResult = {
    schemaVersion: REPLAY_SCHEMA_VERSION, command: 'replay', applied: true, stream: 'stream:digests:generate',
    sources: { fromDlq: null, failedDate: '2025-11-25', historyIds: [] }, mode: 'lua', marker: { prefix: 'idem:replay:', ttlMs: 86_400_000 }, force: false, ratePerSec: null,
    pacing: { group: 'digest-workers', maxlen: 10000, backlogLimit: 9000, stallTimeoutMs: 60_000, groupExists: true, unreadBefore: 0 },
    counts: { candidates: 3, toPublish: 1, skipped: 2, invalid: 0, added: 1, reAdded: 0, duplicates: 0, deliveredGone: 0 },
    events: [
      event(1, {}),
      event(2, { action: 'skip', reason: 'another row of the day is in flight', skippedAt: 'publish', entryId: null, duplicate: null, outcome: null }),
      event(3, { action: 'skip', reason: 'row went in flight', skippedAt: 'publish', entryId: null, duplicate: null, outcome: null }),
    ],
    findings: [],
    invalid: [],
  };

  it('marks them "(at publish)", counts them under the summary, and says --force does not change that', () => {
    const text = renderReplay(result, makeStyle(false), 50);
    expect(text).toContain('skip: another row of the day is in flight (at publish)');
    expect(text).toContain('skip: row went in flight (at publish)');
    expect(text).toContain('1 added, 0 already published, 2 skipped, 0 invalid');
    expect(text).toContain('2 of the skipped were planned but not published: the recheck right before their batch found their day in flight');
    expect(text).toContain('2 skipped events above have a row of the day in flight');
    expect(text).toContain('--force does not change that');
  });
});

describe('deliveryProblem', () => {
  const advice = { redisCli: (a: string) => `redis-cli -u redis://h:6379 ${a}`, rerunWithKeyPrefix: (p: string) => `digest-doctor --key-prefix ${p} replay --apply` };
  const target = (t: Partial<StreamTarget>): StreamTarget => ({ key: 'typo:stream:digests:generate', keyPrefix: 'typo:', group: 'digest-workers', type: 'stream', groupExists: true, elsewhere: [], ...t });

  it('a stream with the group: none', () => {
    expect(deliveryProblem(target({}), advice)).toBeNull();
  });

  it('no stream under the prefix, found under another: rerun with that prefix', () => {
    const p = deliveryProblem(target({ type: 'none', elsewhere: ['prod:'] }), advice)!;
    expect(p.problem).toBe(`no stream typo:stream:digests:generate under key prefix 'typo:': no worker of group "digest-workers" reads there, so a replay would be lost; it exists under key prefix 'prod:'`);
    expect(p.fix).toBe('digest-doctor --key-prefix prod: replay --apply');
    expect(p.finding).toMatchObject({ check: 'delivery', verdict: 'fail', fix: p.fix, items: ['typo:stream:digests:generate'] });
  });

  it('no stream anywhere, or a stream with no group: create the group as the worker does', () => {
    const none = deliveryProblem(target({ type: 'none' }), advice)!;
    expect(none.problem).toContain(`under key prefix 'typo:', nor under any other key prefix`);
    expect(none.fix).toBe('redis-cli -u redis://h:6379 XGROUP CREATE typo:stream:digests:generate digest-workers 0 MKSTREAM');
    const noGroup = deliveryProblem(target({ groupExists: false, group: 'my workers' }), advice)!;
    expect(noGroup.problem).toBe('stream typo:stream:digests:generate has no consumer group "my workers": no worker reads it, so a replay would not be delivered');
    expect(noGroup.fix).toBe(`redis-cli -u redis://h:6379 XGROUP CREATE typo:stream:digests:generate 'my workers' 0 MKSTREAM`);
  });

  it('a key of another type: no command fixes it', () => {
    const p = deliveryProblem(target({ type: 'hash' }), advice)!;
    expect(p.problem).toBe('typo:stream:digests:generate holds a hash, not a stream: nothing can be published there');
    expect(p.fix).toBeNull();
  });
});

describe('redisCliCommand (the fix printed for a missing group)', () => {
  it('the first node of the URL, without its password, -c for a cluster; the database index kept', () => {
    const args = 'XGROUP CREATE p:stream:digests:generate digest-workers 0 MKSTREAM';
    expect(redisCliCommand({ redisUrl: 'redis://:s3cret@10.0.0.5:6380/2', redisCluster: false }, args)).toBe(`redis-cli -u redis://10.0.0.5:6380/2 ${args}`);
    expect(redisCliCommand({ redisUrl: 'redis://a:7000,redis://b:7001', redisCluster: false }, args)).toBe(`redis-cli -c -u redis://a:7000 ${args}`);
    expect(redisCliCommand({ redisUrl: undefined, redisCluster: false }, args)).toBe(`redis-cli -u redis://127.0.0.1:6379 ${args}`);
  });
});
