// Issue 10 §1: no server setting changes what is read. The same sequence of commands (the built CLI,
// --json) runs on a database with the server's defaults and on databases whose defaults are
// DateStyle German / 'SQL, DMY', IntervalStyle sql_standard / iso_8601, an odd TimeZone, an empty
// (or useless) search_path and a low extra_float_digits; the documents must be the same, once the
// values that legitimately differ between two runs (run ids, the instants of the run itself, the
// database name, durations) are normalised.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSqlFile, renderSql } from '../../src/postgres/sql.js';
import { runCli } from '../helpers/cli.js';
import { ADMIN_DATABASE_URL, withDatabase } from '../helpers/env.js';
import { INCIDENT } from '../helpers/pg.js';
import { createTestRedis, type TestRedis } from '../helpers/redis.js';
import { DIGEST_GROUP, DIGEST_STREAM } from '../../src/core/contract.js';

interface Setup {
  label: string;
  settings: Record<string, string>;
}

const SETUPS: Setup[] = [
  { label: 'defaults', settings: {} },
  {
    label: 'German, sql_standard, Pacific/Chatham, empty search_path',
    settings: { datestyle: 'German', intervalstyle: 'sql_standard', timezone: "'Pacific/Chatham'", search_path: "''", extra_float_digits: '-3' },
  },
  {
    label: "'SQL, DMY', iso_8601, America/Santiago, a search_path of nothing useful",
    settings: { datestyle: "'SQL, DMY'", intervalstyle: 'iso_8601', timezone: "'America/Santiago'", search_path: 'nowhere', extra_float_digits: '0' },
  },
];

const SCHEMA = 'incident';
const created: string[] = [];
const admin = new pg.Client({ connectionString: ADMIN_DATABASE_URL });

async function makeDatabase(s: Setup): Promise<string> {
  const name = `dd_settings_${randomBytes(5).toString('hex')}`;
  await admin.query(`CREATE DATABASE ${name}`);
  created.push(name);
  for (const [k, v] of Object.entries(s.settings)) await admin.query(`ALTER DATABASE ${name} SET ${k} TO ${v}`);
  const url = withDatabase(ADMIN_DATABASE_URL, name);
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    // The settings really are in force for a new session (what the tool will meet).
    const { rows } = await c.query<{ ds: string; tz: string }>(`SELECT current_setting('DateStyle') AS ds, current_setting('TimeZone') AS tz`);
    if (s.settings.datestyle) expect(rows[0]!.ds).not.toMatch(/^ISO/);
    if (s.settings.timezone) expect(`'${rows[0]!.tz}'`).toBe(s.settings.timezone);
    await c.query(`CREATE SCHEMA ${SCHEMA}`);
    // The fixture names its tables with {{schema}}; pg_catalog functions resolve without a search_path.
    await c.query(renderSql(loadSqlFile('fixtures/service_schema.sql'), { schema: SCHEMA, state: 'unused' }));
    await c.query(renderSql(loadSqlFile('fixtures/incident.sql'), { schema: SCHEMA, state: 'unused' }));
  } finally {
    await c.end();
  }
  return url;
}

/** One step: CLI args (after the global flags), given the run ids printed so far. */
type Step = { name: string; args: (runIds: string[]) => string[] };

const STEPS: Step[] = [
  { name: 'inspect', args: () => ['inspect'] },
  { name: 'inspect --since', args: () => ['inspect', '--since', '2025-11-01', '--stuck-after', '2h'] },
  { name: 'inspect --user', args: () => ['inspect', '--user', INCIDENT.user, '--date', INCIDENT.day] },
  { name: 'inspect --user (stuck user)', args: () => ['inspect', '--user', INCIDENT.stuckUser, '--date', '2025-11-20'] },
  { name: 'migrate status (before)', args: () => ['migrate', 'status'] },
  { name: 'fix-duplicates (plan)', args: () => ['fix-duplicates'] },
  { name: 'fix-duplicates --date', args: () => ['fix-duplicates', '--date', INCIDENT.day, '--keep', 'oldest'] },
  // mark-stale with the service's Redis (the digest stream and its group under the test's prefix): its live check runs
  { name: 'mark-stale (plan)', args: () => ['mark-stale', '--older-than', '6h', ...redis.cliArgs] },
  { name: 'fix-duplicates --apply', args: () => ['fix-duplicates', '--apply'] },
  { name: 'runs', args: () => ['runs'] },
  { name: 'mark-stale --apply', args: () => ['mark-stale', '--older-than', '6h', '--apply', ...redis.cliArgs] },
  { name: 'undo fix-duplicates (dry run)', args: (ids) => ['undo', ids[0]!] },
  { name: 'undo fix-duplicates --apply', args: (ids) => ['undo', ids[0]!, '--apply'] },
  { name: 'undo mark-stale (dry run)', args: (ids) => ['undo', ids[1]!] },
  { name: 'inspect after undo', args: () => ['inspect'] },
  { name: 'runs --command', args: () => ['runs', '--command', 'mark-stale'] },
  { name: 'migrate (dry run)', args: () => ['migrate'] },
  { name: 'migrate --apply', args: () => ['migrate', '--apply'] },
  { name: 'migrate status (after)', args: () => ['migrate', 'status'] },
  { name: 'runs (all)', args: () => ['runs'] },
];

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
/** Durations measured by the run itself (how long a batch took). */
const MEASURED = new Set(['longestBatchMs', 'elapsedMs', 'durationMs', 'tookMs']);

/**
 * Replaces what legitimately differs between two runs: run ids (by order of first appearance),
 * instants inside the test's own time window (`now`, a run's start, a ledger's time; the fixture's
 * instants are months older and stay), ages (rounded to whole days: the fixture's rows are days
 * old, so a day's text read as another day would show), measured durations, the database name and
 * the tool's own checksums of nothing. Anything else must be equal.
 */
function normalise(doc: unknown, runIds: string[], window: { from: number; to: number }, dbName: string): unknown {
  const walk = (v: unknown, key: string): unknown => {
    if (typeof v === 'string') {
      if (UUID.test(v) && runIds.includes(v)) return `<run ${runIds.indexOf(v)}>`;
      if (key === 'cutoff' && ISO_INSTANT.test(v)) {
        // mark-stale's cut-off: the database clock at the run minus --older-than (6h in every step here).
        const t = Date.parse(v) + 6 * 3_600_000;
        expect(t, 'cutoff = now() - 6h').toBeGreaterThanOrEqual(window.from);
        expect(t, 'cutoff = now() - 6h').toBeLessThanOrEqual(window.to);
        return '<during the test> - 6h';
      }
      if (ISO_INSTANT.test(v)) {
        const t = Date.parse(v);
        if (t >= window.from && t <= window.to) return '<during the test>';
      }
      return v.split(dbName).join('<db>').replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, (m) => (runIds.includes(m) ? `<run ${runIds.indexOf(m)}>` : m));
    }
    if (typeof v === 'number') {
      if (MEASURED.has(key)) return '<measured>';
      if (/age/i.test(key)) {
        expect(v, `${key} is an age, never negative`).toBeGreaterThanOrEqual(0);
        return `${Math.round(v / 86_400_000)}d`;
      }
      return v;
    }
    if (Array.isArray(v)) return v.map((x) => walk(x, key));
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, k)]));
    return v;
  };
  return walk(doc, '');
}

interface Outcome {
  step: string;
  code: number | null;
  doc: unknown;
}

async function runAll(url: string): Promise<Outcome[]> {
  const from = Date.now() - 1_000;
  const runIds: string[] = [];
  const raw: Array<{ step: string; code: number | null; stdout: string; stderr: string }> = [];
  for (const step of STEPS) {
    const res = await runCli(['--database-url', url, '--schema', SCHEMA, '--json', ...step.args(runIds)]);
    raw.push({ step: step.name, ...res });
    const doc = res.stdout ? (JSON.parse(res.stdout) as { applied?: { runId?: string | null } }) : null;
    const id = doc?.applied?.runId;
    if (id) runIds.push(id);
  }
  const window = { from, to: Date.now() + 1_000 };
  const dbName = new URL(url).pathname.slice(1);
  return raw.map((r) => {
    expect(r.stderr, `${r.step}: no error printed`).not.toMatch(/internal error/);
    expect(r.code, `${r.step}: ${r.stderr}`).not.toBe(70);
    return { step: r.step, code: r.code, doc: normalise(JSON.parse(r.stdout), runIds, window, dbName) };
  });
}

let redis: TestRedis;
beforeAll(async () => {
  await admin.connect();
  redis = await createTestRedis();
  await redis.client.xgroup('CREATE', redis.key(DIGEST_STREAM), DIGEST_GROUP, '$', 'MKSTREAM');
});

afterAll(async () => {
  for (const name of created) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
  await admin.end();
  await redis?.cleanup();
});

describe('the server settings of a database do not change what digest-doctor reads (issue 10 §1)', () => {
  let baseline: Outcome[];

  it('on the defaults, the sequence finds the incident, repairs it, undoes it and installs the guard', async () => {
    baseline = await runAll(await makeDatabase(SETUPS[0]!));
    const by = Object.fromEntries(baseline.map((o) => [o.step, o]));
    // Worked out from sql/fixtures/incident.sql: one duplicate pair on 2025-11-25 (a1.., a2..), three
    // pending rows (the pair and the stuck row of 2025-11-20), one failed, one sent.
    expect(by['inspect']!.code).toBe(1);
    expect(by['inspect']!.doc).toMatchObject({ duplicates: { totalGroups: 1, extraRows: 1, groups: [{ digestDate: '2025-11-25', ids: ['a2222222-2222-4222-8222-222222222222', 'a1111111-1111-4111-8111-111111111111'] }] }, statusCounts: { pending: 3, failed: 1, sent: 1 } });
    expect(by['inspect --user']!.doc).toMatchObject({ digestDate: '2025-11-25' });
    expect(by['fix-duplicates --apply']!).toMatchObject({ code: 0, doc: { applied: { status: 'done', rowsChanged: 1 } } });
    // mark-stale fails the kept row of the pair (a2) and the stuck row (b3); the undo of
    // fix-duplicates then may put a1 back (no other row of its day is in flight any more), and its
    // dry run promises exactly what its apply does.
    expect(by['mark-stale --apply']!.doc).toMatchObject({ applied: { rowsChanged: 2 } });
    expect(by['mark-stale (plan)']!.doc).toMatchObject({ redis: { checked: true, groupMissing: false, pendingSeen: 0 } });
    const promised = (by['undo fix-duplicates (dry run)']!.doc as { plan: { restore: Array<{ id: string }> } }).plan.restore;
    expect(promised.map((r) => r.id)).toEqual(['a1111111-1111-4111-8111-111111111111']);
    expect(by['undo fix-duplicates --apply']!.doc).toMatchObject({ plan: { restore: promised }, applied: { rowsChanged: 1 } });
    // Undoing mark-stale now: b3 goes back, a2 would make a second in-flight row of 2025-11-25.
    expect(by['undo mark-stale (dry run)']!.doc).toMatchObject({
      plan: { restore: [{ id: 'b3333333-3333-4333-8333-333333333333' }], skipped: [{ id: 'a2222222-2222-4222-8222-222222222222', reason: 'would-duplicate' }] },
    });
    // One in-flight row per (user, day) now: nothing blocks the guard.
    expect(by['migrate --apply']!.code).toBe(0);
    expect(by['migrate status (after)']!).toMatchObject({ code: 0, doc: { drift: false, migrations: [{ state: 'applied' }] } });
  });

  for (const setup of SETUPS.slice(1)) {
    it(`under ${setup.label}, every document equals the defaults' one`, async () => {
      expect(baseline, 'the defaults run first').toBeDefined();
      const got = await runAll(await makeDatabase(setup));
      for (let i = 0; i < STEPS.length; i++) {
        expect({ step: got[i]!.step, code: got[i]!.code }).toEqual({ step: baseline[i]!.step, code: baseline[i]!.code });
        expect(got[i]!.doc, STEPS[i]!.name).toEqual(baseline[i]!.doc);
      }
    });
  }
});
