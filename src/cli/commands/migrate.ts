import { plural } from '../../core/text.js';
import { Option, type Command } from 'commander';
import { formatAge } from '../../core/duplicates.js';
import { parseDuration, parsePositiveInt } from '../../core/validate.js';
import { ExitCode, type ExitCodeValue } from '../../errors.js';
import {
  DEFAULT_MIGRATE_OPTIONS,
  describeHolder,
  migrateApply,
  migrateDown,
  migratePlan,
  migrateStatus,
  type MigrateOptions,
  type MigrateResult,
  type MigrateStatus,
} from '../../ops/migrate.js';
import type { BuildProgress } from '../../postgres/migrator.js';
import { QUERY_TIMEOUT_GRACE_MS } from '../../postgres/db.js';
import { openDb } from '../options.js';
import { renderFindings } from '../findings.js';
import { printJson } from '../output.js';
import type { Style } from '../render.js';
import { confirmWrite, willAsk } from '../confirm.js';
import { act, type CommandContext } from '../run.js';

interface MigrateFlags {
  apply?: boolean;
  yes?: boolean;
  down?: boolean;
  lockTimeout: string;
  buildTimeout: string;
  attempts: string;
  lockWait: string;
  longTransaction: string;
  limit: string;
}

const HELP = `
Without --apply this is a dry run: the SQL it would run and a live preflight
(primary, writable, privileges, no transaction pooler, no in-flight duplicates,
long transactions, the lock). --apply builds with CREATE UNIQUE INDEX
CONCURRENTLY on its own connection, under a session-level advisory lock; a
failed build (55P03, 57014, 40P01) is dropped and retried. Ctrl-C cancels the
build on the server and removes the half-built index.

Exit codes: 0 applied / nothing to do, 1 a check failed (dry run) or drift
(status) or the build failed verification, 2 bad input, 3 unreachable,
4 refused (duplicates, replica, pooler, ...) or busy (another migrate holds the
lock; for status: an index is still being built), 130 interrupted.

Examples:
  digest-doctor migrate
  digest-doctor migrate --apply --lock-timeout 30s
  digest-doctor migrate status --json
  digest-doctor migrate --down --apply`;

/** Like parseDuration, but "0" means no limit (statement_timeout 0). */
function durationOrZero(value: string, flag: string): number {
  return value.trim() === '0' ? 0 : parseDuration(value, flag);
}

function portOf(url: string): number | null {
  try {
    const u = new URL(url);
    return Number(u.port || new URLSearchParams(u.search).get('port') || process.env.PGPORT || 5432);
  } catch {
    return null;
  }
}

function readFlags(ctx: CommandContext, o: MigrateFlags): MigrateOptions {
  return {
    ...DEFAULT_MIGRATE_OPTIONS,
    lockTimeoutMs: parseDuration(o.lockTimeout, '--lock-timeout'),
    buildTimeoutMs: durationOrZero(o.buildTimeout, '--build-timeout'),
    statementTimeoutMs: ctx.g.statementTimeoutMs,
    maxAttempts: parsePositiveInt(o.attempts, '--attempts'),
    lockWaitMs: durationOrZero(o.lockWait, '--lock-wait'),
    longTransactionMs: parseDuration(o.longTransaction, '--long-transaction'),
    duplicateLimit: parsePositiveInt(o.limit, '--limit'),
    port: ctx.g.databaseUrl ? portOf(ctx.g.databaseUrl) : null,
  };
}

function progressLine(p: BuildProgress): string {
  const pct = (done: number, total: number) => (total > 0 ? ` ${Math.floor((100 * done) / total)}%` : '');
  const parts = [`building: ${p.phase}`];
  if (p.blocksTotal) parts.push(`blocks ${p.blocksDone}/${p.blocksTotal}${pct(p.blocksDone, p.blocksTotal)}`);
  if (p.tuplesTotal) parts.push(`tuples ${p.tuplesDone}/${p.tuplesTotal}${pct(p.tuplesDone, p.tuplesTotal)}`);
  if (p.lockersTotal) parts.push(`waiting for ${plural(p.lockersTotal - p.lockersDone, 'transaction')}`);
  return parts.join(', ');
}

export function runExitCode(r: MigrateResult): ExitCodeValue {
  switch (r.outcome) {
    case 'applied':
    case 'noop':
    case 'removed':
      return r.ok ? ExitCode.OK : ExitCode.FINDINGS;
    case 'planned':
      return r.ok ? ExitCode.OK : ExitCode.FINDINGS;
    case 'refused':
    case 'busy':
    case 'cancelled':
      return ExitCode.REFUSED;
    case 'failed':
      return ExitCode.FINDINGS;
  }
}

export function register(program: Command): void {
  const migrate = program
    .command('migrate')
    .description(`install the partial unique index ux_digest_history_user_date safely on a live database (dry run unless --apply)`)
    .option('--apply', 'run it (default: dry run)')
    .option('--yes', 'with --apply on a terminal: do not ask for confirmation')
    .option('--down', 'remove the index instead (DROP INDEX CONCURRENTLY); with --apply')
    .addOption(new Option('--lock-timeout <duration>', "lock_timeout of every phase (also bounds the build's wait for older transactions)").default('10s'))
    .addOption(new Option('--build-timeout <duration>', 'statement_timeout of CREATE INDEX CONCURRENTLY (0 = none)').default('4h'))
    .addOption(new Option('--attempts <n>', 'build attempts on lock timeout, cancel or deadlock before giving up').default('3'))
    .addOption(new Option('--lock-wait <duration>', 'how long to poll for the migrate lock before answering busy (0 = try once)').default('10s'))
    .addOption(new Option('--long-transaction <duration>', 'list transactions open longer than this').default('1m'))
    .addOption(new Option('--limit <n>', 'duplicate groups to list').default('10'))
    .addHelpText('after', HELP)
    .action(
      act<MigrateFlags>(async (ctx, o) => {
        const opts = readFlags(ctx, o);
        // the build may legitimately run for --build-timeout: its replies are bounded by that (plus 10 s), or only by TCP keepalive with 0
        const openBuild = () => openDb(ctx.g, { checkTable: false, applicationName: 'digest-doctor migrate (build)', queryTimeoutMs: opts.buildTimeoutMs > 0 ? Math.max(opts.buildTimeoutMs, ctx.g.statementTimeoutMs) + QUERY_TIMEOUT_GRACE_MS : 0 });
        // --apply with no question to ask connects its build session beside the control session (the
        // preflight's second session, then the build's; a server's start-up paid once, not in turn).
        // The embedded engine is one process-wide engine, opened in turn.
        let early = o.apply && !willAsk(o.yes) && ctx.g.databaseUrl ? openBuild() : null;
        early?.catch(() => undefined);
        ctx.defer(async () => (await early?.catch(() => null))?.close());
        const db = await openDb(ctx.g, { applicationName: 'digest-doctor migrate', lockTimeoutMs: opts.lockTimeoutMs });
        ctx.defer(() => db.close());
        const ac = new AbortController();
        let settle = () => undefined as void;
        const settled = new Promise<void>((resolve) => (settle = resolve));
        ctx.onInterrupt(async () => {
          ac.abort();
          await settled;
        });
        try {
          const hooks = {
            connectBuild: () => {
              const conn = early ?? openBuild();
              early = null;
              return conn;
            },
            onProgress: (p: BuildProgress) => ctx.progress.update(progressLine(p)),
            signal: ac.signal,
          };
          if (o.apply && willAsk(o.yes)) {
            // On a terminal a person confirms: the plan first (the dry run: reads only), then the question.
            const dry = o.down ? await migrateDown(db, opts, hooks, false) : await migratePlan(db, opts);
            const todo = dry.migrations.filter((m) => m.outcome === 'planned');
            // A failing preflight makes --apply refuse on its own (exit 4): nothing to confirm then.
            if (todo.length && !dry.checks.some((c) => c.verdict === 'fail')) {
              await confirmWrite(ctx.g, o.yes, o.down ? 'migrate --down --apply' : 'migrate --apply', [
                ...todo.map((m) => `${String(m.version).padStart(4, '0')} ${m.name}: ${m.plan}`),
                ...dry.checks.filter((c) => c.verdict !== 'ok').map((c) => `preflight ${c.verdict}: ${c.check}: ${c.message}`),
                `ledger in ${ctx.g.stateSchema}.schema_migrations`,
              ]);
            }
          }
          const result = o.down ? await migrateDown(db, opts, hooks, Boolean(o.apply)) : o.apply ? await migrateApply(db, opts, hooks) : await migratePlan(db, opts);
          ctx.progress.done();
          if (ctx.g.json) printJson((await import('../../ops/migrate-schema.js')).MigrateResultSchema, result);
          else ctx.print(renderRun(result, ctx.style));
          return runExitCode(result);
        } finally {
          settle();
        }
      }),
    );

  migrate
    .command('status')
    .description('what is installed, from the catalog; drift between the ledger, the files and the catalog is exit 1')
    .action(
      act(async (ctx) => {
        const db = await openDb(ctx.g, { applicationName: 'digest-doctor migrate status' });
        ctx.defer(() => db.close());
        const result = await migrateStatus(db);
        if (ctx.g.json) printJson((await import('../../ops/migrate-schema.js')).MigrateStatusSchema, result);
        else ctx.print(renderStatus(result, ctx.style));
        return statusExitCode(result);
      }),
    );
}

export function renderRun(r: MigrateResult, s: Style): string {
  const out: string[] = [];
  const title = { plan: 'migrate (dry run)', apply: 'migrate --apply', 'down-plan': 'migrate --down (dry run)', down: 'migrate --down --apply' }[r.mode];
  out.push(s.heading(`${title}: ${r.target.database}, schema ${r.target.schema}`));
  if (r.checks.length) {
    out.push('', s.heading('Preflight'), renderFindings(r.checks, s));
  }
  if (r.duplicates.totalGroups) {
    out.push('', s.heading('Duplicate in-flight rows the index would reject'));
    out.push(s.table([{ header: 'user', id: true }, 'day', 'rows', { header: 'ids', id: true }, 'statuses'], r.duplicates.groups.map((g) => [g.userId, g.digestDate, g.rows, g.ids.join('\n'), g.statuses.join('\n')])));
    if (r.duplicates.groups.length < r.duplicates.totalGroups) out.push(s.dim(`showing ${r.duplicates.groups.length} of ${plural(r.duplicates.totalGroups, 'group')} (--limit for more)`));
    out.push(`fix: ${s.bold('digest-doctor fix-duplicates --apply')}, then migrate again`);
  }
  if (r.longTransactions.length) {
    out.push('', s.heading('Long-running transactions (a concurrent build waits for them)'));
    out.push(s.table(['pid', 'user', { header: 'application', shrink: true }, 'state', 'open for', { header: 'query', shrink: true, min: 20, drop: 1 }], r.longTransactions.map((t) => [t.pid, t.user, t.application, t.state, formatAge(t.ageMs), (t.query ?? '').slice(0, 60)])));
  }
  if (r.preparedTransactions.length) {
    out.push('', s.heading('Prepared transactions (pg_prepared_xacts; a build waits for those of this database)'));
    out.push(s.table([{ header: 'gid', shrink: true }, 'owner', 'database', { header: 'prepared', drop: 1 }, 'age', { header: 'locks digest_history', shrink: true, min: 5 }], r.preparedTransactions.map((p) => [p.gid, p.owner, p.database, p.prepared, formatAge(p.ageMs), p.locksTable ? 'yes' : 'no'])));
  }
  if (r.lockHolder) out.push('', `${s.verdict('fail')} lock held by ${describeHolder(r.lockHolder)}`);
  for (const m of r.migrations) {
    out.push('', s.heading(`${String(m.version).padStart(4, '0')} ${m.name}`));
    const b = m.before;
    out.push(`before: ${b.exists ? `${b.valid && b.ready ? s.ok('valid') : s.fail('INVALID')}${b.matches === false ? s.fail(' (different definition)') : ''}${b.building ? s.warn(` (being built by pid ${b.building.pid})`) : ''}` : 'absent'}`);
    out.push(`plan: ${m.plan}`);
    if (m.statements.length) {
      out.push(r.mode === 'plan' || r.mode === 'down-plan' ? 'would run (each statement alone, outside a transaction):' : 'ran:');
      for (const st of m.statements) out.push(`  ${s.accent(st)}`);
    }
    for (const a of m.actions) out.push(`${s.verdict('info')} ${a}`);
    if (m.verification) {
      const v = m.verification;
      out.push(`${s.verdict(v.valid && v.ready ? 'ok' : 'fail')} indisvalid ${v.valid}, indisready ${v.ready}`);
      out.push(`${s.verdict(v.matches ? 'ok' : 'fail')} definition ${v.matches ? 'matches the migration' : `differs: ${v.differences.join('; ')}`}`);
      out.push(`${s.verdict(v.arbiterProven ? 'ok' : 'fail')} the service's upsert arbiter indexes: ${v.arbiterIndexes.join(', ') || 'none'}`);
    }
  }
  const verdict = r.ok ? 'ok' : r.outcome === 'busy' ? 'warn' : 'fail';
  out.push('', `${s.verdict(verdict)} ${r.message}`);
  return out.join('\n');
}

/** `migrate status`: 4 (busy) while an index is still being built, else 1 on drift, else 0. */
export function statusExitCode(r: MigrateStatus): ExitCodeValue {
  if (r.building) return ExitCode.REFUSED;
  return r.drift ? ExitCode.FINDINGS : ExitCode.OK;
}

export function renderStatus(r: MigrateStatus, s: Style): string {
  const out: string[] = [s.heading(`migrate status: ${r.target.database}, schema ${r.target.schema} (ledger in ${r.target.stateSchema})`)];
  out.push(
    s.table(
      ['version', { header: 'name', shrink: true }, 'state', { header: 'index (catalog)', shrink: true }, { header: 'ledger', shrink: true, min: 20 }],
      r.migrations.map((m) => [
        m.version,
        m.name,
        m.state === 'applied' ? s.ok(m.state) : m.state === 'pending' ? s.warn(m.state) : s.fail(m.state),
        m.index.exists ? `${m.index.valid && m.index.ready ? 'valid' : 'INVALID'}${m.index.matches ? ', matches' : ', differs'}` : 'absent',
        m.ledger ? `${m.ledger.status}, ${plural(m.ledger.attempts, 'attempt')}, by ${m.ledger.appliedBy} ${m.ledger.finishedAt ?? m.ledger.startedAt}${m.ledger.lastSqlstate ? `, last error ${m.ledger.lastSqlstate}` : ''}` : 'no record',
      ]),
    ),
  );
  for (const m of r.migrations.filter((x) => x.state === 'building')) {
    out.push(`${s.verdict('warn')} building: ${m.problems[0] ?? m.name}; run digest-doctor migrate status again when it has finished (exit 4 until then)`);
  }
  if (r.findings.length) for (const f of r.findings) out.push(`${s.verdict('fail')} ${f}`);
  else if (!r.building) {
    const pending = r.migrations.filter((m) => m.state === 'pending');
    out.push(pending.length ? `${s.verdict('info')} ${plural(pending.length, 'migration')} not applied yet: digest-doctor migrate --apply` : `${s.verdict('ok')} installed, valid, matching, and recorded`);
  }
  return out.join('\n');
}
