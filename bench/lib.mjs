// Shared by the benchmarks: a throwaway database with the service's schema, bulk data made by
// generate_series on the server (fast, no client round trips), and side-by-side timing.
import { randomBytes, randomUUID } from 'node:crypto';
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

/** Creates a database for one benchmark (a clone of `template` if given); returns its URL and a drop(). */
export async function createBenchDatabase(label, template) {
  const name = `dd_bench_${label}_${randomBytes(3).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
  await phase(template ? 'clone database' : 'create database', async () => {
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}${template ? ` TEMPLATE ${template}` : ''}`);
    await admin.end();
  });
  const url = withDatabase(ADMIN_DATABASE_URL, name);
  return {
    url,
    async drop() {
      if (deferred) deferred.push(name);
      else await phase('drop database', () => dropDatabase(name));
    },
  };
}

async function dropDatabase(name) {
  const c = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
  await c.connect();
  try {
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } finally {
    await c.end();
  }
}

let deferred = null;

/**
 * From now on a benchmark database's drop() only notes it, and dropDeferred() drops every noted one,
 * side by side, at the end of the run (run.mjs). A DROP DATABASE waits until every backend of the
 * server, busy ones of other work included, has let go of the database's files: a second or more
 * each on a loaded machine, paid once instead of once per benchmark.
 */
export function deferDrops() {
  deferred ??= [];
}

/** Drops the databases noted since deferDrops(), side by side; a drop that fails is reported on stderr. */
export async function dropDeferred() {
  const names = deferred ?? [];
  deferred = null;
  const settled = await Promise.allSettled(names.map(dropDatabase));
  settled.forEach((r, i) => {
    if (r.status === 'rejected') process.stderr.write(`bench: could not drop database ${names[i]}: ${r.reason}\n`);
  });
}

/**
 * A database for one benchmark with the service's tables in each schema of `copies`, each filled alike
 * by fillDigestHistory(`fill`), the copies seeded in parallel (a connection each); returns its URL and
 * a drop(). With `share`, the tables are seeded once per run into a template database and each caller
 * gets a clone of it (CREATE DATABASE ... TEMPLATE: a copy of the files, byte for byte what seeding
 * would have made), so benchmarks wanting the same tables (inspect and repairs) seed them once;
 * dropTemplates() drops the templates at the end of the run.
 */
export async function seededDatabase(label, copies, fill, { share = false } = {}) {
  if (!share) {
    const bench = await createBenchDatabase(label);
    await seed(bench.url, copies, fill);
    return bench;
  }
  const key = JSON.stringify([copies, fill]);
  if (!templates.has(key)) {
    templates.set(key, (async () => {
      const tmpl = await createBenchDatabase(`tmpl_${label}`);
      try {
        await seed(tmpl.url, copies, fill);
      } catch (err) {
        await tmpl.drop();
        throw err;
      }
      return tmpl;
    })());
  }
  const tmpl = await templates.get(key);
  return createBenchDatabase(label, new URL(tmpl.url).pathname.slice(1));
}

const templates = new Map();

/** Drops the template databases seededDatabase made (run.mjs, at the end of the run). */
export async function dropTemplates() {
  for (const t of templates.values()) {
    // a template whose seeding failed dropped itself (and failed the benchmarks that wanted it)
    const tmpl = await t.catch(() => null);
    if (tmpl) await tmpl.drop();
  }
  templates.clear();
}

async function seed(url, copies, fill) {
  await phase('seed', () =>
    Promise.all(
      copies.map(async (schema) => {
        const c = new pg.Client({ connectionString: url });
        await c.connect();
        try {
          await createServiceSchema(c, schema);
          await fillDigestHistory(c, schema, fill);
        } finally {
          await c.end();
        }
      }),
    ),
  );
}

const scanStreams = new Map();

/**
 * The key prefix under which the digest stream (DIGEST_STREAM) holds `n` realistic events, as the
 * service writes them (every 1000th republishes the previous history_id), added by xaddMany
 * (batches of 10,000) once per run: the scan benchmark and growth's scan read the same stream rather
 * than filling one each. Callers only read it; dropScanStreams() deletes it at the end of the run. The
 * fill is timed as the phase `phaseName` of the benchmark that asks first.
 */
export async function scanStreamPrefix(redisUrl, n, phaseName = 'stream fill') {
  if (!scanStreams.has(n)) {
    scanStreams.set(n, phase(phaseName, async () => {
      const { Redis } = await import('ioredis');
      const { DIGEST_STREAM } = await import('../dist/core/contract.js');
      const prefix = `ddbench:${randomBytes(4).toString('hex')}:scan${n}:`;
      const client = new Redis(redisUrl, { keyPrefix: prefix });
      try {
        await fillScanStream(client, DIGEST_STREAM, n);
      } catch (err) {
        await client.del(DIGEST_STREAM);
        throw err;
      } finally {
        client.disconnect();
      }
      return prefix;
    }));
  }
  return scanStreams.get(n);
}

/** Deletes the streams scanStreamPrefix filled (run.mjs, at the end of the run). */
export async function dropScanStreams(redisUrl) {
  if (!scanStreams.size) return;
  const { Redis } = await import('ioredis');
  const { DIGEST_STREAM } = await import('../dist/core/contract.js');
  const client = new Redis(redisUrl);
  try {
    // a fill that failed deleted its stream itself
    for (const p of scanStreams.values()) {
      const prefix = await p.catch(() => null);
      if (prefix) await client.del(`${prefix}${DIGEST_STREAM}`);
    }
  } finally {
    client.disconnect();
  }
  scanStreams.clear();
}

/** `n` realistic events added to `key` (xaddMany, batches of 10,000); every 1000th republishes the previous history_id. */
export async function fillScanStream(client, key, n) {
  const { serializeEvent, isoUtc } = await import('../dist/core/event.js');
  const event = (historyId, userId, at) =>
    serializeEvent({
      schema_version: 'v1',
      trace_id: randomUUID(),
      occurred_at: isoUtc(at),
      idempotency_key: `digest:${userId}:2025-11-25`,
      user_id: userId,
      tenant_id: '0b7a43c2-9d4e-4b8a-9f1e-2c3d4e5f6a7b',
      digest_date: '2025-11-25',
      trigger: 'scheduler',
      history_id: historyId,
      context: 'channels',
      delivery_channel: 'telegram',
      delivery_format: 'markdown',
    });
  const batch = 10_000;
  let last = randomUUID();
  let user = randomUUID();
  for (let done = 0; done < n; done += batch) {
    const entries = [];
    const now = new Date();
    for (let i = done; i < Math.min(n, done + batch); i++) {
      if (i % 1000 !== 999) {
        last = randomUUID();
        user = randomUUID();
      }
      entries.push('*', event(last, user, now));
    }
    await xaddMany(client, key, entries);
  }
}

// XADD of each (id, data) pair of ARGV to KEYS[1], in order; answers how many were added.
const XADD_MANY = "for i = 1, #ARGV, 2 do redis.call('XADD', KEYS[1], ARGV[i], 'data', ARGV[i + 1]) end return #ARGV / 2";

/**
 * Adds entries to the stream `key` through `client` (ioredis, its key prefix applies): `entries` is a
 * flat list id, data, id, data, ... (id '*' for one Redis picks), each entry one field `data` as the
 * service writes. Sent as pipelined script calls of 1,000 entries each, which costs the client a
 * seventh of the CPU of one pipelined XADD per entry (measured: 0.3 s against 2.2 s for 100,000).
 */
export async function xaddMany(client, key, entries) {
  if (typeof client.benchXaddMany !== 'function') client.defineCommand('benchXaddMany', { numberOfKeys: 1, lua: XADD_MANY });
  const p = client.pipeline();
  for (let i = 0; i < entries.length; i += 2000) p.benchXaddMany(key, ...entries.slice(i, i + 2000));
  for (const [err] of await p.exec()) if (err) throw err;
}

/** The service's tables in `schema` (created). */
export async function createServiceSchema(client, schema) {
  await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
  await client.query(SERVICE_SCHEMA.replaceAll('{{schema}}', schema));
}

/**
 * Fills <schema>.digest_history with `rows` rows over `users` users: mostly sent, `dupGroups`
 * (user, day) groups with two in-flight rows, and `stale` lone pending rows older than 8 days.
 * Deterministic (md5-derived uuids), so two schemas filled alike are identical. The inserts run with
 * session_replication_role = replica (for this session only), which skips the foreign-key triggers:
 * the rows reference users and the tenant made just before, so the checks (two per row, most of a
 * seed's time after the indexes) could not fail, and the table comes out the same without them.
 */
export async function fillDigestHistory(client, schema, { rows, users = Math.max(1000, Math.floor(rows / 30)), dupGroups = 0, stale = 0 }) {
  await client.query('SET session_replication_role = replica');
  try {
    await fillRows(client, schema, { rows, users, dupGroups, stale });
  } finally {
    await client.query('RESET session_replication_role');
  }
  await client.query(`ANALYZE ${schema}.digest_history`);
}

async function fillRows(client, schema, { rows, users, dupGroups, stale }) {
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
}

/** The current benchmark's phases ({ name, ms }), in order; run.mjs empties it before each benchmark. */
export const phases = [];

/**
 * Runs fn as a named phase of the current benchmark (seeding, rounds, ...): its wall time in ms is
 * added to `phases` (several calls with one name add up) and printed to stderr. Returns fn's value.
 */
export async function phase(name, fn) {
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    const ms = performance.now() - t0;
    const p = phases.find((x) => x.name === name);
    if (p) p.ms += ms;
    else phases.push({ name, ms });
    process.stderr.write(`  ${name}: ${(ms / 1000).toFixed(1)} s\n`);
  }
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
