// `check` on a healthy database (the demo's end state) and on the incident, in all four formats;
// the config file; no database at all. Expected verdicts come from the fixtures: incident.sql has one
// (user, day) with two pending rows, three pending rows older than a week and no unique index.
// `check` never runs on the embedded database (README, src/cli/commands/check.ts: exit 2, an explicit
// --data-dir included), so its verdicts are tested on the server; on the embedded engine the test is
// that refusal (the last describe).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckResultSchema } from '../../src/core/check.js';
import { ErrorDocumentSchema } from '../../src/cli/error-document.js';
import { BIN, runCli } from '../helpers/cli.js';
import { createTestSchema, databaseUrl, seedIncident, type TestSchema } from '../helpers/pg.js';
import { createTestRedis, type TestRedis } from '../helpers/redis.js';

const parsePrometheus = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => Array<{ name: string; help: string; type: string; metrics: Array<{ value: string; labels?: Record<string, string> }> }>;

/** The OpenMetrics text grammar rules we rely on, checked line by line. */
function assertOpenMetrics(text: string): void {
  expect(text.endsWith('# EOF\n')).toBe(true);
  const lines = text.slice(0, -1).split('\n');
  expect(lines.filter((l) => l === '# EOF')).toHaveLength(1);
  const declared = new Map<string, { help: boolean; type: string | null; samples: number }>();
  for (const line of lines.slice(0, -1)) {
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta) {
      const d = declared.get(meta[2]!) ?? { help: false, type: null, samples: 0 };
      expect(d.samples, `metadata of ${meta[2]} after its samples`).toBe(0);
      if (meta[1] === 'HELP') d.help = true;
      else d.type = meta[3]!;
      declared.set(meta[2]!, d);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")*)?\})? (-?[0-9.e+]+|NaN|[+-]Inf)$/.exec(line);
    expect(m, `not a valid sample line: ${line}`).not.toBeNull();
    const d = declared.get(m![1]!);
    expect(d?.type, `${m![1]} has no TYPE before its samples`).toBe('gauge');
    expect(d?.help).toBe(true);
    d!.samples++;
  }
}

let pgUrl: string;
let r: TestRedis;
let healthy: { schema: string; state: string };
let incident: TestSchema;

beforeAll(async () => {
  pgUrl = databaseUrl();
  r = await createTestRedis();
  // A healthy fixture: the demo's end state on the server.
  const name = `demo_${randomBytes(4).toString('hex')}`;
  healthy = { schema: name, state: `${name}_dd` };
  const demo = await runCli(['--database-url', pgUrl, '--schema', healthy.schema, '--state-schema', healthy.state, '--redis-url', r.url, '--key-prefix', r.prefix, 'demo'], { timeoutMs: 120_000 });
  expect(demo.code, demo.stderr).toBe(0);
  incident = await createTestSchema();
  await seedIncident(incident);
}, 180_000);

afterAll(async () => {
  await incident?.client.query(`DROP SCHEMA IF EXISTS ${healthy.schema} CASCADE`);
  await incident?.client.query(`DROP SCHEMA IF EXISTS ${healthy.state} CASCADE`);
  await incident?.cleanup();
  await r?.cleanup();
});

const healthyArgs = () => ['--database-url', pgUrl, '--schema', healthy.schema, '--state-schema', healthy.state, '--redis-url', r.url, '--key-prefix', r.prefix];
// The incident has no streams: Redis is left out of these runs so the verdicts are the database's.
const incidentArgs = () => [...incident.cliArgs, '--redis-url', r.url, '--key-prefix', `${r.prefix}incident:`];

describe('check', () => {
  it('passes on the healthy fixture (text)', async () => {
    const res = await runCli([...healthyArgs(), 'check']);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^ok +unique-index .*valid and chosen as the upsert's arbiter/m);
    expect(res.stdout).toMatch(/^passed: \d+ ok, 0 warn, 0 fail/m);
  });

  it('fails on the incident naming each problem, with pasteable fixes (text)', async () => {
    const res = await runCli([...incidentArgs(), 'check', '--skip', 'exists,group']);
    expect(res.code).toBe(1);
    const flags = `--database-url ${incident.url} --schema ${incident.schema} --state-schema ${incident.stateSchema} --redis-url ${r.url} --key-prefix ${r.prefix}incident:`;
    expect(res.stdout).toContain(`FAIL duplicates (${incident.schema}): 1 (user, day) group holds 2 in-flight rows (1 extra) -> fix: digest-doctor ${flags} fix-duplicates --apply`);
    expect(res.stdout).toContain(`FAIL stuck (${incident.schema}): 3 in-flight rows older than 1h`);
    // no digest stream under incident: to ask which rows a worker holds, so mark-stale --apply would
    // refuse: the printed step is its dry run
    expect(res.stdout).toMatch(/FAIL stuck .*3 in-flight rows older than 1h .*with no digest stream to ask, which of them a worker holds is unknown/);
    expect(res.stdout).toContain(`fix: digest-doctor ${flags} mark-stale --older-than 1h\n`);
    expect(res.stdout).toMatch(/FAIL unique-index .*ux_digest_history_user_date is missing/);
    expect(res.stdout).toContain(`fix: digest-doctor ${flags} fix-duplicates --apply && digest-doctor ${flags} migrate --apply`);
    expect(res.stdout).not.toMatch(/^\S+ +(exists|group) /m);
  });

  it('a digest stream with entries and no group: FAIL, and the fix as printed creates it as the worker does (the 3 entries delivered)', async () => {
    const prefix = `${r.prefix}nogroup:`;
    const key = `${prefix}stream:digests:generate`;
    for (let i = 0; i < 3; i++) await r.client.xadd(key, '*', 'data', `{"n":${i}}`);
    const res = await runCli([...incident.cliArgs, '--redis-url', r.url, '--key-prefix', prefix, 'check', '--skip', 'unique-index,duplicates,stuck']);
    expect(res.code, res.stdout + res.stderr).toBe(1);
    const fix = /^FAIL +group .*expected group digest-workers is missing -> fix: (.+)$/m.exec(res.stdout)?.[1];
    expect(fix, res.stdout).toBe(`redis-cli -u ${r.url} XGROUP CREATE ${key} digest-workers 0 MKSTREAM`);
    const ran = spawnSync('sh', ['-c', fix!], { encoding: 'utf8', timeout: 10_000 });
    expect(ran.status, ran.stderr).toBe(0);
    expect(ran.stdout.trim()).toBe('OK');
    // from 0: the worker's first read gets the three entries published while no group existed
    const read = (await r.client.xreadgroup('GROUP', 'digest-workers', 'digest-worker-1', 'COUNT', 10, 'STREAMS', key, '>')) as Array<[string, unknown[]]>;
    expect(read[0]![1]).toHaveLength(3);
  });

  it("stuck rows: the printed mark-stale step runs as printed; with the digest stream to ask, it is --apply", async () => {
    const blind = await runCli([...incidentArgs(), 'check', '--skip', 'exists,group,unique-index,duplicates']);
    const dry = /^FAIL +stuck .*-> fix: (.+)$/m.exec(blind.stdout)?.[1];
    expect(dry, blind.stdout).toMatch(/ mark-stale --older-than 1h$/);
    // the dry run: exit 1 (3 rows to mark), nothing written, and it says why --apply needs more
    // `digest-doctor` on PATH as an installed package has it
    const binDir = mkdtempSync(join(tmpdir(), 'dd-bin-'));
    symlinkSync(BIN, join(binDir, 'digest-doctor'));
    const ran = spawnSync('sh', ['-c', dry!], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, NO_COLOR: '1', PATH: `${binDir}:${process.env.PATH}` } });
    rmSync(binDir, { recursive: true, force: true });
    expect(ran.status, ran.stdout + ran.stderr).toBe(1);
    expect(ran.stdout + ran.stderr).toMatch(/the live check did not run/);
    const prefix = `${r.prefix}withstream:`;
    await r.client.xgroup('CREATE', `${prefix}stream:digests:generate`, 'digest-workers', '0', 'MKSTREAM');
    const live = await runCli([...incident.cliArgs, '--redis-url', r.url, '--key-prefix', prefix, 'check', '--skip', 'unique-index,duplicates']);
    expect(live.stdout).toMatch(/^FAIL +stuck .*3 in-flight rows older than 1h \(oldest created [^)]*\) -> fix: .* mark-stale --older-than 1h --apply$/m);
  });

  it('json: the document names each failing check', async () => {
    const res = await runCli([...incidentArgs(), 'check', '--format', 'json']);
    expect(res.code).toBe(1);
    const doc = CheckResultSchema.parse(JSON.parse(res.stdout));
    const failing = doc.checks.filter((c) => c.verdict === 'fail').map((c) => c.check);
    expect(failing).toEqual(expect.arrayContaining(['unique-index', 'duplicates', 'stuck']));
    expect(doc.metrics).toMatchObject({ duplicateGroups: 1, stuckRows: 3, inFlightByAge: { lt_1h: 0, '1h_1d': 0, '1d_7d': 0, gt_7d: 3 } });
    expect(doc.summary.passed).toBe(false);
  });

  it('github: ::error annotations escaped as the runner expects, and a Markdown summary', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dd-gh-'));
    const summary = join(dir, 'summary.md');
    try {
      const res = await runCli([...incidentArgs(), 'check', '--format', 'github'], { env: { GITHUB_STEP_SUMMARY: summary } });
      expect(res.code).toBe(1);
      const annotations = res.stdout.split('\n').filter((l) => l.startsWith('::'));
      for (const name of ['duplicates', 'stuck', 'unique-index']) expect(annotations.some((a) => a.startsWith(`::error title=digest-doctor check%3A ${name} (`))).toBe(true);
      // the message and its fix on two lines: %0A, never a raw newline or an unescaped %
      const dup = annotations.find((a) => a.includes('duplicates ('))!;
      expect(dup).toContain('%0Afix: digest-doctor');
      expect(dup.split('::').slice(2).join('::')).not.toMatch(/%(?!25|0A|0D)/);
      const md = readFileSync(summary, 'utf8');
      expect(md).toMatch(/^## digest-doctor check: failed$/m);
      expect(md).toMatch(/^\| duplicates \| .* \| ❌ fail \|/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('openmetrics: valid text format with the gauges, parsed by a Prometheus parser', async () => {
    const res = await runCli([...incidentArgs(), 'check', '--format', 'openmetrics']);
    expect(res.code).toBe(1);
    assertOpenMetrics(res.stdout);
    const families = new Map(parsePrometheus(res.stdout.replace(/# EOF\n$/, '')).map((f) => [f.name, f]));
    expect(families.get('digest_doctor_duplicate_groups')!.metrics[0]).toMatchObject({ value: '1', labels: { schema: incident.schema } });
    expect(families.get('digest_doctor_stuck_rows')!.metrics[0]!.value).toBe('3');
    const gt7 = families.get('digest_doctor_inflight_rows')!.metrics.find((m) => m.labels?.age === 'gt_7d');
    expect(gt7!.value).toBe('3');
    const status = families.get('digest_doctor_check_status')!.metrics;
    expect(status.find((m) => m.labels?.check === 'duplicates')!.value).toBe('2');
    expect(families.get('digest_doctor_check_passed')!.metrics[0]!.value).toBe('0');
  });

  it('openmetrics on the healthy fixture: pending, lag and DLQ length of the demo streams', async () => {
    const res = await runCli([...healthyArgs(), 'check', '--format', 'openmetrics']);
    expect(res.code).toBe(0);
    assertOpenMetrics(res.stdout);
    const families = new Map(parsePrometheus(res.stdout.replace(/# EOF\n$/, '')).map((f) => [f.name, f]));
    expect(families.get('digest_doctor_dlq_length')!.metrics).toEqual([{ value: '0', labels: { stream: 'stream:digests:generate:dlq' } }]);
    expect(families.get('digest_doctor_stream_pending')!.metrics.find((m) => m.labels?.group === 'digest-workers')!.value).toBe('0');
  });

  it('--strict: a warning fails; --skip leaves the check out', async () => {
    // An empty prefix: the streams are missing, which is a warning.
    const args = [...incident.cliArgs, '--redis-url', r.url, '--key-prefix', `${r.prefix}empty:`, 'check', '--skip', 'unique-index,duplicates,stuck'];
    expect((await runCli(args)).code).toBe(0);
    const strict = await runCli([...args, '--strict']);
    expect(strict.code).toBe(1);
    expect(strict.stdout).toMatch(/^warn exists \(stream:digests:generate\): stream does not exist/m);
    const bad = await runCli([...args, '--skip', 'nope']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--skip nope: no such check/);
  });

  it('no database configured: exit 2, loudly, even with an embedded database around', async () => {
    const res = await runCli(['check']);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/check needs a database: pass --database-url or set DATABASE_URL/);
  });

  it('an unreachable database is exit 3, after the other checks ran', async () => {
    const res = await runCli(['--database-url', 'postgresql://postgres@127.0.0.1:1/x', '--redis-url', r.url, '--key-prefix', r.prefix, 'check']);
    expect(res.code).toBe(3);
    expect(res.stdout).toMatch(/^FAIL database .*not reachable/m);
    expect(res.stdout).toMatch(/^ok +redis /m);
  });

  it("a database the role may not connect to (42501) is the fault's exit 4, not 1 for a finding", async () => {
    const tag = randomBytes(4).toString('hex');
    const [db, role] = [`dd_noconnect_${tag}`, `dd_noconnect_${tag}`];
    await incident.client.query(`CREATE DATABASE ${db}`);
    await incident.client.query(`REVOKE CONNECT ON DATABASE ${db} FROM PUBLIC`);
    await incident.client.query(`CREATE ROLE ${role} LOGIN`);
    try {
      const url = new URL(pgUrl);
      url.username = role;
      url.pathname = `/${db}`;
      const res = await runCli(['--database-url', url.toString(), '--redis-url', r.url, '--key-prefix', r.prefix, 'check']);
      expect(res.code, res.stdout + res.stderr).toBe(4);
      expect(res.stdout).toMatch(/^FAIL database .*not reachable: .*permission denied for database/m);
      expect(res.stdout).toMatch(/^ok +redis /m);
    } finally {
      await incident.client.query(`DROP DATABASE ${db}`);
      await incident.client.query(`DROP ROLE ${role}`);
    }
  });

  it("a configured Redis URL naming a database the server lacks is the fault's exit 2 (bad input)", async () => {
    const url = new URL(r.url);
    url.pathname = '/99'; // the server has 16 (redis.conf's default)
    const res = await runCli([...incident.cliArgs, '--redis-url', url.toString(), 'check', '--skip', 'unique-index,duplicates,stuck']);
    expect(res.code, res.stdout + res.stderr).toBe(2);
    expect(res.stdout).toMatch(/^FAIL redis .*no such database/m);
  });
});

describe('config file', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'dd-config-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a value of the wrong type is rejected with the key and the expected type', async () => {
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ check: { maxLag: true } }));
    const res = await runCli(['--config', file, 'check']);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(`config file ${file}: key "check.maxLag": expected a string or a number`);
  });

  it('an unknown key is rejected by name', async () => {
    const file = join(dir, 'unknown.json');
    writeFileSync(file, JSON.stringify({ schema: 'x', check: { maxLagg: 5 } }));
    const res = await runCli(['--config', file, 'check']);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('unknown key "check.maxLagg"');
    writeFileSync(file, JSON.stringify({ schemaa: 'x' }));
    expect((await runCli(['--config', file, 'check'])).stderr).toContain('unknown key "schemaa"');
  });

  it('flags > environment > file: the file sets the database and a skip, a flag overrides it', async () => {
    const file = join(dir, 'good.json');
    writeFileSync(file, JSON.stringify({ databaseUrl: pgUrl, schema: incident.schema, stateSchema: incident.stateSchema, redisUrl: r.url, keyPrefix: `${r.prefix}incident:`, check: { skip: ['exists', 'group', 'unique-index', 'duplicates'], stuckAfter: '3650d' } }));
    const res = await runCli(['--config', file, 'check']);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^ok +stuck .*older than 3650d/m);
    const env = await runCli(['--config', file, 'check'], { env: { DIGEST_DOCTOR_STUCK_AFTER: '1h' } });
    expect(env.code).toBe(1);
    const flag = await runCli(['--config', file, 'check', '--stuck-after', '3650d'], { env: { DIGEST_DOCTOR_STUCK_AFTER: '1h' } });
    expect(flag.code).toBe(0);
  });
});

describe('the embedded engine: check refuses it, an explicit --data-dir holding data included', () => {
  let e: TestSchema;
  let dir: string;
  beforeAll(async () => {
    e = await createTestSchema({ engine: 'embedded' });
    await seedIncident(e); // a database with the incident in it: the refusal is not about an empty one
    dir = mkdtempSync(join(tmpdir(), 'dd-config-'));
  });
  afterAll(async () => {
    await e?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('--data-dir: exit 2 naming what it needs, and the data directory is never opened', async () => {
    // The test holds the data directory open (its lock file): a command that opened it would be BUSY (4).
    await e.client.query('SELECT 1');
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
    delete env.DATABASE_URL;
    delete env.REDIS_URL;
    const res = spawnSync(process.execPath, [BIN, ...e.cliArgs, 'check'], { env, encoding: 'utf8', timeout: 60_000 });
    expect(res.status, res.stderr).toBe(2);
    expect(res.stderr).toMatch(/check needs a database: pass --database-url or set DATABASE_URL \(it never runs on the embedded database/);
    expect(res.stderr).not.toContain('using the embedded database');
    expect(res.stdout).not.toMatch(/^(ok|warn|FAIL) /m); // no check ran
  });

  it('--json: the refusal is an error document (BAD_INPUT, exit 2)', async () => {
    const res = await runCli([...e.cliArgs, '--json', 'check']);
    expect(res.code).toBe(2);
    expect(ErrorDocumentSchema.parse(JSON.parse(res.stdout)).error).toMatchObject({ code: 'BAD_INPUT', exitCode: 2 });
  });

  it('a config file naming the data directory: exit 2 as well', async () => {
    const file = join(dir, 'embedded.json');
    writeFileSync(file, JSON.stringify({ dataDir: e.dataDir, schema: e.schema, stateSchema: e.stateSchema }));
    const res = await runCli(['--config', file, 'check']);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/check needs a database/);
  });
});
