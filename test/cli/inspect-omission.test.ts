// inspect says what it did not look at, and flags what is wrong in a user's stream entries (issue 15,
// "Nothing that lies by omission"). Expected values worked out by hand from the rows and entries seeded.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serializeEvent } from '../../src/core/event.js';
import { InspectSummarySchema, InspectUserSchema } from '../../src/ops/inspect-schema.js';
import { runCli } from '../helpers/cli.js';
import { createTestSchema, insertRows, TENANT, type TestSchema } from '../helpers/pg.js';
import { createTestRedis, type TestRedis } from '../helpers/redis.js';

const OLD_USER = '11111111-1111-4111-8111-111111111111';
const NEW_USER = '22222222-2222-4222-8222-222222222222';
const NOBODY = '33333333-3333-4333-8333-333333333333';
const OLD_DAY = '2025-11-10';
const DAY = '2025-11-25';
const HISTORY = '44444444-4444-4444-8444-444444444444';

let t: TestSchema;
let r: TestRedis;
beforeAll(async () => {
  t = await createTestSchema();
  r = await createTestRedis();
  // OLD_USER: one pending row created on its day, weeks ago (stuck, older than the 1h default).
  // NEW_USER: one sent row on DAY.
  await insertRows(t, [
    { userId: OLD_USER, digestDate: OLD_DAY, status: 'pending', createdAt: `${OLD_DAY}T08:00:00Z` },
    { userId: NEW_USER, digestDate: DAY, status: 'sent', createdAt: `${DAY}T15:30:00Z`, sentAt: `${DAY}T15:31:00Z` },
  ]);
});
afterAll(async () => {
  await t.cleanup();
  await r.cleanup();
});

describe('inspect with a window (--date / --since)', () => {
  it('names the rows outside the window, and a stuck one there is a finding (exit 1), not "nothing wrong"', async () => {
    const res = await runCli([...t.cliArgs, 'inspect', '--date', DAY]);
    // inside DAY: one sent row, nothing wrong; outside: OLD_USER's one pending row, stuck
    expect(res.code).toBe(1);
    expect(res.stdout).toContain(`1 row outside the window (digest date ${DAY}) was not looked at: 1 in flight, 1 stuck (older than 1h), 0 duplicate groups`);
    expect(res.stdout).not.toContain('nothing wrong');
    const doc = InspectSummarySchema.parse(JSON.parse((await runCli([...t.cliArgs, 'inspect', '--date', DAY, '--json'])).stdout));
    expect(doc.outsideWindow).toEqual({ rows: 1, inFlight: 1, stuck: 1, duplicateGroups: 0 });
    expect(doc.findings.map((f) => [f.check, f.verdict])).toEqual([['outside-window', 'warn']]);
  });

  it('an empty window is not an empty table', async () => {
    const res = await runCli([...t.cliArgs, 'inspect', '--since', '2030-01-01']);
    // both rows are before the window: 2 rows hidden, 1 of them in flight and stuck
    expect(res.code).toBe(1);
    expect(res.stdout).toContain('no rows in the window (digest dates from 2030-01-01)');
    expect(res.stdout).not.toContain('table is empty');
    expect(res.stdout).toContain('2 rows outside the window (digest dates from 2030-01-01) were not looked at: 1 in flight, 1 stuck');
  });

  it('rows outside the window with nothing wrong are said, and the ok line names its scope', async () => {
    const res = await runCli([...t.cliArgs, 'inspect', '--date', OLD_DAY, '--stuck-after', '3650d']);
    // inside OLD_DAY: one pending row, not stuck under a 10-year threshold; outside: the sent row
    expect(res.code).toBe(0);
    expect(res.stdout).toContain(`1 row outside the window (digest date ${OLD_DAY}) was not looked at: 0 in flight, 0 stuck`);
    expect(res.stdout).toContain(`nothing wrong in the window (digest date ${OLD_DAY})`);
  });
});

describe('inspect --user', () => {
  it('a user with no rows at all is a finding about the input (exit 1)', async () => {
    const res = await runCli([...t.cliArgs, 'inspect', '--user', NOBODY, '--date', DAY]);
    expect(res.code).toBe(1);
    expect(res.stdout).toContain(`user ${NOBODY} has no digest_history row on any day: check the user id (and --schema)`);
    expect(res.stdout).not.toContain('nothing wrong');
  });

  it('a day with no rows names the days that have some', async () => {
    const res = await runCli([...t.cliArgs, 'inspect', '--user', OLD_USER, '--date', DAY, '--json']);
    expect(res.code).toBe(1);
    const doc = InspectUserSchema.parse(JSON.parse(res.stdout));
    expect(doc.rowsOnOtherDays).toEqual({ rows: 1, latestDate: OLD_DAY });
    expect(doc.findings).toEqual([
      { check: 'no-rows', verdict: 'warn', message: `user ${OLD_USER} has no digest_history row for ${DAY} (1 row on other days, the latest ${OLD_DAY})`, fix: ['digest-doctor', ...t.cliArgs, 'inspect', '--user', OLD_USER, '--date', OLD_DAY].join(' '), items: [] },
    ]);
  });

  it('flags a history_id published twice, an entry held by a stray consumer, and an entry that does not parse', async () => {
    const stream = r.key('stream:digests:generate');
    const ev = serializeEvent({ schema_version: 'v1', user_id: NEW_USER, tenant_id: TENANT, digest_date: DAY, trigger: 'manual', history_id: HISTORY });
    // 1764085017291 ms = 2025-11-25T15:36:57.291Z, inside DAY
    await r.client.xadd(stream, '1764085017291-0', 'data', ev);
    await r.client.xadd(stream, '1764085018000-0', 'data', ev);
    await r.client.xadd(stream, '1764085019000-0', 'data', '{oops');
    await r.client.xgroup('CREATE', stream, 'digest-workers', '0');
    // someone read one entry by hand, as debug-alice, and never acked it
    await r.client.xreadgroup('GROUP', 'digest-workers', 'debug-alice', 'COUNT', 1, 'STREAMS', stream, '>');
    const res = await runCli([...t.cliArgs, ...r.cliArgs, 'inspect', '--user', NEW_USER, '--date', DAY, '--json']);
    expect(res.code).toBe(1);
    const doc = InspectUserSchema.parse(JSON.parse(res.stdout));
    const by = new Map(doc.findings.map((f) => [f.check, f]));
    expect(by.get('published-twice')).toMatchObject({ verdict: 'fail', message: expect.stringContaining(`history_id ${HISTORY} was published 2 times`), items: ['1764085017291-0', '1764085018000-0'] });
    expect(by.get('stray-consumer')).toMatchObject({ verdict: 'fail', items: ['1764085017291-0'], fix: expect.stringContaining('XGROUP DELCONSUMER stream:digests:generate digest-workers debug-alice') });
    expect(by.get('malformed')).toMatchObject({ verdict: 'warn', message: '1 entry in the window does not parse' });
    // the one sent row is fine: no row finding
    expect(doc.findings.map((f) => f.check).sort()).toEqual(['malformed', 'published-twice', 'stray-consumer']);
    const text = await runCli([...t.cliArgs, ...r.cliArgs, 'inspect', '--user', NEW_USER, '--date', DAY]);
    expect(text.code).toBe(1);
    expect(text.stdout).not.toContain('nothing wrong');
  });
});
