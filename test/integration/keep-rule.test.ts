// The keep rule is defined once, in src/core (compareNewestFirst, classifyGroup). The SQL that
// applies it on its own (fix_duplicate_rows.sql and fix_batch.sql for fix-duplicates,
// inspect_user_rows.sql for inspect --user, request_day_rows.sql for requestDigest) is run here over
// the same rows as the core, every row of a (user, day) inside one millisecond, ties included, and
// must pick the same row in the same order. The expected order comes from the core over the
// timestamps as written, never from what the database read back.
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IN_FLIGHT_STATUSES } from '../../src/core/contract.js';
import { correctedDecision, microsFromTimestamp, newestFirst, type DecisionRow } from '../../src/core/decision.js';
import { classifyGroup, KEEP_POLICIES } from '../../src/core/duplicates.js';
import { fixDuplicates } from '../../src/ops/fix-duplicates.js';
import { inspectUser } from '../../src/ops/inspect.js';
import type { Db } from '../../src/postgres/db.js';
import { connectRedis, closeRedis, type RedisClient } from '../../src/redis/connect.js';
import { requestDigest } from '../../src/service/request-digest.js';
import { createTestSchema, ENGINES, insertRows, TENANT, type TestSchema } from '../helpers/pg.js';
import { createTestRedis, type TestRedis } from '../helpers/redis.js';
import { batchDefaults, openRepairDb } from '../helpers/repair.js';

const DAY = '2025-11-25';
/** Inside one millisecond: 10:00:00.000, plus `us` microseconds (0..999). */
const at = (us: number) => `${DAY}T10:00:00.${String(us).padStart(6, '0')}Z`;
const id = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;

interface Row extends DecisionRow {
  userId: string;
  at: string;
}

/**
 * Hand-made groups (ids against their order in time, and ties, so a millisecond clock with ties
 * broken by id keeps another row), then seeded random ones over a few microsecond values.
 */
function groups(): Row[][] {
  const row = (user: string, n: number, status: string, us: number): Row => ({ id: id(n), userId: user, status, at: at(us), createdUs: microsFromTimestamp(at(us)) });
  const out: Row[][] = [];
  const u1 = randomUUID();
  out.push([row(u1, 0x0a, 'pending', 300), row(u1, 0x0b, 'processing', 200), row(u1, 0x0c, 'scheduled', 100), row(u1, 0x0d, 'sent', 900)]);
  const u2 = randomUUID();
  out.push([row(u2, 0x1a, 'pending', 500), row(u2, 0x1b, 'pending', 500), row(u2, 0x1c, 'pending', 400), row(u2, 0x19, 'failed', 600)]);
  // No row in flight: the newest row is the sent one, 100 µs after a failed one with a greater id.
  const u3 = randomUUID();
  out.push([row(u3, 0x2a, 'sent', 200), row(u3, 0x2b, 'failed', 100)]);
  let seed = 20251125;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const statuses = [...IN_FLIGHT_STATUSES, 'sent', 'failed'];
  const micros = [0, 1, 1, 500, 999];
  for (let g = 0; g < 12; g++) {
    const user = randomUUID();
    const n = 2 + rand(5);
    out.push(Array.from({ length: n }, (_, k) => row(user, 0x100 + g * 64 + k * 8 + rand(8), statuses[rand(statuses.length)]!, micros[rand(micros.length)]!)));
  }
  return out;
}

let t: TestSchema;
let db: Db;
let all: Row[][];


const ids = (rows: readonly { id: string }[]) => rows.map((r) => r.id);
const duplicated = () => all.filter((g) => classifyGroup(g).extras.length > 0);

describe.each(ENGINES)('keep-rule (%s)', (engine) => { // the whole file, on each engine (not reindented)
beforeEach(async () => {
  t = await createTestSchema({ engine });
  db = await openRepairDb(t);
  all = groups();
  // The service's CHECK allows pending, sent and failed; the contract's other in-flight statuses
  // (processing, scheduled) are allowed here, as a deployment that uses them would.
  await t.client.query(`ALTER TABLE ${t.schema}.digest_history DROP CONSTRAINT chk_digest_status`);
  await t.client.query(`ALTER TABLE ${t.schema}.digest_history ADD CONSTRAINT chk_digest_status CHECK (status IN ('scheduled', 'pending', 'processing', 'sent', 'failed'))`);
  await insertRows(t, all.flat().map((r) => ({ id: r.id, userId: r.userId, digestDate: DAY, status: r.status, createdAt: r.at })));
});
afterEach(async () => {
  await db.close();
  await t.cleanup();
});
describe('the keep rule, in SQL and in the core, to the microsecond', () => {
  it('the cases are worked out by hand: the core keeps by microseconds, then id', () => {
    const [g1, g2] = all;
    expect(classifyGroup(g1!).kept?.id).toBe(id(0x0a));
    expect(classifyGroup(g1!, 'oldest').kept?.id).toBe(id(0x0c));
    expect(ids(classifyGroup(g2!).inFlight)).toEqual([id(0x1b), id(0x1a), id(0x1c)]);
    expect(classifyGroup(g2!, 'oldest').kept?.id).toBe(id(0x1c));
    expect(duplicated().length).toBeGreaterThan(4);
  });

  it.each(KEEP_POLICIES)('fix-duplicates plans (fix_duplicate_rows) and applies (fix_batch) keep %s as the core does', async (keep) => {
    const plan = await fixDuplicates(db, { ...batchDefaults(), keep, apply: false });
    const byUser = new Map(plan.plan.items.map((g) => [g.userId, g]));
    expect(plan.plan.groups).toBe(duplicated().length);
    for (const g of duplicated()) {
      const c = classifyGroup(g, keep);
      const p = byUser.get(g[0]!.userId);
      expect(p?.keep.id).toBe(c.kept!.id);
      expect(ids(p!.fail)).toEqual(ids(c.extras));
    }
    const applied = await fixDuplicates(db, { ...batchDefaults({ batchSize: 3 }), keep, apply: true });
    expect(applied.applied).toMatchObject({ status: 'done', skipped: [] });
    const { rows } = await t.client.query<{ id: string }>(`SELECT id::text AS id FROM ${t.schema}.digest_history WHERE status = ANY ($1) ORDER BY id`, [[...IN_FLIGHT_STATUSES]]);
    const stillInFlight = all.map((g) => classifyGroup(g, keep).kept).filter((r): r is Row => r !== undefined);
    expect(ids(rows)).toEqual(ids(stillInFlight).sort());
  });

  it.each(KEEP_POLICIES)('inspect --user (inspect_user_rows) lists newest first and marks the row the core keeps (%s)', async (keep) => {
    for (const g of all) {
      const out = await inspectUser(db, { skipped: 'Redis not configured' }, { userId: g[0]!.userId, digestDate: DAY, timeZone: 'Europe/Moscow', stuckAfterMs: 3_600_000, keep });
      expect(ids(out.rows)).toEqual(ids(newestFirst(g)));
      const c = classifyGroup(g, keep);
      expect(out.rows.filter((r) => r.marks.includes('kept')).map((r) => r.id)).toEqual(c.extras.length ? [c.kept!.id] : []);
      expect(out.rows.filter((r) => r.marks.includes('duplicate')).map((r) => r.id).sort()).toEqual(ids(c.extras).sort());
    }
  });

  describe('requestDigest (request_day_rows)', () => {
    let redis: TestRedis;
    let client: RedisClient;
    beforeEach(async () => {
      redis = await createTestRedis();
      client = await connectRedis({ url: redis.url, keyPrefix: redis.prefix });
    });
    afterEach(async () => {
      await closeRedis(client);
      await redis?.cleanup();
    });

    it('returns the row the core decides on, newest to the microsecond', async () => {
      let returned = 0;
      for (const g of all) {
        const expected = correctedDecision(g, 'scheduler');
        // An insert needs the unique index (migrate); the rows a request returns are what is compared.
        if (expected.action !== 'return') continue;
        const r = await requestDigest(db, client, { userId: g[0]!.userId, tenantId: TENANT, trigger: 'scheduler', now: new Date(`${DAY}T12:00:00Z`) });
        expect(r).toMatchObject({ action: 'return', published: null });
        expect(r.row.id).toBe(expected.rowId);
        returned++;
      }
      // the third hand-made group: the sent row, 100 µs newer than a failed row with a greater id
      expect(correctedDecision(all[2]!, 'scheduler')).toMatchObject({ action: 'return', rowId: id(0x2a) });
      expect(returned).toBeGreaterThan(3);
    });
  });
});
});
