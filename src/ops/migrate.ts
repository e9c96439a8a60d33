// `migrate`: install (or remove) the partial unique index on a live database, safely. The plan and
// every verdict come from core/migration.ts; the catalog reads and the ledger from
// postgres/migrator.ts; the lock, the build, the drop and the verification from
// postgres/index-build.ts; the JSON shapes from ./migrate-schema.ts (types only here). This module
// is the flow: --apply and --down --apply run one skeleton (preflight, lock, per-migration work with
// its verification, result), the two dry runs another.
import { finding, findingsInline, type Finding } from '../core/finding.js';
import { connectionChecks, halt, indexDdlWords, indexDifferences, migrationStatus, planUp, runnableStatement, stopOutcome, type CatalogIndex, type Migration } from '../core/migration.js';
import { serverMessageOf, sqlstateOf } from '../core/faults.js';
import { formatDuration, plural } from '../core/text.js';
import type { Db } from '../postgres/db.js';
import {
  assertLockHeld,
  buildIndex,
  describePrepared,
  dropIfInvalid,
  dropIndex,
  finishPrepared,
  setStatements,
  verifyIndex,
  withMigrateLock,
  type BuildHooks,
  type BuildOptions,
} from '../postgres/index-build.js';
import {
  indexDuplicates,
  ledgerBegin,
  ledgerFinish,
  ledgerWritesAsync,
  loadMigrations,
  lockHolder,
  longTransactions,
  preparedTransactions,
  readIndex,
  readLedger,
  renderStatement,
  sessionFacts,
  type LockHolder,
  type LongTransaction,
  type PreparedTransaction,
} from '../postgres/migrator.js';
import type { Duplicates, IndexState, MigrateOutcome, MigrateResult, MigrateStatus, MigrationRun } from './migrate-schema.js';
import { MIGRATE_SCHEMA_VERSION, MIGRATE_STATUS_SCHEMA_VERSION } from './migrate-version.js';

// The documents' types (./migrate-schema.ts, as types only: importing this module builds no zod schema).
export type { MigrateResult, MigrateStatus, MigrationRun } from './migrate-schema.js';

export interface MigrateOptions extends BuildOptions {
  /** How long to poll for the advisory lock before answering busy. */
  lockWaitMs: number;
  /** Transactions open longer than this are listed. */
  longTransactionMs: number;
  /** Duplicate groups to list. */
  duplicateLimit: number;
  /** Port of the server as configured (6543: the Supabase transaction pooler). */
  port: number | null;
}

export interface MigrateHooks extends BuildHooks {
  /** Opens the dedicated build connection (its own session, never inside a transaction). */
  connectBuild(): Promise<Db>;
}

export const DEFAULT_MIGRATE_OPTIONS: MigrateOptions = {
  lockTimeoutMs: 10_000,
  buildTimeoutMs: 4 * 3_600_000,
  statementTimeoutMs: 60_000,
  maxAttempts: 3,
  retryDelayMs: 1_000,
  lockWaitMs: 10_000,
  longTransactionMs: 60_000,
  duplicateLimit: 10,
  port: null,
};

function indexState(m: Migration, c: CatalogIndex): IndexState {
  const differences = indexDifferences(m.index, c);
  return { name: m.index.name, exists: c.exists, valid: c.valid, ready: c.ready, definition: c.definition, matches: c.exists ? differences.length === 0 : null, differences, building: c.building };
}

function target(db: Db) {
  return { database: db.target, schema: db.ids.schema, stateSchema: db.ids.state };
}

// ---------------------------------------------------------------- preflight

const NO_DUPLICATES: Duplicates = { checked: false, totalGroups: 0, totalRows: 0, groups: [] };

interface Preflight {
  checks: Finding[];
  duplicates: Duplicates;
  longTransactions: LongTransaction[];
  preparedTransactions: PreparedTransaction[];
  lockHolder: LockHolder | null;
}

export function describeHolder(h: LockHolder): string {
  return `pid ${h.pid}${h.user ? ` (${h.user}` : ' ('}${h.application ? `, ${h.application}` : ''}${h.clientAddr ? `, from ${h.clientAddr}` : ''}${h.since ? `, connected since ${h.since}` : ''})`;
}

/** "N (user, day) group(s) hold(s) more than one pending/processing row", with the count's own number. */
const holdsInFlight = (groups: number) => `${plural(groups, '(user, day) group')} ${groups === 1 ? 'holds' : 'hold'} more than one pending/processing row`;

/** In-flight duplicates the unique index would reject (`consequence` ends the message); items: the listed groups' row ids. */
function duplicatesFinding(d: Duplicates, consequence = ''): Finding {
  return d.totalGroups
    ? finding(
        'duplicates',
        'fail',
        `${holdsInFlight(d.totalGroups)} (${plural(d.totalRows, 'row')})${consequence}`,
        'run digest-doctor fix-duplicates --apply, then migrate again',
        d.groups.flatMap((g) => g.ids),
      )
    : finding('duplicates', 'ok', 'no (user, day) holds two rows the index covers');
}

/** Transactions open longer than `olderThanMs`: a concurrent build waits for each. Items: their pids. */
function longTransactionsFinding(long: readonly LongTransaction[], olderThanMs: number): Finding {
  const s = formatDuration(olderThanMs);
  return long.length
    ? finding(
        'long transactions',
        'warn',
        `${plural(long.length, 'transaction')} open longer than ${s}: a concurrent build waits for each (pids ${long.map((t) => t.pid).join(', ')})`,
        'let them finish or end them (pg_terminate_backend) before the build; lock_timeout bounds the wait',
        long.map((t) => String(t.pid)),
      )
    : finding('long transactions', 'ok', `none open longer than ${s}`);
}

/** Prepared transactions of this database: a concurrent build and its drop wait for each until it is committed or rolled back. Items: their gids. */
function preparedFinding(prepared: readonly PreparedTransaction[]): Finding {
  const here = prepared.filter((p) => p.inThisDatabase);
  if (!here.length) return finding('prepared transactions', 'ok', prepared.length ? `none in this database (${prepared.length} in others)` : 'none (pg_prepared_xacts is empty)');
  return finding(
    'prepared transactions',
    'warn',
    `${plural(here.length, 'prepared transaction')} in this database, which a concurrent build waits for: ${here.map(describePrepared).join(', ')}`,
    `have their owner finish them: ${finishPrepared(here)}`,
    here.map((p) => p.gid),
  );
}

/** The migrate lock: `busy` is the holder of a lock found taken (null: not visible to this role), undefined when it is free. Items: the holder's pid. */
function lockFinding(busy: LockHolder | null | undefined): Finding {
  if (busy === undefined) return finding('lock', 'ok', 'no other migrate is running');
  return finding('lock', 'fail', `another migrate holds the lock: ${busy ? describeHolder(busy) : 'holder not visible to this role'}`, 'wait for it to finish', busy ? [String(busy.pid)] : []);
}

/** Every check the dry run shows and --apply enforces, run together (doctor style), as Findings. */
async function preflight(db: Db, o: MigrateOptions, opts: { duplicates: boolean; lock: boolean; second?: () => Promise<Db> }): Promise<Preflight> {
  const checks = connectionChecks(await sessionFacts(db, o.port, opts.second));
  let duplicates = NO_DUPLICATES;
  if (opts.duplicates) {
    duplicates = { checked: true, ...(await indexDuplicates(db, o.duplicateLimit)) };
    checks.push(duplicatesFinding(duplicates, ': the unique build would fail'));
  }
  const long = await longTransactions(db, o.longTransactionMs);
  checks.push(longTransactionsFinding(long, o.longTransactionMs));
  const prepared = await preparedTransactions(db);
  checks.push(preparedFinding(prepared));
  const holder = opts.lock ? await lockHolder(db) : null;
  if (opts.lock) checks.push(lockFinding(holder ?? undefined));
  return { checks, duplicates, longTransactions: long, preparedTransactions: prepared, lockHolder: holder };
}

const failedChecks = (pre: Preflight) => pre.checks.filter((c) => c.verdict === 'fail');

function emptyRun(m: Migration, c: CatalogIndex, plan: string, outcome: MigrateOutcome): MigrationRun {
  return { version: m.version, name: m.name, checksum: m.checksum, before: indexState(m, c), plan, outcome, statements: [], actions: [], attempts: 0, verification: null };
}

function finish(db: Db, mode: MigrateResult['mode'], outcome: MigrateOutcome, message: string, pre: Preflight, runs: MigrationRun[]): MigrateResult {
  const ok = outcome === 'applied' || outcome === 'noop' || outcome === 'removed' || outcome === 'planned';
  return { schemaVersion: MIGRATE_SCHEMA_VERSION, command: 'migrate', mode, ok, outcome, message, target: target(db), ...pre, migrations: runs };
}

// ---------------------------------------------------------------- the dry runs

interface DryRunFlow {
  mode: 'plan' | 'down-plan';
  migrations: readonly Migration[];
  /** Whether the preflight looks for in-flight duplicates (a build's question, not a drop's). */
  duplicates: boolean;
  /** One migration's run from its catalog entry: the plan, the outcome it would have, the SQL it would run. */
  planOne(m: Migration, c: CatalogIndex): MigrationRun;
  /** The message when there is nothing to do, and when there is and nothing stands in the way. */
  words: { nothing: string; go: string };
}

/**
 * The skeleton of both dry runs: the live preflight (the lock included), then per migration the plan
 * and the SQL it would run, from the catalog. Writes nothing. `ok` is false when --apply would refuse
 * (a failing check) or not build (a migration is refused or busy).
 */
async function dryRun(db: Db, o: MigrateOptions, flow: DryRunFlow): Promise<MigrateResult> {
  const { mode, migrations, planOne, words } = flow;
  const pre = await preflight(db, o, { duplicates: flow.duplicates, lock: true });
  const runs: MigrationRun[] = [];
  for (const m of migrations) runs.push(planOne(m, await readIndex(db, m.index)));
  const failing = failedChecks(pre);
  const nothing = runs.every((r) => r.outcome === 'noop');
  const blocked = runs.find((r) => r.outcome === 'refused' || r.outcome === 'busy');
  const message = blocked
    ? `--apply would not build: ${blocked.plan}`
    : nothing
      ? words.nothing
      : failing.length
        ? `--apply would refuse: ${failing.map((c) => c.check).join(', ')} failed`
        : words.go;
  return { ...finish(db, mode, nothing ? 'noop' : 'planned', message, pre, runs), ok: failing.length === 0 && !blocked };
}

/** `migrate` (dry run): the SQL it would run and the live preflight; writes nothing. */
export async function migratePlan(db: Db, o: MigrateOptions): Promise<MigrateResult> {
  const timeouts = (stmtMs: number) => setStatements(o.lockTimeoutMs, stmtMs);
  return dryRun(db, o, {
    mode: 'plan',
    migrations: loadMigrations(),
    duplicates: true,
    planOne: (m, c) => {
      const p = planUp(m.index, c, db.engine);
      if (p.kind !== 'build') return emptyRun(m, c, p.reason, p.kind === 'noop' ? 'noop' : p.kind === 'conflict' ? 'refused' : 'busy');
      const run = emptyRun(m, c, p.reason, 'planned');
      if (p.dropInvalidFirst) run.statements.push(...timeouts(o.statementTimeoutMs), renderStatement(db, runnableStatement(m, 'down', db.engine)));
      run.statements.push(...timeouts(o.buildTimeoutMs), renderStatement(db, runnableStatement(m, 'up', db.engine)));
      return run;
    },
    words: { nothing: 'nothing to do: every migration is installed, valid and matching', go: 'dry run: run with --apply to build' },
  });
}

// ---------------------------------------------------------------- --apply and --down --apply

/** What one migration's work may use under the lock. */
interface Step {
  /** The preflight, completed as the work learns more (the duplicates under the lock). */
  pre: Preflight;
  /** Adds the migration's run to the result; a stop marks the last one added with its outcome. */
  track(run: MigrationRun): MigrationRun;
  /** The build connection, opened on first use and closed when the run ends. */
  build(): Promise<Db>;
}

interface ApplyFlow {
  mode: 'apply' | 'down';
  migrations: readonly Migration[];
  /** One migration's work under the lock (read, record, build or drop, verify); a halt stops the run. */
  work(m: Migration, s: Step): Promise<void>;
  /** The outcome and message of a run that went through. */
  done(runs: readonly MigrationRun[]): { outcome: MigrateOutcome; message: string };
}

/**
 * The skeleton of --apply and --down --apply: the applying preflight (refused, exit 4, when a check
 * fails; nothing written), the migrate lock (busy when another run holds it; cancelled when the
 * signal aborts the wait), `work` for each migration in order (a halt stops the run and becomes its
 * outcome), then `done` words the result of a run that went through.
 */
async function applying(db: Db, o: MigrateOptions, hooks: MigrateHooks, flow: ApplyFlow): Promise<MigrateResult> {
  // The build connection, opened once: the preflight's second session for the pooler test, then the
  // session that builds (or drops); closed under the lock, or as soon as the run stops before it.
  let build: Promise<Db> | null = null;
  const conn = {
    open: () => (build ??= hooks.connectBuild()),
    close: async () => {
      const b = build;
      build = null;
      await (await b?.catch(() => null))?.close();
    },
  };
  try {
    return await applyingWith(db, o, hooks, flow, conn);
  } finally {
    await conn.close();
  }
}

async function applyingWith(db: Db, o: MigrateOptions, hooks: MigrateHooks, flow: ApplyFlow, conn: { open(): Promise<Db>; close(): Promise<void> }): Promise<MigrateResult> {
  const { mode, migrations, work, done } = flow;
  const pre = await preflight(db, o, { duplicates: false, lock: false, second: conn.open });
  const failing = failedChecks(pre);
  if (failing.length) return finish(db, mode, 'refused', `refused: ${findingsInline(failing)}; nothing was written`, pre, []);
  const runs: MigrationRun[] = [];
  await ledgerWritesAsync(db);
  const step: Step = {
    pre,
    track: (run) => {
      runs.push(run);
      return run;
    },
    build: conn.open,
  };
  const command = mode === 'apply' ? 'migrate --apply' : 'migrate --down --apply';
  const locked = await withMigrateLock(db, o.lockWaitMs, hooks.signal, command, async () => {
    try {
      for (const m of migrations) await work(m, step);
      return null;
    } finally {
      await conn.close();
    }
  }).catch((err: unknown) => {
    const outcome = stopOutcome(err);
    if (!outcome) throw err;
    const last = runs[runs.length - 1];
    if (last) last.outcome = outcome;
    return { stopped: outcome, message: (err as Error).message };
  });
  if (locked && 'stopped' in locked) return finish(db, mode, locked.stopped, locked.message, pre, runs);
  if (locked && 'busy' in locked) {
    if (hooks.signal?.aborted) return finish(db, mode, 'cancelled', 'interrupted while waiting for the migrate lock; nothing was done', pre, runs);
    pre.lockHolder = locked.busy;
    pre.checks.push(lockFinding(locked.busy));
    return finish(db, mode, 'busy', `busy: another digest-doctor migrate holds the lock${locked.busy ? `: ${describeHolder(locked.busy)}` : ''}`, pre, runs);
  }
  const { outcome, message } = done(runs);
  return finish(db, mode, outcome, message, pre, runs);
}

/** Records in the ledger what the catalog already shows (under the lock), and says so in the run. */
async function recordAsFound(db: Db, m: Migration, status: 'applied' | 'reverted', run: MigrationRun, action: string): Promise<void> {
  await assertLockHeld(db, 'the ledger write');
  await ledgerBegin(db, m);
  await ledgerFinish(db, m, status);
  run.actions.push(action);
}

/** `migrate --apply`: preflight enforced, lock, build or rebuild each migration, verify, record. */
export async function migrateApply(db: Db, o: MigrateOptions, hooks: MigrateHooks): Promise<MigrateResult> {
  return applying(db, o, hooks, {
    mode: 'apply',
    migrations: loadMigrations(),
    work: async (m, s) => {
      const c = await readIndex(db, m.index);
      const p = planUp(m.index, c, db.engine);
      const run = s.track(emptyRun(m, c, p.reason, 'noop'));
      if (p.kind === 'noop') {
        const ledger = (await readLedger(db)).get(m.version);
        if (ledger?.status !== 'applied' || ledger.checksum !== m.checksum) await recordAsFound(db, m, 'applied', run, 'recorded the installed index in the ledger');
        return;
      }
      if (p.kind === 'building-elsewhere') throw halt('busy', p.reason);
      if (p.kind === 'conflict') throw halt('refused', `${p.reason}: remove it (digest-doctor migrate --down --apply) or rename it, then migrate again`);
      const b = await s.build();
      if (m.index.unique) {
        s.pre.duplicates = { checked: true, ...(await indexDuplicates(db, o.duplicateLimit)) };
        const d = s.pre.duplicates;
        if (d.totalGroups) {
          // A dead invalid unique index still rejects duplicate writes: it must not outlive the refusal.
          if (p.dropInvalidFirst) await dropIfInvalid(db, b, m, o, run, 'an earlier failed build left it invalid');
          s.pre.checks.push(duplicatesFinding(d));
          throw halt('refused', `refused: ${holdsInFlight(d.totalGroups)}; the unique index cannot be built. Run digest-doctor fix-duplicates --apply, then migrate again`);
        }
        s.pre.checks.push(duplicatesFinding(d));
      }
      await assertLockHeld(db, 'the build');
      await ledgerBegin(db, m);
      try {
        if (p.dropInvalidFirst) await dropIfInvalid(db, b, m, o, run, 'an earlier failed build left it invalid');
        await buildIndex(db, b, m, o, hooks, run);
        const v = (run.verification = await verifyIndex(db, m));
        if (!(v.valid && v.ready && v.matches && v.arbiterProven)) {
          throw halt('failed', `built, but verification failed: ${[!v.valid && 'not valid', !v.ready && 'not ready', ...v.differences, !v.arbiterProven && `the upsert's arbiters are [${v.arbiterIndexes.join(', ')}]`].filter(Boolean).join('; ')}`);
        }
        await ledgerFinish(db, m, 'applied');
        run.outcome = 'applied';
      } catch (err) {
        await ledgerFinish(db, m, 'failed', { message: serverMessageOf(err), sqlstate: stopOutcome(err) ? null : sqlstateOf(err) }).catch(() => undefined);
        throw err;
      }
    },
    done: (runs) => {
      const applied = runs.filter((r) => r.outcome === 'applied');
      return applied.length
        ? { outcome: 'applied', message: `applied: ${applied.map((r) => `${r.name} built, valid, and the upsert's arbiter`).join('; ')}` }
        : { outcome: 'noop', message: 'nothing to do: already applied (no-op)' };
    },
  });
}

/** `migrate --down [--apply]`: DROP INDEX CONCURRENTLY, newest migration first; the ledger says reverted. */
export async function migrateDown(db: Db, o: MigrateOptions, hooks: MigrateHooks, apply: boolean): Promise<MigrateResult> {
  const migrations = loadMigrations().reverse();
  if (!apply) {
    return dryRun(db, o, {
      mode: 'down-plan',
      migrations,
      duplicates: false,
      planOne: (m, c) => {
        const run = emptyRun(m, c, c.exists ? `index ${m.index.name} exists: drop it ${indexDdlWords(db.engine)}` : `index ${m.index.name} does not exist: nothing to drop`, c.exists ? 'planned' : 'noop');
        if (c.exists) run.statements.push(...setStatements(o.lockTimeoutMs, o.statementTimeoutMs), renderStatement(db, runnableStatement(m, 'down', db.engine)));
        return run;
      },
      words: { nothing: 'nothing to remove', go: 'dry run: run with --down --apply to remove' },
    });
  }
  return applying(db, o, hooks, {
    mode: 'down',
    migrations,
    work: async (m, s) => {
      const c = await readIndex(db, m.index);
      const run = s.track(emptyRun(m, c, c.exists ? `index ${m.index.name} exists: drop it ${indexDdlWords(db.engine)}` : `index ${m.index.name} does not exist`, 'noop'));
      if (c.building) throw halt('busy', `index ${m.index.name} is being built right now by pid ${c.building.pid}: wait for it, then remove it`);
      const ledger = (await readLedger(db)).get(m.version);
      if (!c.exists) {
        if (ledger && ledger.status !== 'reverted') await recordAsFound(db, m, 'reverted', run, 'the index was already gone: ledger marked reverted');
        return;
      }
      const b = await s.build();
      await assertLockHeld(db, 'the drop');
      await ledgerBegin(db, m);
      await dropIndex(db, b, m, o, run, 'migrate --down');
      await ledgerFinish(db, m, 'reverted');
      run.outcome = 'removed';
    },
    done: (runs) => {
      const removed = runs.filter((r) => r.outcome === 'removed');
      return removed.length ? { outcome: 'removed', message: `removed ${removed.map((r) => r.before.name).join(', ')}` } : { outcome: 'noop', message: 'nothing to remove (no-op)' };
    },
  });
}

// ---------------------------------------------------------------- status

export async function migrateStatus(db: Db): Promise<MigrateStatus> {
  const migrations = loadMigrations();
  const ledger = await readLedger(db);
  const out: MigrateStatus['migrations'] = [];
  for (const m of migrations) {
    const c = await readIndex(db, m.index);
    if (c.exists && !c.valid && !c.building) {
      // Without pg_read_all_stats another role's build shows no relation: an INVALID index beside
      // one such build in this database is taken as that build rather than called dead.
      const [hidden] = await db.query<{ pid: number }>('migrate_hidden_builds');
      if (hidden) c.building = { pid: hidden.pid, phase: 'phase not visible to this role (GRANT pg_read_all_stats to see it)', user: null, application: null };
    }
    const entry = ledger.get(m.version) ?? null;
    const s = migrationStatus(m, entry, c);
    out.push({ version: m.version, name: m.name, checksum: m.checksum, state: s.state, problems: s.problems, index: indexState(m, c), ledger: entry });
  }
  const known = new Set(migrations.map((m) => m.version));
  const unknown = [...ledger.keys()].filter((v) => !known.has(v));
  const findings = [...out.flatMap((m) => (m.state === 'drift' || m.state === 'invalid' ? m.problems.map((p) => `${m.name}: ${p}`) : [])), ...unknown.map((v) => `the ledger records migration ${v}, which has no file in sql/migrations`)];
  return {
    schemaVersion: MIGRATE_STATUS_SCHEMA_VERSION,
    command: 'migrate status',
    target: target(db),
    migrations: out,
    unknownLedgerVersions: unknown,
    drift: findings.length > 0,
    building: out.some((m) => m.state === 'building'),
    findings,
  };
}
