// Shared by the benchmarks: a throwaway database with the service's schema, bulk data made by
// generate_series on the server (fast, no client round trips), and side-by-side timing.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pg from 'pg';

export const ADMIN_DATABASE_URL = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

const SERVICE_SCHEMA = readFileSync(new URL('../sql/fixtures/service_schema.sql', import.meta.url), 'utf8');

export function withDatabase(url, database) {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** Creates a database for one benchmark; returns its URL and a drop(). */
export async function createBenchDatabase(label) {
  const name = `dd_bench_${label}_${randomBytes(3).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = withDatabase(ADMIN_DATABASE_URL, name);
  return {
    url,
    async drop() {
      const c = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** The service's tables in `schema` (created). */
export async function createServiceSchema(client, schema) {
  await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
  await client.query(SERVICE_SCHEMA.replaceAll('{{schema}}', schema));
}

/**
 * Fills <schema>.digest_history with `rows` rows over `users` users: mostly sent, `dupGroups`
 * (user, day) groups with two in-flight rows, and `stale` lone pending rows older than 8 days.
 * Deterministic (md5-derived uuids), so two schemas filled alike are identical.
 */
export async function fillDigestHistory(client, schema, { rows, users = Math.max(1000, Math.floor(rows / 30)), dupGroups = 0, stale = 0 }) {
  const tenant = '0b7a43c2-9d4e-4b8a-9f1e-2c3d4e5f6a7b';
  await client.query(`INSERT INTO ${schema}.tenants (id) VALUES ($1) ON CONFLICT DO NOTHING`, [tenant]);
  await client.query(
    `INSERT INTO ${schema}.users (id, tenant_id, telegram_id)
     SELECT md5('u' || g)::uuid, $1, g FROM generate_series(1, $2) g ON CONFLICT DO NOTHING`,
    [tenant, users],
  );
  const plain = rows - dupGroups * 2 - stale;
  // plain rows: user g % users, one row per (user, day) going back in time; all sent
  await client.query(
    `INSERT INTO ${schema}.digest_history (id, user_id, tenant_id, digest_date, content, status, created_at, sent_at)
     SELECT md5('r' || g)::uuid, md5('u' || (g % $2 + 1))::uuid, $3,
            DATE '2025-11-25' - (g / $2)::int, 'digest', 'sent',
            TIMESTAMPTZ '2025-11-25 06:00:00+00' - make_interval(days => (g / $2)::int), TIMESTAMPTZ '2025-11-25 06:01:00+00' - make_interval(days => (g / $2)::int)
     FROM generate_series(0, $1 - 1) g`,
    [plain, users, tenant],
  );
  if (dupGroups) {
    // two pending rows for (user, a day in the future of the plain rows), a second apart
    await client.query(
      `INSERT INTO ${schema}.digest_history (id, user_id, tenant_id, digest_date, content, status, created_at)
       SELECT md5('d' || g || '-' || k)::uuid, md5('u' || (g % $2 + 1))::uuid, $3,
              DATE '2025-11-26' + (g / $2)::int, '', 'pending',
              now() - interval '10 minutes' + make_interval(secs => k)
       FROM generate_series(0, $1 - 1) g, generate_series(0, 1) k`,
      [dupGroups, users, tenant],
    );
  }
  if (stale) {
    await client.query(
      `INSERT INTO ${schema}.digest_history (id, user_id, tenant_id, digest_date, content, status, created_at)
       SELECT md5('s' || g)::uuid, md5('u' || (g % $2 + 1))::uuid, $3,
              DATE '2024-01-01' - (g / $2)::int, '', 'pending', now() - interval '8 days' - make_interval(secs => g)
       FROM generate_series(0, $1 - 1) g`,
      [stale, users, tenant],
    );
  }
  await client.query(`ANALYZE ${schema}.digest_history`);
}

/** Wall time of fn in ms. */
export async function time(fn) {
  const t0 = process.hrtime.bigint();
  const value = await fn();
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, value };
}

/** Best of n runs (the least disturbed by the other core's work). */
export async function bestOf(n, fn) {
  let best = Infinity;
  let value;
  for (let i = 0; i < n; i++) {
    const r = await time(fn);
    if (r.ms < best) {
      best = r.ms;
      value = r.value;
    }
  }
  return { ms: best, value };
}

export function result(name, value, unit, baseline, target, higherIsBetter = false) {
  const ratio = baseline ? value / baseline : null;
  const pass = target == null || ratio == null ? null : higherIsBetter ? ratio >= target : ratio <= target;
  return { name, value: Math.round(value * 100) / 100, unit, baseline: baseline == null ? null : Math.round(baseline * 100) / 100, ratio: ratio == null ? null : Math.round(ratio * 100) / 100, target, pass };
}

/** The element of `list` whose key(x) is the median (the lower middle for an even count). */
export function median(list, key) {
  return [...list].sort((a, b) => key(a) - key(b))[(list.length - 1) >> 1];
}
