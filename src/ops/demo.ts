// `demo`: builds the incident's picture in a database (and, where Redis answers, under a key prefix
// of its own), for the walk-through in src/cli/commands/demo.ts.
import { createHash, randomUUID } from 'node:crypto';
import { DIGEST_DLQ_GROUP, DIGEST_DLQ_STREAM, DIGEST_GROUP, DIGEST_STREAM, CONTEXT_STREAM } from '../core/contract.js';
import { buildEvent, serializeEvent } from '../core/event.js';
import { DoctorError } from '../errors.js';
import type { Db } from '../postgres/db.js';
import { loadSqlFile, quoteIdent, renderSql } from '../postgres/sql.js';
import type { RedisClient } from '../redis/connect.js';

/** The key prefix the demo's Redis keys live under unless --key-prefix names another. */
export const DEMO_KEY_PREFIX = 'digest-doctor-demo:';
export const DEMO_TENANT = '0b7a43c2-9d4e-4b8a-9f1e-2c3d4e5f6a7b';
export const INCIDENT_USER = '6af5e7d3-e736-46da-bfc1-42786f2ab1c0';
export const INCIDENT_DAY = '2025-11-25';

/** md5(text)::uuid, as Postgres casts it (sql/fixtures/demo.sql names its rows so). */
export function md5Uuid(text: string): string {
  const h = createHash('md5').update(text).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The user whose fresh row the demo marks by mistake and then undoes. */
export const FRESH_USER = md5Uuid('demo-user-13');

/**
 * Creates the service's tables (sql/fixtures/service_schema.sql) with the incident's rows and the
 * demo's (incident.sql, demo.sql) in db's schema. A schema that already holds digest_history rows is
 * refused (REFUSED, exit 4) unless `force`, which drops the service's three tables and the tool's
 * state schema first. The embedded database is the demo's own: it is always rebuilt.
 */
export async function seedDemoDatabase(db: Db, opts: { force: boolean }): Promise<{ rows: number }> {
  const schema = quoteIdent(db.ids.schema);
  const [exists] = await db.raw<{ t: string | null }>(`SELECT to_regclass($1) AS t`, [`${schema}.digest_history`]);
  if (exists?.t) {
    const [n] = await db.raw<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.digest_history`);
    if ((n?.n ?? 0) > 0 && !opts.force && db.engine !== 'embedded') {
      throw new DoctorError('REFUSED', `schema ${db.ids.schema} on ${db.target} already holds ${n!.n} digest_history rows: the demo builds its own tables; use an empty database or schema (--schema demo), or pass --force to drop and rebuild them`);
    }
  }
  await db.raw(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
  await db.raw(`DROP TABLE IF EXISTS ${schema}.digest_history, ${schema}.users, ${schema}.tenants CASCADE`);
  await db.raw(`DROP SCHEMA IF EXISTS ${quoteIdent(db.ids.state)} CASCADE`);
  for (const f of ['fixtures/service_schema.sql', 'fixtures/incident.sql', 'fixtures/demo.sql']) await db.raw(renderSql(loadSqlFile(f), db.ids));
  const [n] = await db.raw<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.digest_history`);
  return { rows: n?.n ?? 0 };
}

export interface DemoRedisFacts {
  strayConsumer: string;
  strayEntry: string;
  poisonEntry: string;
  poisonHistoryId: string;
  staleLock: string;
}

const WORKER = 'digest-worker-4242';
const STRAY = 'debug-laptop';

function event(userId: string, historyId: string, digestDate: string, trigger: 'scheduler' | 'manual' = 'scheduler') {
  return serializeEvent(buildEvent({ userId, tenantId: DEMO_TENANT, digestDate, trigger, historyId, requestedBy: trigger === 'manual' ? 'bot' : undefined } as never, new Date(), randomUUID()));
}

/**
 * Builds the demo's streams with `redis` (a client whose keyPrefix is the demo's): first removes
 * every key under `prefix` (with `raw`, a client without keyPrefix), then the digest stream and its
 * group, events for recent digests (acked by a worker), the incident's two events plus one event
 * published twice, a stray consumer holding an entry, a poison entry delivered four times, a DLQ in
 * both shapes with its group, the context stream, and a lock key left without a TTL.
 */
export async function seedDemoRedis(redis: RedisClient, raw: RedisClient, prefix: string, db: Db): Promise<DemoRedisFacts> {
  let cursor = '0';
  for (let i = 0; i < 10_000; i++) {
    const [next, keys] = (await raw.scan(cursor, 'MATCH', `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`, 'COUNT', 500)) as [string, string[]];
    if (keys.length) await raw.del(...keys);
    cursor = next;
    if (cursor === '0') break;
  }
  await redis.xgroup('CREATE', DIGEST_STREAM, DIGEST_GROUP, '$', 'MKSTREAM');
  await redis.xgroup('CREATE', DIGEST_DLQ_STREAM, DIGEST_DLQ_GROUP, '$', 'MKSTREAM');
  await redis.xadd(CONTEXT_STREAM, '*', 'data', JSON.stringify({ schema_version: 'v1', tenant_id: DEMO_TENANT, context: 'channels' }));

  const schema = quoteIdent(db.ids.schema);
  const sent = await db.raw<{ id: string; user_id: string; d: string }>(
    `SELECT id::text, user_id::text, digest_date::text AS d FROM ${schema}.digest_history WHERE status = 'sent' AND created_at > now() - interval '2 days' ORDER BY created_at, id LIMIT 12`,
  );
  // Yesterday's digests: published, delivered to the worker and acked.
  for (const r of sent) await redis.xadd(DIGEST_STREAM, 'MAXLEN', '~', '10000', '*', 'data', event(r.user_id, r.id, r.d));
  await redis.xreadgroup('GROUP', DIGEST_GROUP, WORKER, 'COUNT', sent.length, 'STREAMS', DIGEST_STREAM, '>');
  const ids = (await redis.xrange(DIGEST_STREAM, '-', '+')).map(([id]) => id);
  if (ids.length) await redis.xack(DIGEST_STREAM, DIGEST_GROUP, ...ids);

  // The incident: both double-click rows were published, and the second twice (a publisher retry).
  await redis.xadd(DIGEST_STREAM, '*', 'data', event(INCIDENT_USER, 'a1111111-1111-4111-8111-111111111111', INCIDENT_DAY, 'manual'));
  await redis.xadd(DIGEST_STREAM, '*', 'data', event(INCIDENT_USER, 'a2222222-2222-4222-8222-222222222222', INCIDENT_DAY, 'manual'));
  await redis.xadd(DIGEST_STREAM, '*', 'data', event(INCIDENT_USER, 'a2222222-2222-4222-8222-222222222222', INCIDENT_DAY, 'manual'));
  // Someone ran XREADGROUP by hand while diagnosing: a stray consumer now holds the first of them.
  const stray = (await redis.xreadgroup('GROUP', DIGEST_GROUP, STRAY, 'COUNT', 1, 'STREAMS', DIGEST_STREAM, '>')) as Array<[string, Array<[string, string[]]>]>;
  const strayEntry = stray[0]![1][0]![0];
  // The worker took the other two.
  await redis.xreadgroup('GROUP', DIGEST_GROUP, WORKER, 'COUNT', 2, 'STREAMS', DIGEST_STREAM, '>');
  await redis.xack(DIGEST_STREAM, DIGEST_GROUP, ...(await redis.xrange(DIGEST_STREAM, strayEntry, '+')).map(([id]) => id).filter((id) => id !== strayEntry));

  // A poison entry: a failed row's event the worker keeps failing on (delivered four times).
  const poisonHistoryId = md5Uuid('demo-failed-1');
  const poisonEntry = (await redis.xadd(DIGEST_STREAM, '*', 'data', event(md5Uuid('demo-user-1'), poisonHistoryId, (await rowDate(db, poisonHistoryId))!)))!;
  await redis.xreadgroup('GROUP', DIGEST_GROUP, WORKER, 'COUNT', 1, 'STREAMS', DIGEST_STREAM, '>');
  await redis.call('XCLAIM', DIGEST_STREAM, DIGEST_GROUP, WORKER, '0', poisonEntry, 'RETRYCOUNT', '4');

  // The DLQ, in both shapes: (a) flat fields, (b) the event with dlq_* fields inside `data`.
  const failed2 = md5Uuid('demo-failed-2');
  const failed3 = md5Uuid('demo-failed-3');
  await redis.xadd(DIGEST_DLQ_STREAM, '*', 'original_stream', DIGEST_STREAM, 'original_message_id', '0-1', 'error', 'LLM timeout after 120 s', 'retry_count', '3', 'failed_at', new Date().toISOString(), 'data', event(md5Uuid('demo-user-2'), failed2, (await rowDate(db, failed2))!));
  const embedded = { ...JSON.parse(event(md5Uuid('demo-user-3'), failed3, (await rowDate(db, failed3))!)), dlq_reason: 'generation_failed', dlq_reason_details: 'LLM timeout after 120 s', dlq_timestamp: new Date().toISOString(), retry_count: 3, origin_stream: DIGEST_STREAM };
  await redis.xadd(DIGEST_DLQ_STREAM, '*', 'data', JSON.stringify(embedded));

  // The bot's double-click lock, left without a TTL by a crash between SET and EXPIRE.
  const staleLock = `digest:lock:${INCIDENT_USER}`;
  await redis.set(staleLock, '1');
  return { strayConsumer: STRAY, strayEntry, poisonEntry, poisonHistoryId, staleLock };
}

async function rowDate(db: Db, id: string): Promise<string | undefined> {
  const [r] = await db.raw<{ d: string }>(`SELECT digest_date::text AS d FROM ${quoteIdent(db.ids.schema)}.digest_history WHERE id = $1`, [id]);
  return r?.d;
}
