// `inspect --user` (the on-call's first command) on a 1,000,000-row digest_history and a
// 1,000,000-entry stream spread over 100 days, against the same single-user statements sent by bare
// clients; and the plans of its Postgres statements (EXPLAIN on the real table: no sequential scan of
// digest_history), and how much of the stream the window read touches.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { Redis } from 'ioredis';
import { DIGEST_DLQ_STREAM, DIGEST_GROUP, DIGEST_STREAM } from '../dist/core/contract.js';
import { serializeEvent, isoUtc } from '../dist/core/event.js';
import { dayBounds, userLockKey } from '../dist/core/keys.js';
import { idAtOrAfter, idAtOrBefore } from '../dist/core/stream-id.js';
import { connectPg } from '../dist/postgres/db.js';
import { connectRedis, closeRedis } from '../dist/redis/connect.js';
import { inspectUser } from '../dist/ops/inspect.js';
import { sql } from '../dist/postgres/sql.js';
import { median, phase, result, seededDatabase, time, xaddMany } from './lib.mjs';

const TENANT = '0b7a43c2-9d4e-4b8a-9f1e-2c3d4e5f6a7b';
const DAY = '2025-11-25';
const TZ = 'UTC';
const SPAN_DAYS = 100;
const ROUNDS = 7;

/** Postgres's md5(text)::uuid. */
const md5Uuid = (text) => createHash('md5').update(text).digest('hex').replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-');

/** Every node of an EXPLAIN (FORMAT JSON) plan. */
function* nodes(plan) {
  yield plan;
  for (const p of plan.Plans ?? []) yield* nodes(p);
}

/** `n` entries with explicit ids, evenly over SPAN_DAYS days ending with DAY; `user`'s own event on DAY among them. */
async function fillStream(client, n, user, historyId) {
  const end = dayBounds(DAY, TZ).end.getTime();
  const start = end - SPAN_DAYS * 86_400_000;
  const step = (end - start) / n;
  const own = Math.floor(n - n / SPAN_DAYS / 2); // in the middle of DAY
  const batch = 10_000;
  for (let done = 0; done < n; done += batch) {
    const batchEntries = [];
    for (let i = done; i < Math.min(n, done + batch); i++) {
      const ms = Math.floor(start + i * step);
      const mine = i === own;
      const u = mine ? user : randomUUID();
      const date = new Date(ms).toISOString().slice(0, 10);
      batchEntries.push(`${ms}-${i}`, serializeEvent({
        schema_version: 'v1', trace_id: randomUUID(), occurred_at: isoUtc(new Date(ms)), idempotency_key: `digest:${u}:${date}`,
        user_id: u, tenant_id: TENANT, digest_date: date, trigger: 'scheduler', history_id: mine ? historyId : randomUUID(),
        context: 'channels', delivery_channel: 'telegram', delivery_format: 'markdown',
      }));
    }
    await xaddMany(client, DIGEST_STREAM, batchEntries);
  }
  await client.xgroup('CREATE', DIGEST_STREAM, DIGEST_GROUP, '0');
}

export default async function run({ redisUrl, scale }) {
  const rows = Math.round(1_000_000 * scale);
  const entries = Math.round(1_000_000 * scale);
  const prefix = `ddbench:${randomBytes(4).toString('hex')}:`;
  const raw = new Redis(redisUrl, { keyPrefix: prefix });
  // user 1 has one sent row per day (plain rows of fillDigestHistory); its DAY row is the series' first
  // (g = 0, id md5('r0'), checked below). The stream is filled while the table is seeded.
  const user = md5Uuid('u1');
  const ownId = md5Uuid('r0');
  const [seeded, filled] = await Promise.allSettled([seededDatabase('user', ['svc'], { rows }), phase('stream fill (beside the seed)', () => fillStream(raw, entries, user, ownId))]);
  if (seeded.status === 'rejected' || filled.status === 'rejected') {
    await raw.del(DIGEST_STREAM, DIGEST_DLQ_STREAM);
    raw.disconnect();
    if (seeded.status === 'fulfilled') await seeded.value.drop();
    throw seeded.status === 'rejected' ? seeded.reason : filled.reason;
  }
  const bench = seeded.value;
  const admin = new pg.Client({ connectionString: bench.url });
  await admin.connect();
  let db;
  let tool;
  try {
    await phase('vacuum', () => admin.query('VACUUM ANALYZE svc.digest_history'));
    const own = (await admin.query(`SELECT id::text FROM svc.digest_history WHERE user_id = $1 AND digest_date = $2`, [user, DAY])).rows;
    if (own.length !== 1 || own[0].id !== ownId) throw new Error(`expected one row ${ownId} for the user on ${DAY}, found ${own.map((r) => r.id).join(', ') || 'none'}`);
    db = await connectPg({ url: bench.url, schema: 'svc', stateSchema: 'dd', statementTimeoutMs: 600_000 });
    tool = await connectRedis({ url: redisUrl, keyPrefix: prefix });
    const input = { userId: user, digestDate: DAY, timeZone: TZ, stuckAfterMs: 3_600_000 };
    const ids = { schema: 'svc', state: 'dd' };

    // The baseline: the same statements from bare clients, nothing of the tool around them (the
    // window as inspect computes it: the day's bounds and the row's times, 10 minutes either side).
    const baseline = async () => {
      await admin.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      await admin.query(sql('db_now', ids));
      const r = await admin.query(sql('inspect_user_rows', ids), [user, DAY]);
      await admin.query('COMMIT');
      await Promise.all([raw.get(userLockKey(user)), raw.pttl(userLockKey(user))]);
      const day = dayBounds(DAY, TZ);
      const times = r.rows.flatMap((x) => [x.created_at.getTime(), x.sent_at ? x.sent_at.getTime() : NaN]).filter(Number.isFinite);
      const from = new Date(Math.min(day.start.getTime(), ...times) - 600_000);
      const to = new Date(Math.max(day.end.getTime(), ...times) + 600_000);
      let read = 0;
      const found = [];
      for (const [key, end] of [[DIGEST_STREAM, idAtOrBefore(to)], [DIGEST_DLQ_STREAM, '+']]) {
        let start = idAtOrAfter(from);
        for (;;) {
          const page = await raw.xrange(key, start, end, 'COUNT', 1000);
          read += page.length;
          for (const [id, f] of page) if (f[1].includes(user)) found.push(id);
          if (page.length < 1000) break;
          start = `(${page[page.length - 1][0]}`;
        }
      }
      const p = raw.pipeline();
      for (const id of found) p.xpending(DIGEST_STREAM, DIGEST_GROUP, id, id, 1);
      await p.exec();
      return { read, found: found.length };
    };
    const pairs = [];
    for (let i = 0; i < ROUNDS; i++) await phase('rounds', async () => {
      const out = {};
      for (const which of i % 2 ? ['tool', 'base'] : ['base', 'tool']) {
        out[which] = which === 'tool' ? await time(() => inspectUser(db, { client: tool }, input)) : await time(baseline);
      }
      pairs.push(out);
    });
    const t = pairs[0].tool.value;
    if (t.rows.length !== 1 || t.redis.entries?.length !== 1) throw new Error(`inspect --user found ${t.rows.length} rows and ${t.redis.entries?.length} entries, expected 1 and 1`);
    const m = median(pairs, (x) => x.tool.ms / x.base.ms);
    const windowRead = pairs[0].base.value.read;

    // The plans of the statements inspect --user sends, on this table.
    const plans = [];
    for (const [name, params] of [['inspect_user_rows', [user, DAY]], ['db_now', []]]) {
      const plan = (await admin.query(`EXPLAIN (FORMAT JSON) ${sql(name, ids)}`, params)).rows[0]['QUERY PLAN'][0].Plan;
      const scans = [...nodes(plan)].filter((n) => n['Relation Name'] || n['Index Name']).map((n) => `${n['Node Type']}${n['Index Name'] ? ` ${n['Index Name']}` : ''}${n['Relation Name'] ? ` on ${n['Relation Name']}` : ''}`);
      plans.push({ name, scans, seq: [...nodes(plan)].some((n) => n['Node Type'] === 'Seq Scan' && n['Relation Name'] === 'digest_history') });
    }
    const seqScans = plans.filter((p) => p.seq).length;
    return {
      title: `inspect --user on ${rows.toLocaleString('en')} rows and a ${entries.toLocaleString('en')}-entry stream over ${SPAN_DAYS} days`,
      results: [
        result('inspect --user (library call) vs the same statements from bare pg and ioredis clients', m.tool.ms, 'ms', m.base.ms, 2),
        { name: 'its Postgres statements: plans with a sequential scan of digest_history (EXPLAIN on this table)', value: seqScans, unit: 'plans', baseline: null, ratio: null, target: '0', pass: seqScans === 0 },
        { name: 'stream entries the window read touched vs entries in the stream', value: windowRead, unit: 'entries', baseline: entries, ratio: Math.round((windowRead / entries) * 1000) / 1000, target: `<= 2 days of ${SPAN_DAYS}`, pass: windowRead <= (entries / SPAN_DAYS) * 2 + 2000 },
      ],
      notes:
        `${ROUNDS} rounds, tool and baseline alternating which goes first; the row is the round with the median ratio (all: ${pairs.map((x) => (x.tool.ms / x.base.ms).toFixed(2)).join(', ')}). ` +
        "The tool is inspectUser, the library op the CLI runs (a read-only snapshot with the database's clock and the day's rows, the keep rule, the user's lock key and TTL, the stream window read in XRANGE pages of 1000 with each entry's event parsed and checked, XPENDING for the user's entries). " +
        'The baseline sends the same SQL in the same kind of transaction from a bare pg client, then GET and PTTL of the lock and the same XRANGE pages from a bare ioredis client, picking the user\'s entries by a substring test, then XPENDING of those. ' +
        `Plans: ${plans.map((p) => `${p.name}: ${p.scans.join(', ') || 'no table'}`).join('; ')}. ` +
        `The stream holds ${entries.toLocaleString('en')} entries with ids spread evenly over ${SPAN_DAYS} days; the window is the service day (UTC here) and the user's row times, 10 minutes either side, so it reads about a hundredth of the stream and no more (entry ids are times: XRANGE starts at the window's first id).`,
    };
  } finally {
    if (tool) await closeRedis(tool);
    if (db) await db.close();
    await raw.del(DIGEST_STREAM, DIGEST_DLQ_STREAM);
    raw.disconnect();
    await admin.end();
    await bench.drop();
  }
}
