// UUIDs are one value whatever their case: the database prints them lower-case, the service writes
// them lower-case, but a --user typed in upper case or an event whose user_id / history_id another
// producer wrote in upper case is the same user and the same row. Through the built binary.
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DIGEST_DLQ_STREAM, DIGEST_GROUP, DIGEST_STREAM } from '../../src/core/contract.js';
import { buildEvent, serializeEvent } from '../../src/core/event.js';
import { InspectUserSchema } from '../../src/ops/inspect-schema.js';
import { ReplayResultSchema } from '../../src/ops/replay.js';
import { runCli } from '../helpers/cli.js';
import { createTestSchema, ENGINES, INCIDENT, insertRows, seedIncident, TENANT, type TestSchema } from '../helpers/pg.js';
import { createTestRedis, type TestRedis } from '../helpers/redis.js';

let t: TestSchema;
let redis: TestRedis;

/** The event the service would publish, with every UUID in it written upper-case. */
function upperCaseEvent(userId: string, historyId: string, day: string): string {
  const json = serializeEvent(buildEvent({ userId, tenantId: TENANT, digestDate: day, trigger: 'manual', historyId }, new Date('2025-11-25T15:36:58Z'), randomUUID()));
  let out = json;
  for (const id of [userId, historyId, TENANT]) out = out.split(id).join(id.toUpperCase());
  expect(out).not.toBe(json);
  return out;
}

describe.each(ENGINES)('UUIDs in any case (%s)', (engine) => {
  beforeEach(async () => {
    t = await createTestSchema({ engine });
    redis = await createTestRedis();
  });
  afterEach(async () => {
    await redis.cleanup();
    await t.cleanup();
  });

  it('inspect --user in upper case finds the entry whose user_id and history_id are upper case, and reports them lower-case', async () => {
    const s = await seedIncident(t);
    await redis.client.xgroup('CREATE', redis.key(DIGEST_STREAM), DIGEST_GROUP, '0', 'MKSTREAM');
    const entry = await redis.client.xadd(redis.key(DIGEST_STREAM), '1764085018000-0', 'data', upperCaseEvent(INCIDENT.user, s.pendingNew, INCIDENT.day));
    const res = await runCli([...t.cliArgs, ...redis.cliArgs, '--json', 'inspect', '--user', INCIDENT.user.toUpperCase(), '--date', INCIDENT.day]);
    expect(res.code).toBe(1); // the incident's duplicate pair
    const doc = InspectUserSchema.parse(JSON.parse(res.stdout));
    expect(doc.userId).toBe(INCIDENT.user);
    expect(doc.redis).toMatchObject({ skipped: false, lock: { key: `digest:lock:${INCIDENT.user}` } });
    const entries = 'entries' in doc.redis ? doc.redis.entries : [];
    expect(entries.map((e) => [e.stream, e.id, e.historyId])).toEqual([[DIGEST_STREAM, entry, s.pendingNew]]);
    // the entry's history_id is one of the rows listed
    expect(doc.rows.map((r) => r.id)).toContain(entries[0]!.historyId);
  });

  it('replay --from-dlq finds the row of a DLQ event whose history_id is upper case', async () => {
    const day = '2025-11-20';
    const [failed] = await insertRows(t, [{ userId: INCIDENT.cleanUser, digestDate: day, status: 'failed', createdAt: `${day}T06:00:00Z` }]);
    const dlq = await redis.client.xadd(redis.key(DIGEST_DLQ_STREAM), '*', 'data', upperCaseEvent(INCIDENT.cleanUser, failed!, day));
    const res = await runCli([...t.cliArgs, ...redis.cliArgs, '--json', 'replay', '--from-dlq']);
    expect(res.code).toBe(1); // a dry run with an event to replay
    const doc = ReplayResultSchema.parse(JSON.parse(res.stdout));
    expect(doc.events).toEqual([expect.objectContaining({ source: 'dlq', sourceId: dlq, historyId: failed, action: 'publish', reason: null })]);
  });
});
