// inspect and mark-stale, whose Redis parts are optional, on the standalone server and on a cluster.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serializeEvent } from '../../src/core/event.js';
import { InspectSummarySchema, InspectUserSchema } from '../../src/ops/inspect-schema.js';
import { MarkStaleResultSchema } from '../../src/ops/mark-stale.js';
import { runCli } from '../helpers/cli.js';
import { createTestSchema, INCIDENT, seedIncident, TENANT, type TestSchema } from '../helpers/pg.js';
import { REDIS_TARGETS } from '../helpers/redis-targets.js';

for (const target of REDIS_TARGETS) {
  describe(`inspect and mark-stale on ${target.name} Redis`, () => {
    let t: TestSchema;
    let r: Awaited<ReturnType<typeof target.client>>;
    let ids: Awaited<ReturnType<typeof seedIncident>>;
    beforeAll(async () => {
      await target.start();
      t = await createTestSchema();
      ids = await seedIncident(t);
      r = await target.client();
      await r.client.xadd('stream:digests:generate', '1764085149102-0', 'data', serializeEvent({ user_id: INCIDENT.user, tenant_id: TENANT, digest_date: INCIDENT.day, trigger: 'manual', history_id: ids.pendingOld }));
      await r.client.set(`digest:lock:${INCIDENT.user}`, '1');
    });
    afterAll(async () => {
      await r?.cleanup();
      await t?.cleanup();
      await target.stop();
    });

    it('inspect finds the stale lock on every master', async () => {
      const res = await runCli([...t.cliArgs, ...r.cliArgs, 'inspect', '--json']);
      expect(res.code).toBe(1);
      const doc = InspectSummarySchema.parse(JSON.parse(res.stdout));
      expect(doc.locks).toEqual({ skipped: false, stale: [expect.objectContaining({ key: `digest:lock:${INCIDENT.user}`, reason: 'no TTL' })] });
    });

    it('inspect --user finds the entry and the lock', async () => {
      const res = await runCli([...t.cliArgs, ...r.cliArgs, 'inspect', '--user', INCIDENT.user, '--date', INCIDENT.day, '--json']);
      expect(res.code).toBe(1);
      const doc = InspectUserSchema.parse(JSON.parse(res.stdout));
      if (doc.redis.skipped) throw new Error(doc.redis.reason);
      expect(doc.redis.entries.map((e) => e.historyId)).toEqual([ids.pendingOld]);
      expect(doc.redis.lock.noTtl).toBe(true);
      expect(doc.redis.groupsMissing).toEqual(['stream:digests:generate digest-workers']);
    });

    it('mark-stale consults the stream without failing', async () => {
      const res = await runCli([...t.cliArgs, ...r.cliArgs, 'mark-stale', '--older-than', '1d', '--json']);
      expect(res.code).toBe(1);
      const doc = MarkStaleResultSchema.parse(JSON.parse(res.stdout));
      expect(JSON.stringify(doc)).toContain(ids.stuck);
      // the stream is there (TYPE through the client, routed to its master), its group is not: checked, nothing live
      expect(doc.redis).toEqual({ checked: true, groupMissing: true, pendingSeen: 0 });
    });
  });
}
