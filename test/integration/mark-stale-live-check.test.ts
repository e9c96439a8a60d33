// mark-stale's live check when a read fails: a real fault, a Redis user the server denies XRANGE
// (or XPENDING) on a redis-server of this test's own. The check is then incomplete: nothing is
// marked and the run refuses (exit 4), never counting the row a worker holds as not live.
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DIGEST_GROUP, DIGEST_STREAM } from '../../src/core/contract.js';
import { buildEvent, serializeEvent } from '../../src/core/event.js';
import { DoctorError } from '../../src/errors.js';
import { markStale } from '../../src/ops/mark-stale.js';
import type { Db } from '../../src/postgres/db.js';
import { closeRedis, connectRedis } from '../../src/redis/connect.js';
import { runCli } from '../helpers/cli.js';
import { createTestSchema, INCIDENT, seedIncident, TENANT, type TestSchema } from '../helpers/pg.js';
import { checksumExcept, openRepairDb, staleInput } from '../helpers/repair.js';
import { startRedisServer, type TestServer } from '../helpers/redis-server.js';

const NO_XRANGE = { name: 'no-xrange', password: 'pw-no-xrange-3f1c' };
const NO_XPENDING = { name: 'no-xpending', password: 'pw-no-xpending-9a2e' };

let server: TestServer;
beforeAll(async () => {
  server = await startRedisServer();
  await server.admin.call('ACL', 'SETUSER', NO_XRANGE.name, 'on', `>${NO_XRANGE.password}`, '~*', '+@all', '-xrange');
  await server.admin.call('ACL', 'SETUSER', NO_XPENDING.name, 'on', `>${NO_XPENDING.password}`, '~*', '+@all', '-xpending');
}, 30_000);
afterAll(async () => {
  await server?.stop();
});

let t: TestSchema;
let db: Db;
let s: Awaited<ReturnType<typeof seedIncident>>;
beforeEach(async () => {
  t = await createTestSchema();
  db = await openRepairDb(t);
  s = await seedIncident(t);
  // The incident's newest pending row has its event in a worker's hands right now (delivered, idle 0).
  await server.admin.flushall();
  await server.admin.xgroup('CREATE', DIGEST_STREAM, DIGEST_GROUP, '$', 'MKSTREAM');
  const event = buildEvent({ userId: INCIDENT.user, tenantId: TENANT, digestDate: INCIDENT.day, trigger: 'manual', historyId: s.pendingNew }, new Date(), randomUUID());
  await server.admin.xadd(DIGEST_STREAM, '*', 'data', serializeEvent(event));
  await server.admin.xreadgroup('GROUP', DIGEST_GROUP, 'digest-worker-1', 'COUNT', 10, 'STREAMS', DIGEST_STREAM, '>');
});
afterEach(async () => {
  await db.close();
  await t.cleanup();
});

const statusOf = async (id: string) => (await t.client.query(`SELECT status FROM ${t.schema}.digest_history WHERE id = $1`, [id])).rows[0]?.status;

describe('mark-stale when a liveness read fails', () => {
  it('with every read allowed, the row a worker holds is live and left alone (the setup is sound)', async () => {
    const client = await connectRedis({ url: server.url() });
    try {
      const r = await markStale(db, { client }, staleInput({ apply: true }));
      expect(r.live.map((x) => x.id)).toEqual([s.pendingNew]);
      expect(r.applied).toMatchObject({ status: 'done', rowsChanged: 2 });
      expect(await statusOf(s.pendingNew)).toBe('pending');
    } finally {
      await closeRedis(client);
    }
  });

  for (const [user, denied] of [[NO_XRANGE, 'XRANGE'], [NO_XPENDING, 'XPENDING']] as const) {
    it(`refuses, marking nothing, when Redis denies ${denied} (library)`, async () => {
      const client = await connectRedis({ url: server.url(user.name, user.password) });
      try {
        const untouched = await checksumExcept(t.client, t.schema, 'false');
        for (const apply of [false, true]) {
          const err = await markStale(db, { client }, staleInput({ apply })).then(() => null, (e: unknown) => e);
          expect(err).toBeInstanceOf(DoctorError);
          expect(err).toMatchObject({ code: 'REFUSED', exitCode: 4 });
          expect((err as Error).message).toMatch(/live check could not read .*NOPERM.*no row was marked/);
        }
        expect(await checksumExcept(t.client, t.schema, 'false')).toBe(untouched);
        expect(await statusOf(s.pendingNew)).toBe('pending');
        const runs = await t.client.query(`SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = 'runs'`, [t.stateSchema]);
        if (runs.rowCount) expect((await t.client.query(`SELECT count(*)::int AS n FROM ${t.stateSchema}.runs`)).rows[0].n).toBe(0);
      } finally {
        await closeRedis(client);
      }
    });

    it(`the built CLI exits 4 with one line and no password when Redis denies ${denied}`, async () => {
      const untouched = await checksumExcept(t.client, t.schema, 'false');
      const res = await runCli([...t.cliArgs, '--redis-url', server.url(user.name, user.password), 'mark-stale', '--older-than', '1d', '--apply']);
      expect(res.code).toBe(4);
      expect(res.stderr.trim().split('\n')).toHaveLength(1);
      expect(res.stderr).toMatch(/^digest-doctor: the live check could not read .*no row was marked: let the Redis user run TYPE, XPENDING and XRANGE/);
      expect(res.stdout + res.stderr).not.toContain(user.password);
      expect(await checksumExcept(t.client, t.schema, 'false')).toBe(untouched);
    });
  }
});
