// Growth: inspect, fix-duplicates --apply, mark-stale --apply and the stream scan at 100,000 and at
// 1,000,000 rows / entries (times the scale). Each run is a child process of its own, so its peak
// RSS is its own; the ratio of costs between the sizes must stay within 10x (linear or better, plus
// noise), and the peak RSS should stay flat or grow sub-linearly.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { createBenchDatabase, createServiceSchema, fillDigestHistory, phase, scanStreamPrefix } from './lib.mjs';

const exec = promisify(execFile);
const SELF = fileURLToPath(import.meta.url);
const BATCH = { batchSize: 500, lockTimeoutMs: 2_000, lockWaitMs: 5_000 };

async function child(args) {
  const { stdout } = await exec(process.execPath, [SELF, '--child', ...args], { maxBuffer: 16 << 20 });
  return JSON.parse(stdout);
}

/**
 * The scan of an n-entry stream in a child of its own: the run's stream of the larger size (bench/lib.mjs
 * scanStreamPrefix, the one the scan benchmark reads) as it is, the smaller size its last n entries
 * (COPY, then XTRIM MAXLEN n: the same events, the same share of repeated history_ids).
 */
async function scanAt(redisUrl, sizes, n, prefix) {
  const shared = await scanStreamPrefix(redisUrl, sizes[sizes.length - 1]);
  if (n === sizes[sizes.length - 1]) return phase(`scan ${n}`, () => child(['scan', redisUrl, shared, String(n)]));
  const { Redis } = await import('ioredis');
  const { DIGEST_STREAM } = await import('../dist/core/contract.js');
  const r = new Redis(redisUrl);
  const own = `${prefix}${n}:`;
  try {
    await phase(`stream copy ${n}`, async () => {
      await r.copy(`${shared}${DIGEST_STREAM}`, `${own}${DIGEST_STREAM}`);
      await r.xtrim(`${own}${DIGEST_STREAM}`, 'MAXLEN', n);
    });
    return await phase(`scan ${n}`, () => child(['scan', redisUrl, own, String(n)]));
  } finally {
    await r.del(`${own}${DIGEST_STREAM}`);
    r.disconnect();
  }
}

export default async function run({ redisUrl, scale }) {
  const sizes = [100_000, 1_000_000].map((n) => Math.round(n * scale));
  const bench = await createBenchDatabase('growth');
  const admin = new pg.Client({ connectionString: bench.url });
  await admin.connect();
  const prefix = `ddbench:${randomBytes(4).toString('hex')}:`;
  const out = {};
  try {
    for (const n of sizes) {
      const s = `s${n}`;
      const seed = phase(`seed ${n}`, async () => {
        await createServiceSchema(admin, s);
        // A tenth of the rows in duplicate groups (two in-flight rows each), a tenth stale.
        await fillDigestHistory(admin, s, { rows: n, dupGroups: Math.round(n / 20), stale: Math.round(n / 10) });
        await admin.query(`VACUUM ANALYZE ${s}.digest_history`);
      });
      // The stream the scans read is filled while the larger table is seeded (neither is timed).
      await Promise.all([seed, n === sizes[sizes.length - 1] ? scanStreamPrefix(redisUrl, n, `stream fill (beside seed ${n})`) : null]);
      const url = bench.url;
      out[n] = {};
      for (const op of ['inspect', 'fix-duplicates', 'mark-stale']) out[n][op] = await phase(`${op} ${n}`, () => child([op, url, s, String(n)]));
      await admin.query(`DROP SCHEMA ${s} CASCADE`);
      await admin.query('DROP SCHEMA IF EXISTS dd CASCADE');
    }
    // The scans after the tables (Redis only): each size's in a child of its own.
    for (const n of sizes) out[n].scan = await scanAt(redisUrl, sizes, n, prefix);
    const [a, b] = sizes;
    const mb = (kb) => Math.round(kb / 10.24) / 100;
    const results = [];
    for (const op of ['inspect', 'fix-duplicates', 'mark-stale', 'scan']) {
      const ratio = out[b][op].ms / out[a][op].ms;
      results.push({ name: `${op}: time at ${b.toLocaleString('en')} vs at ${a.toLocaleString('en')}`, value: Math.round(out[b][op].ms), unit: 'ms', baseline: Math.round(out[a][op].ms), ratio: Math.round(ratio * 100) / 100, target: '<= 10 (+ noise)', pass: ratio <= 12 });
      const r = out[b][op].maxRssKb / out[a][op].maxRssKb;
      results.push({ name: `${op}: peak RSS at ${b.toLocaleString('en')} vs at ${a.toLocaleString('en')}`, value: mb(out[b][op].maxRssKb), unit: 'MB', baseline: mb(out[a][op].maxRssKb), ratio: Math.round(r * 100) / 100, target: '< 10 (sub-linear)', pass: r < 10 });
    }
    return {
      title: `growth: ${a.toLocaleString('en')} vs ${b.toLocaleString('en')} rows / entries`,
      results,
      notes:
        `Each table has a tenth of its rows in duplicate groups (${Math.round(b / 20).toLocaleString('en')} groups at ${b.toLocaleString('en')}) and a tenth stale; the stream at the larger size is the scan benchmark's own (filled once per run), the smaller its last entries (COPY, XTRIM MAXLEN). ` +
        'Each op is the library call the CLI makes (inspectSummary; fixDuplicates and markStale with --apply, batches of 500, markStale without Redis and so with --include-live, as the CLI requires; scanStream), run once in a child process of its own: the time is the op alone (connections opened before the clock starts), the peak RSS the child\'s process.resourceUsage().maxRSS (Node itself is about 45 MB). ' +
        'The ratio column is the larger size over the smaller: 10 is linear. The repairs\' results carry their whole plan (every row they change, for --json), so their RSS grows with the rows changed.',
    };
  } finally {
    await admin.end();
    await bench.drop();
  }
}

if (process.argv[2] === '--child') {
  const [, , , op, url, schemaOrPrefix, nStr] = process.argv;
  const n = Number(nStr);
  let started;
  let extra;
  if (op === 'scan') {
    const { connectRedis, closeRedis } = await import('../dist/redis/connect.js');
    const { scanStream, DEFAULT_SCAN_OPTIONS } = await import('../dist/ops/streams.js');
    const { DIGEST_STREAM } = await import('../dist/core/contract.js');
    const r = await connectRedis({ url, keyPrefix: schemaOrPrefix });
    started = performance.now();
    const res = await scanStream(r, undefined, DIGEST_STREAM, true, DEFAULT_SCAN_OPTIONS);
    extra = { entries: res.entries };
    await closeRedis(r);
    if (res.entries !== n) throw new Error(`scanned ${res.entries} entries, expected ${n}`);
  } else {
    const { connectPg } = await import('../dist/postgres/db.js');
    const db = await connectPg({ url, schema: schemaOrPrefix, stateSchema: 'dd', statementTimeoutMs: 600_000 });
    started = performance.now();
    if (op === 'inspect') {
      const { inspectSummary } = await import('../dist/ops/inspect.js');
      const r = await inspectSummary(db, { skipped: 'bench' }, { limit: 20, stuckAfterMs: 3_600_000 });
      extra = { groups: r.duplicates.totalGroups };
    } else if (op === 'fix-duplicates') {
      const { fixDuplicates } = await import('../dist/ops/fix-duplicates.js');
      const r = await fixDuplicates(db, { ...BATCH, keep: 'newest', apply: true });
      extra = { changed: r.applied.rowsChanged };
    } else {
      const { markStale } = await import('../dist/ops/mark-stale.js');
      const r = await markStale(db, { skipped: 'bench: no Redis' }, { ...BATCH, olderThanMs: 7 * 86_400_000, includeLive: true, liveIdleMs: 300_000, apply: true });
      extra = { changed: r.applied.rowsChanged };
    }
    const ms = performance.now() - started;
    await db.close();
    process.stdout.write(JSON.stringify({ ms, maxRssKb: process.resourceUsage().maxRSS, ...extra }));
    process.exit(0);
  }
  process.stdout.write(JSON.stringify({ ms: performance.now() - started, maxRssKb: process.resourceUsage().maxRSS, ...extra }));
  process.exit(0);
}
