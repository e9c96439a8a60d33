// The demo's incident (rows in Postgres, streams in Redis) in a test's own schema and key prefix,
// built by the same library functions `digest-doctor demo` uses.
import { md5Uuid, seedDemoDatabase, seedDemoRedis, type DemoRedisFacts } from '../../src/ops/demo.js';
import { connectPg } from '../../src/postgres/db.js';
import { closeRedis, connectRedis } from '../../src/redis/connect.js';
import { createTestSchema, type TestSchema } from './pg.js';
import { createTestRedis, type TestRedis } from './redis.js';

export interface DemoFixture {
  t: TestSchema;
  r: TestRedis;
  facts: DemoRedisFacts;
  /** The digest_date of the demo's failed rows (what `replay --failed --date` takes). */
  failedDay: string;
  /** Global flags for both. */
  args: string[];
  cleanup(): Promise<void>;
}

export async function createDemoFixture(): Promise<DemoFixture> {
  const t = await createTestSchema({ withTables: false });
  const r = await createTestRedis();
  const db = await connectPg({ url: t.url, schema: t.schema, stateSchema: t.stateSchema, statementTimeoutMs: 30_000 });
  const redis = await connectRedis({ url: r.url, cluster: false, keyPrefix: r.prefix });
  const raw = await connectRedis({ url: r.url, cluster: false });
  try {
    await seedDemoDatabase(db, { force: true });
    const facts = await seedDemoRedis(redis, raw, r.prefix, db);
    const [row] = await db.raw<{ d: string }>(`SELECT digest_date::text AS d FROM ${t.schema}.digest_history WHERE id = $1`, [md5Uuid('demo-failed-1')]);
    return {
      t,
      r,
      facts,
      failedDay: row!.d,
      args: [...t.cliArgs, ...r.cliArgs],
      async cleanup() {
        await r.cleanup();
        await t.cleanup();
      },
    };
  } finally {
    await db.close();
    await closeRedis(redis);
    await closeRedis(raw);
  }
}
