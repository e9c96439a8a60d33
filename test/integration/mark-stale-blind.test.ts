// mark-stale --apply when its live check cannot run: Redis skipped (REDIS_URL at a closed port), or a
// Redis with no digest stream under the run's key prefix. A row a worker holds would be marked blind,
// so the run refuses (exit 4) and marks nothing, unless --include-live says to mark without the check.
// A Redis of this test's own: the digest stream lives under PREFIX and nowhere else, so what a SCAN
// for it finds is known.
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DIGEST_GROUP, DIGEST_STREAM } from '../../src/core/contract.js';
import { buildEvent, serializeEvent } from '../../src/core/event.js';
import { MarkStaleResultSchema } from '../../src/ops/mark-stale.js';
import { runCli } from '../helpers/cli.js';
import { printedCommands } from '../helpers/hints.js';
import { runOnPty } from '../helpers/pty.js';
import { createTestSchema, INCIDENT, seedIncident, TENANT, type TestSchema } from '../helpers/pg.js';
import { startRedisServer, type TestServer } from '../helpers/redis-server.js';
import { closedPort } from '../helpers/silent-server.js';

const PREFIX = 'svc:';
const STALE = ['mark-stale', '--older-than', '1h'];
const REFUSAL = /^digest-doctor: mark-stale --apply refused, nothing marked: the live check did not run, .*give the service's Redis \(--redis-url, and its --key-prefix\), or add --include-live to mark without the check on purpose: /;

let server: TestServer;
let deadUrl: string;
beforeAll(async () => {
  server = await startRedisServer();
  deadUrl = `redis://127.0.0.1:${await closedPort()}`;
}, 30_000);
afterAll(async () => {
  await server?.stop();
});

let t: TestSchema;
let s: Awaited<ReturnType<typeof seedIncident>>;
beforeEach(async () => {
  t = await createTestSchema();
  s = await seedIncident(t);
  // the service's Redis: the digest stream and its group, under PREFIX only
  await server.admin.flushall();
  await server.admin.xgroup('CREATE', PREFIX + DIGEST_STREAM, DIGEST_GROUP, '$', 'MKSTREAM');
});
afterEach(async () => {
  await t.cleanup();
});

/** The incident's rows and their status: three in flight (stuck since 2025-11-20, the pair of 2025-11-25), one failed, one sent. */
const statuses = async () =>
  Object.fromEntries((await t.client.query<{ id: string; status: string }>(`SELECT id::text, status FROM ${t.schema}.digest_history ORDER BY id`)).rows.map((r) => [r.id, r.status]));
const BEFORE = () => ({ [s.failed]: 'failed', [s.pendingOld]: 'pending', [s.pendingNew]: 'pending', [s.stuck]: 'pending', [s.sent]: 'sent' });
const AFTER_ALL_MARKED = () => ({ ...BEFORE(), [s.pendingOld]: 'failed', [s.pendingNew]: 'failed', [s.stuck]: 'failed' });
const noRunRecorded = async () => (await t.client.query(`SELECT to_regclass($1) AS r`, [`${t.stateSchema}.runs`])).rows[0].r === null;

describe('mark-stale --apply without the live check', () => {
  it('Redis skipped (REDIS_URL at a closed port): exit 4, one line, nothing marked', async () => {
    const res = await runCli([...t.cliArgs, ...STALE, '--apply'], { env: { REDIS_URL: deadUrl } });
    expect(res.code, res.stderr).toBe(4);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr).toMatch(REFUSAL);
    expect(res.stderr).toContain(`Redis at ${deadUrl.slice('redis://'.length)} (REDIS_URL) unreachable, skipped`);
    expect(await statuses()).toEqual(BEFORE());
    expect(await noRunRecorded()).toBe(true);
  });

  it('on a terminal it refuses before asking: no question about a write that would not happen', async () => {
    const pty = await runOnPty([...t.cliArgs, ...STALE, '--apply'], { answer: 'y', env: { REDIS_URL: deadUrl } });
    expect(pty.asked).toBe(false);
    expect(pty.code, pty.output).toBe(4);
    expect(pty.output.replace(/\r?\n\s*/g, ' ')).toContain('mark-stale --apply refused, nothing marked');
    expect(await statuses()).toEqual(BEFORE());
  });

  it('the same Redis given as --redis-url is unreachable: exit 3 (not blind: nothing runs), nothing marked', async () => {
    const res = await runCli([...t.cliArgs, '--redis-url', deadUrl, ...STALE, '--apply']);
    expect(res.code, res.stderr).toBe(3);
    expect(await statuses()).toEqual(BEFORE());
  });

  it('a key prefix with no stream under it: exit 4 naming the prefix that holds it; the command as printed applies', async () => {
    const args = [...t.cliArgs, '--redis-url', server.url()];
    const res = await runCli([...args, '--key-prefix', 'wrong:', ...STALE, '--apply']);
    expect(res.code, res.stderr).toBe(4);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr).toMatch(REFUSAL);
    expect(res.stderr).toContain(`no stream ${DIGEST_STREAM} under key prefix 'wrong:'; it exists under key prefix '${PREFIX}': rerun with the prefix: `);
    expect(await statuses()).toEqual(BEFORE());
    expect(await noRunRecorded()).toBe(true);
    const [rerun, ...more] = printedCommands(res.stderr);
    expect(more).toEqual([]);
    expect(rerun).toEqual([...args, '--key-prefix', PREFIX, ...STALE, '--apply']);
    const again = await runCli([...rerun!, '--json']);
    expect(again.code, again.stderr).toBe(0);
    const doc = MarkStaleResultSchema.parse(JSON.parse(again.stdout));
    expect(doc.redis).toEqual({ checked: true, groupMissing: false, pendingSeen: 0 });
    expect(doc.applied).toMatchObject({ status: 'done', rowsChanged: 3 });
    expect(await statuses()).toEqual(AFTER_ALL_MARKED());
  });

  it('no digest stream under any prefix: exit 4, nothing marked', async () => {
    await server.admin.flushall();
    const res = await runCli([...t.cliArgs, '--redis-url', server.url(), '--key-prefix', PREFIX, ...STALE, '--apply']);
    expect(res.code, res.stderr).toBe(4);
    expect(res.stderr).toMatch(REFUSAL);
    expect(res.stderr).toContain(`no stream ${DIGEST_STREAM} under key prefix '${PREFIX}', nor under any other key prefix`);
    expect(await statuses()).toEqual(BEFORE());
  });

  it('--include-live marks without the check on purpose, and the document says it did not run', async () => {
    const res = await runCli([...t.cliArgs, '--json', ...STALE, '--apply', '--include-live'], { env: { REDIS_URL: deadUrl } });
    expect(res.code, res.stderr).toBe(0);
    const doc = MarkStaleResultSchema.parse(JSON.parse(res.stdout));
    expect(doc.redis).toMatchObject({ checked: false, reason: expect.stringMatching(/^Redis at 127\.0\.0\.1:\d+ \(REDIS_URL\) unreachable, skipped/) });
    expect(doc.filters.includeLive).toBe(true);
    expect(doc.applied).toMatchObject({ status: 'done', rowsChanged: 3 });
    expect(await statuses()).toEqual(AFTER_ALL_MARKED());
  });

  it('with the stream under the prefix the check runs and --apply marks as before, leaving the row a worker holds', async () => {
    // a worker took the event of the newer pending row of 2025-11-25 just now
    const key = PREFIX + DIGEST_STREAM;
    const event = buildEvent({ userId: INCIDENT.user, tenantId: TENANT, digestDate: INCIDENT.day, trigger: 'manual', historyId: s.pendingNew }, new Date(), randomUUID());
    const entry = await server.admin.xadd(key, '*', 'data', serializeEvent(event));
    await server.admin.xreadgroup('GROUP', DIGEST_GROUP, 'digest-worker-1', 'COUNT', 10, 'STREAMS', key, '>');
    const res = await runCli([...t.cliArgs, '--redis-url', server.url(), '--key-prefix', PREFIX, '--json', ...STALE, '--apply']);
    expect(res.code, res.stderr).toBe(0);
    const doc = MarkStaleResultSchema.parse(JSON.parse(res.stdout));
    expect(doc.redis).toEqual({ checked: true, groupMissing: false, pendingSeen: 1 });
    expect(doc.live).toEqual([expect.objectContaining({ id: s.pendingNew, entryId: entry, consumer: 'digest-worker-1', deliveries: 1 })]);
    expect(doc.applied).toMatchObject({ status: 'done', rowsChanged: 2 });
    expect(await statuses()).toEqual({ ...AFTER_ALL_MARKED(), [s.pendingNew]: 'pending' });
  });
});

describe('mark-stale dry run without the live check', () => {
  it('lists the plan, exits 1 (rows to mark), says the check did not run (text and JSON), writes nothing', async () => {
    const env = { REDIS_URL: deadUrl };
    const json = await runCli([...t.cliArgs, '--json', ...STALE], { env });
    expect(json.code, json.stderr).toBe(1);
    const doc = MarkStaleResultSchema.parse(JSON.parse(json.stdout));
    expect(doc.mode).toBe('dry-run');
    expect(doc.redis).toMatchObject({ checked: false, reason: expect.stringMatching(/^Redis at 127\.0\.0\.1:\d+ \(REDIS_URL\) unreachable, skipped/) });
    expect(doc.plan.items.map((x) => x.id)).toEqual([s.stuck, s.pendingOld, s.pendingNew]);
    expect(doc.applied).toBeNull();

    const text = await runCli([...t.cliArgs, ...STALE], { env });
    expect(text.code, text.stderr).toBe(1);
    expect(text.stdout).toMatch(/^\[warn\] the live check did not run, --apply refuses without it \(--include-live marks without it on purpose\): Redis at 127\.0\.0\.1:\d+ \(REDIS_URL\) unreachable, skipped/m);
    expect(text.stdout).toContain('3 rows to mark');
    expect(text.stdout).toContain('[info] dry run: nothing written; once the live check can run (above), --apply writes; or add --include-live');
    expect(await statuses()).toEqual(BEFORE());
    expect(await noRunRecorded()).toBe(true);
  });

  it('a wrong key prefix: the warning names the prefix and the command to rerun with it', async () => {
    const args = [...t.cliArgs, '--redis-url', server.url()];
    const res = await runCli([...args, '--key-prefix', 'wrong:', '--json', ...STALE]);
    expect(res.code, res.stderr).toBe(1);
    const doc = MarkStaleResultSchema.parse(JSON.parse(res.stdout));
    expect(doc.redis).toEqual({ checked: false, reason: `no stream ${DIGEST_STREAM} under key prefix 'wrong:'; it exists under key prefix '${PREFIX}': rerun with the prefix: digest-doctor ${[...args, '--key-prefix', PREFIX, ...STALE].join(' ')}` });
  });
});
