import { describe, expect, it } from 'vitest';
import { UNIQUE_INDEX_NAME, UNIQUE_INDEX_STATUSES } from '../../src/core/contract.js';
import {
  backoffMs,
  buildMigration,
  canonicalPredicate,
  compareIndexShapes,
  connectionChecks,
  decideRetry,
  halt,
  stopOutcome,
  expectedUniqueIndex,
  lockPollDelays,
  migrationChecksum,
  migrationStatus,
  parseIndexDef,
  parseMigrationFileName,
  planUp,
  RETRYABLE_SQLSTATES,
  runnableStatement,
  singleStatement,
  stripComments,
  withConcurrently,
  type CatalogIndex,
  type IndexFacts,
  indexFactDifferences,
  predicateStatuses,
  type LedgerEntry,
  type SessionFacts,
} from '../../src/core/migration.js';
import { loadMigrations } from '../../src/postgres/migrator.js';
import { FindingSchema } from '../../src/core/finding-schema.js';
import { findingsInline } from '../../src/core/finding.js';
import { DoctorError } from '../../src/errors.js';

// What pg_get_indexdef prints for the index (Postgres 15), schema-qualified.
const CATALOG_DEF =
  "CREATE UNIQUE INDEX ux_digest_history_user_date ON t_abc.digest_history USING btree (user_id, digest_date) WHERE ((status)::text = ANY ((ARRAY['pending'::character varying, 'processing'::character varying])::text[]))";

const absent: CatalogIndex = { exists: false, valid: false, ready: false, definition: null, building: null, differences: [] };
const healthy: CatalogIndex = { exists: true, valid: true, ready: true, definition: CATALOG_DEF, building: null, differences: [] };
const invalid: CatalogIndex = { ...healthy, valid: false };

describe('structural comparison of index definitions', () => {
  it('treats IN (...), = ANY (ARRAY[...]) with casts, and OR chains as the same predicate', () => {
    const a = canonicalPredicate("status IN ('pending', 'processing')");
    expect(a).toBe("status IN ('pending','processing')");
    expect(canonicalPredicate("((status)::text = ANY ((ARRAY['pending'::character varying, 'processing'::character varying])::text[]))")).toBe(a);
    expect(canonicalPredicate("status = 'processing' OR status = 'pending'")).toBe(a);
    expect(canonicalPredicate('"status" in (\'processing\',\'pending\')')).toBe(a);
    expect(canonicalPredicate("status IN ('pending')")).not.toBe(a);
  });

  it("parses pg_get_indexdef output and the migration's statement into the same shape", () => {
    const fromCatalog = parseIndexDef(CATALOG_DEF)!;
    expect(fromCatalog).toEqual(expectedUniqueIndex());
    const fromFile = parseIndexDef("CREATE UNIQUE INDEX ux_digest_history_user_date ON \"public\".digest_history (user_id, digest_date) WHERE status IN ('pending', 'processing')")!;
    expect(compareIndexShapes(fromFile, fromCatalog)).toEqual([]);
  });

  it('names every difference that matters', () => {
    const expected = expectedUniqueIndex();
    const other = parseIndexDef("CREATE INDEX ux_digest_history_user_date ON s.digest_history USING hash (digest_date, user_id) WHERE ((status)::text = 'pending'::text)")!;
    const diffs = compareIndexShapes(expected, other);
    expect(diffs).toHaveLength(4);
    expect(diffs.join(' ')).toMatch(/not UNIQUE/);
    expect(diffs.join(' ')).toMatch(/USING hash/);
    expect(diffs.join(' ')).toMatch(/columns \(digest_date, user_id\)/);
    expect(diffs.join(' ')).toMatch(/predicate status IN \('pending'\)/);
    const full = parseIndexDef('CREATE UNIQUE INDEX ux_digest_history_user_date ON s.digest_history USING btree (user_id, digest_date)')!;
    expect(compareIndexShapes(expected, full)).toEqual(["predicate none, expected status IN ('pending','processing')"]);
  });

  it('builds the expected predicate from UNIQUE_INDEX_STATUSES', () => {
    for (const s of UNIQUE_INDEX_STATUSES) expect(expectedUniqueIndex().predicate).toContain(`'${s}'`);
    expect(expectedUniqueIndex().name).toBe(UNIQUE_INDEX_NAME);
  });

  it('returns null for what is not a CREATE INDEX', () => {
    expect(parseIndexDef('DROP INDEX x')).toBeNull();
  });
});

describe('migration files', () => {
  it('parses numbered file names', () => {
    expect(parseMigrationFileName('0001_ux_digest_history_user_date.up.sql')).toEqual({ version: 1, name: 'ux_digest_history_user_date', direction: 'up' });
    expect(parseMigrationFileName('1_x.sql')).toBeNull();
  });

  it('keeps one statement, ignoring comments with quotes in them, and rejects two or IF NOT EXISTS', () => {
    expect(singleStatement("-- the service's own\nCREATE INDEX i ON t (a); -- done\n", 'f')).toBe('CREATE INDEX i ON t (a)');
    expect(stripComments("SELECT '--not a comment' /* gone */ -- gone\n")).toBe("SELECT '--not a comment'   \n");
    expect(() => singleStatement('CREATE INDEX a ON t (x); CREATE INDEX b ON t (y);', 'f')).toThrow(/more than one statement/);
    expect(() => singleStatement('CREATE INDEX IF NOT EXISTS a ON t (x)', 'f')).toThrow(/IF NOT EXISTS/);
  });

  it('adds CONCURRENTLY for Postgres and keeps the file as written for an embedded engine', () => {
    expect(withConcurrently('CREATE UNIQUE INDEX a ON t (x)')).toBe('CREATE UNIQUE INDEX CONCURRENTLY a ON t (x)');
    expect(withConcurrently('DROP INDEX s.a')).toBe('DROP INDEX CONCURRENTLY s.a');
    expect(withConcurrently('CREATE INDEX CONCURRENTLY a ON t (x)')).toBe('CREATE INDEX CONCURRENTLY a ON t (x)');
    const [m] = loadMigrations();
    expect(runnableStatement(m!, 'up', 'postgres')).toMatch(/^CREATE UNIQUE INDEX CONCURRENTLY ux_digest_history_user_date ON \{\{schema\}\}\.digest_history/);
    expect(runnableStatement(m!, 'up', 'embedded')).not.toMatch(/CONCURRENTLY/);
    expect(runnableStatement(m!, 'down', 'postgres')).toBe('DROP INDEX CONCURRENTLY {{schema}}.ux_digest_history_user_date');
    expect(runnableStatement(m!, 'down', 'embedded')).toBe('DROP INDEX {{schema}}.ux_digest_history_user_date');
  });

  it('ships migration 0001 matching the contract, with a checksum over both files', () => {
    const ms = loadMigrations();
    expect(ms.map((m) => m.version)).toEqual([1]);
    const m = ms[0]!;
    expect(m.concurrently).toBe(true);
    expect(compareIndexShapes(expectedUniqueIndex(), m.index)).toEqual([]);
    expect(m.checksum).toBe(migrationChecksum(m.up, m.down));
    expect(migrationChecksum(m.up + ' ', m.down)).not.toBe(m.checksum);
    expect(migrationChecksum(m.up.replace(/\n/g, '\r\n'), m.down)).toBe(m.checksum);
  });

  it('refuses a migration whose up file is not an index', () => {
    expect(() => buildMigration({ version: 2, name: 'x', up: 'SELECT 1', down: 'SELECT 1' })).toThrow(/not a CREATE INDEX/);
  });
});

describe('plan', () => {
  const e = expectedUniqueIndex();
  it('builds when absent, no-ops when valid and matching', () => {
    expect(planUp(e, absent)).toMatchObject({ kind: 'build', dropInvalidFirst: false });
    expect(planUp(e, healthy)).toMatchObject({ kind: 'noop' });
  });
  it('drops and rebuilds a dead INVALID index, but leaves one that is still being built', () => {
    expect(planUp(e, invalid)).toMatchObject({ kind: 'build', dropInvalidFirst: true });
    // the reason says how each engine drops it: the embedded engine runs the file as written
    expect(planUp(e, invalid).reason).toBe('index ux_digest_history_user_date exists but is INVALID (a failed earlier build): drop it concurrently and rebuild');
    expect(planUp(e, invalid, 'embedded').reason).toBe(
      'index ux_digest_history_user_date exists but is INVALID (a failed earlier build): drop it without CONCURRENTLY (embedded engine: one connection, nothing else writes) and rebuild',
    );
    expect(planUp(e, { ...invalid, building: { pid: 42, phase: 'building index', user: 'x', application: null } })).toMatchObject({ kind: 'building-elsewhere', pid: 42 });
  });
  it('refuses to touch a valid index of the same name with another definition', () => {
    const other = { ...healthy, differences: ["no WHERE predicate, expected status IN ('pending','processing')"] };
    expect(planUp(e, other)).toMatchObject({ kind: 'conflict' });
  });
});

describe('status: the catalog is the truth', () => {
  const [m] = loadMigrations();
  const ledger = (over: Partial<LedgerEntry> = {}): LedgerEntry => ({
    version: 1,
    name: m!.name,
    checksum: m!.checksum,
    status: 'applied',
    attempts: 1,
    lastError: null,
    lastSqlstate: null,
    toolVersion: '0.1.0',
    appliedBy: 'postgres',
    startedAt: '2025-11-25T00:00:00.000Z',
    finishedAt: '2025-11-25T00:00:01.000Z',
    ...over,
  });
  it('applied when ledger, file and catalog agree; pending when nothing is there', () => {
    expect(migrationStatus(m!, ledger(), healthy)).toEqual({ state: 'applied', problems: [] });
    expect(migrationStatus(m!, null, absent)).toEqual({ state: 'pending', problems: [] });
    expect(migrationStatus(m!, ledger({ status: 'reverted' }), absent).state).toBe('pending');
  });
  it('drift: ledger says applied but the index is missing, invalid or different', () => {
    expect(migrationStatus(m!, ledger(), absent)).toMatchObject({ state: 'drift', problems: [expect.stringMatching(/missing/)] });
    expect(migrationStatus(m!, ledger(), invalid)).toMatchObject({ state: 'drift', problems: [expect.stringMatching(/INVALID/)] });
    const different = { ...healthy, differences: ["its predicate covers 'pending'"] };
    expect(migrationStatus(m!, ledger(), different)).toMatchObject({ state: 'drift', problems: [expect.stringMatching(/differs/)] });
  });
  it('drift: the migration file was edited after it was recorded; or the index is not recorded', () => {
    expect(migrationStatus(m!, ledger({ checksum: 'f'.repeat(64) }), healthy)).toMatchObject({ state: 'drift', problems: [expect.stringMatching(/file changed/)] });
    expect(migrationStatus(m!, null, healthy)).toMatchObject({ state: 'drift', problems: [expect.stringMatching(/does not record/)] });
  });
  it('invalid without a ledger record; building while a build runs', () => {
    expect(migrationStatus(m!, null, invalid).state).toBe('invalid');
    expect(migrationStatus(m!, null, { ...invalid, building: { pid: 7, phase: 'building index', user: null, application: null } }).state).toBe('building');
  });
});

describe('retry decision on SQLSTATE', () => {
  it('retries lock timeouts, statement timeouts and deadlocks within the bound, with growing delays', () => {
    for (const s of ['55P03', '57014', '40P01']) expect(decideRetry({ sqlstate: s, attempt: 1, maxAttempts: 3 })).toMatchObject({ retry: true, delayMs: 1000 });
    expect(decideRetry({ sqlstate: '55P03', attempt: 2, maxAttempts: 3, baseDelayMs: 100 }).delayMs).toBe(200);
    expect(decideRetry({ sqlstate: '55P03', attempt: 3, maxAttempts: 3 })).toMatchObject({ retry: false, reason: expect.stringMatching(/gave up after 3/) });
  });
  it('never retries other errors', () => {
    expect(decideRetry({ sqlstate: '23505', attempt: 1, maxAttempts: 3 }).retry).toBe(false);
    expect(decideRetry({ sqlstate: undefined, attempt: 1, maxAttempts: 3 }).retry).toBe(false);
  });
  it('says whether the SQLSTATE is a retryable one, from the one list, retried or given up', () => {
    // The list the build and the drop go by: a lock timeout, a statement timeout or cancel, a deadlock.
    expect(Object.keys(RETRYABLE_SQLSTATES).sort()).toEqual(['40P01', '55P03', '57014']);
    for (const s of Object.keys(RETRYABLE_SQLSTATES)) {
      expect(decideRetry({ sqlstate: s, attempt: 1, maxAttempts: 2 })).toMatchObject({ retry: true, retryable: true });
      expect(decideRetry({ sqlstate: s, attempt: 2, maxAttempts: 2 })).toMatchObject({ retry: false, retryable: true });
    }
    for (const s of ['23505', '42P07', '42501', undefined]) expect(decideRetry({ sqlstate: s, attempt: 1, maxAttempts: 2 })).toMatchObject({ retry: false, retryable: false });
  });
  it('caps backoff, and polls the advisory lock within the wait', () => {
    expect(backoffMs(10, 1000, 5000)).toBe(5000);
    const d = lockPollDelays(3000);
    expect(d.reduce((a, b) => a + b, 0)).toBe(3000);
    expect(d[0]).toBe(50);
    expect(Math.max(...d)).toBeLessThanOrEqual(2000);
    expect(lockPollDelays(0)).toEqual([]);
  });
});

/** A direct primary session whose role owns the table and may write the state schema. */
const HEALTHY_SESSION: SessionFacts = {
  port: 5432,
  sessionKept: true,
  sessionProblem: null,
  inRecovery: false,
  transactionReadOnly: false,
  defaultReadOnly: false,
  currentUser: 'postgres',
  tableOwner: 'postgres',
  canCreateIndex: true,
  canWriteState: true,
  stateSchema: 'digest_doctor',
};

describe('connection checks', () => {
  const ok = HEALTHY_SESSION;
  const failing = (f: SessionFacts) => connectionChecks(f).filter((c) => c.verdict === 'fail').map((c) => c.check);
  it('passes a direct primary session with privileges', () => expect(failing(ok)).toEqual([]));
  it('refuses the Supabase transaction pooler and any pooler that loses session settings', () => {
    expect(failing({ ...ok, port: 6543 })).toEqual(['session']);
    expect(failing({ ...ok, sessionKept: false, sessionProblem: 'lost' })).toEqual(['session']);
  });
  it('refuses a replica, a read-only session, a role that cannot create the index or the ledger', () => {
    expect(failing({ ...ok, inRecovery: true })).toEqual(['primary']);
    expect(failing({ ...ok, defaultReadOnly: true })).toEqual(['writable']);
    expect(failing({ ...ok, canCreateIndex: false, tableOwner: 'app' })).toEqual(['privileges']);
    expect(failing({ ...ok, canWriteState: false })).toEqual(['ledger']);
  });
});

describe('the preflight is Findings; a halt carries its outcome', () => {
  const facts: SessionFacts = { ...HEALTHY_SESSION, currentUser: 'reader', tableOwner: 'app', canCreateIndex: false };
  it('connectionChecks: one Finding per check, in the order shown, the failing one with its fix', () => {
    const checks = connectionChecks(facts).map((c) => FindingSchema.parse(c));
    expect(checks.map((c) => c.check)).toEqual(['session', 'primary', 'writable', 'privileges', 'ledger']);
    expect(checks[3]).toEqual({ verdict: 'fail', check: 'privileges', message: 'reader does not own digest_history (owner app) and is not a superuser', fix: 'connect as app or a member of that role', items: [] });
    expect(findingsInline(checks.filter((c) => c.verdict === 'fail'))).toBe('privileges: reader does not own digest_history (owner app) and is not a superuser (fix: connect as app or a member of that role)');
  });
  it('halt: a DoctorError whose code gives the exit code; stopOutcome reads back only what halt made', () => {
    const stops = { refused: ['REFUSED', 4], busy: ['BUSY', 4], cancelled: ['CANCELLED', 4], failed: ['BUILD_FAILED', 1] } as const;
    for (const [outcome, [code, exitCode]] of Object.entries(stops)) {
      const err = halt(outcome as keyof typeof stops, 'why');
      expect(err).toBeInstanceOf(DoctorError);
      expect([err.code, err.exitCode, err.message]).toEqual([code, exitCode, 'why']);
      expect(stopOutcome(err)).toBe(outcome);
    }
    expect(stopOutcome(new DoctorError('BUSY', 'a lock timeout'))).toBeUndefined();
    expect(stopOutcome(new Error('boom'))).toBeUndefined();
  });
});

describe('indexFactDifferences (server facts against the migration)', () => {
  const e = expectedUniqueIndex();
  const CANDIDATES = ['scheduled', 'pending', 'processing', 'sent', 'failed', 'probe'];
  const plain: IndexFacts = {
    table: 'digest_history',
    unique: true,
    method: 'btree',
    keyColumns: ['user_id', 'digest_date'],
    includeColumns: 0,
    defaultOpclasses: true,
    defaultCollations: true,
    defaultOrder: true,
    nullsNotDistinct: false,
    deferrable: false,
    hasPredicate: true,
  };
  it('is the same index when the facts match and the predicate holds for exactly pending and processing', () => {
    expect(predicateStatuses(e.predicate)).toEqual(['pending', 'processing']);
    expect(indexFactDifferences(e, plain, ['processing', 'pending'], CANDIDATES)).toEqual([]);
  });
  it('names each structural difference', () => {
    expect(indexFactDifferences(e, { ...plain, keyColumns: [null, 'digest_date'] }, ['pending', 'processing'], CANDIDATES)).toEqual([
      'key ((an expression), digest_date), expected the plain columns (user_id, digest_date)',
    ]);
    expect(indexFactDifferences(e, { ...plain, keyColumns: ['digest_date', 'user_id'] }, ['pending', 'processing'], CANDIDATES)).toHaveLength(1);
    expect(indexFactDifferences(e, { ...plain, unique: false, method: 'hash', defaultOrder: false, deferrable: true, includeColumns: 1 }, ['pending', 'processing'], CANDIDATES)).toHaveLength(5);
    expect(indexFactDifferences(e, { ...plain, table: null }, ['pending', 'processing'], CANDIDATES)[0]).toMatch(/another schema/);
  });
  it('a predicate that holds for another set, none, or could not be evaluated differs', () => {
    expect(indexFactDifferences(e, plain, ['pending'], CANDIDATES)[0]).toMatch(/covers 'pending', expected/);
    expect(indexFactDifferences(e, plain, ['pending', 'processing', 'probe'], CANDIDATES)).toHaveLength(1);
    expect(indexFactDifferences(e, { ...plain, hasPredicate: false }, null, CANDIDATES)[0]).toMatch(/no WHERE predicate/);
    expect(indexFactDifferences(e, plain, { error: 'boom' }, CANDIDATES)[0]).toMatch(/could not be evaluated.*boom/);
  });
});
