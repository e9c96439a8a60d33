// Helpers for the repair suites (fix-duplicates, mark-stale, undo): a Db on a test schema, bulk
// seeding in SQL, and checksums of the rows a repair must not touch.
import type { QueryClient } from './engine.js';
import type { Db } from '../../src/postgres/db.js';
import type { MarkStaleInput } from '../../src/ops/mark-stale.js';
import type { BatchOptions } from '../../src/ops/repair.js';
import { TENANT, openTestDb, type TestSchema } from './pg.js';

/** A Db on the test schema, on the test's engine. */
export async function openRepairDb(t: TestSchema): Promise<Db> {
  return openTestDb(t, 30_000);
}

export const batchDefaults = (over: Partial<BatchOptions> = {}): BatchOptions => ({ batchSize: 500, lockTimeoutMs: 2_000, lockWaitMs: 200, ...over });

export const NO_REDIS = { skipped: 'Redis not configured' };

/** mark-stale's input in the repair suites: rows older than a day, Redis not consulted, a dry run unless `apply`. */
export const staleInput = (over: Partial<MarkStaleInput> = {}): MarkStaleInput => ({ ...batchDefaults(), olderThanMs: 86_400_000, includeLive: false, liveIdleMs: 300_000, apply: false, ...over });

/**
 * Seeds `groups` users, each with `perGroup` pending rows on `day` created one second apart from
 * `base`, plus `sentPerGroup` sent rows, in SQL. Users and rows get ids md5('<tag>u<g>') and
 * md5('<tag>r<g>-<k>') so each seeding is distinct. Returns the user ids.
 */
export async function seedGroups(
  t: TestSchema,
  opts: { tag: string; groups: number; perGroup: number; sentPerGroup?: number; day: string; base: string },
): Promise<string[]> {
  const c = t.client;
  await c.query(`INSERT INTO ${t.schema}.tenants (id) VALUES ($1) ON CONFLICT DO NOTHING`, [TENANT]);
  const users = await c.query<{ id: string }>(
    `INSERT INTO ${t.schema}.users (id, tenant_id, telegram_id)
     SELECT md5($1 || 'u' || g)::uuid, $2, g FROM generate_series(1, $3::int) g
     ON CONFLICT DO NOTHING RETURNING id::text AS id`,
    [opts.tag, TENANT, opts.groups],
  );
  await c.query(
    `INSERT INTO ${t.schema}.digest_history (id, user_id, tenant_id, digest_date, content, status, created_at, sent_at)
     SELECT md5($1 || 'r' || g || '-' || k)::uuid, md5($1 || 'u' || g)::uuid, $2, $3::date, '',
            CASE WHEN k <= $5 THEN 'pending' ELSE 'sent' END,
            $4::timestamptz + make_interval(secs => k),
            CASE WHEN k <= $5 THEN NULL ELSE $4::timestamptz + make_interval(secs => k + 30) END
     FROM generate_series(1, $6::int) g, generate_series(1, $5::int + $7::int) k`,
    [opts.tag, TENANT, opts.day, opts.base, opts.perGroup, opts.groups, opts.sentPerGroup ?? 0],
  );
  return users.rows.map((r) => r.id);
}

/** md5 of every row (as text, in id order) except `excluded`: proves the rest of the table is untouched. */
export async function checksumExcept(c: QueryClient, schema: string, where: string, params: unknown[] = []): Promise<string> {
  const { rows } = await c.query<{ sum: string | null }>(`SELECT md5(string_agg(d::text, '|' ORDER BY d.id)) AS sum FROM ${schema}.digest_history d WHERE NOT (${where})`, params);
  return rows[0]!.sum ?? 'empty';
}

/** In-flight rows per (user, day): group key -> count, for groups that have any row. */
export async function inFlightPerGroup(c: QueryClient, schema: string): Promise<Map<string, number>> {
  const { rows } = await c.query<{ k: string; n: number }>(
    `SELECT user_id || '|' || digest_date AS k, count(*) FILTER (WHERE status IN ('pending', 'processing', 'scheduled'))::int AS n
     FROM ${schema}.digest_history GROUP BY user_id, digest_date`,
  );
  return new Map(rows.map((r) => [r.k, r.n]));
}
