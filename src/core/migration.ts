// The pure half of `migrate`: migration files as data, checksums, the structural comparison of index
// definitions, the plan for one index migration, status verdicts, the retry decision, the stops
// (halt) and the connection's preflight Findings. No I/O.
import { plural } from './text.js';
import { createHash } from 'node:crypto';
import { applyChecks } from './apply-preflight.js';
import { DoctorError } from '../errors.js';
import { finding, type Finding } from './finding.js';
import { TABLE, UNIQUE_INDEX_NAME, UNIQUE_INDEX_STATUSES } from './contract.js';

// ---------------------------------------------------------------- migration files

export interface MigrationSource {
  version: number;
  name: string;
  /** File texts as stored (with {{schema}} tokens). */
  up: string;
  down: string;
}

export interface Migration extends MigrationSource {
  checksum: string;
  /** The file asks to be run CONCURRENTLY (header line `-- digest-doctor: concurrently`). */
  concurrently: boolean;
  /** The one statement of each file, comments and the final semicolon removed. */
  upStatement: string;
  downStatement: string;
  /** The index the up statement creates. */
  index: IndexShape;
}

const FILE_NAME = /^(\d{4})_([a-z0-9_]+)\.(up|down)\.sql$/;

export function parseMigrationFileName(file: string): { version: number; name: string; direction: 'up' | 'down' } | null {
  const m = FILE_NAME.exec(file);
  return m ? { version: Number(m[1]), name: m[2]!, direction: m[3] as 'up' | 'down' } : null;
}

/** sha256 of both files (line endings normalised), so editing either is drift. */
export function migrationChecksum(up: string, down: string): string {
  const norm = (s: string) => s.replace(/\r\n/g, '\n');
  return createHash('sha256').update(norm(up)).update('\0').update(norm(down)).digest('hex');
}

/** Masks string literals and quoted identifiers so scanners do not see `;`, `--` or parentheses inside them. */
function maskLiterals(text: string): { masked: string; literals: string[] } {
  const literals: string[] = [];
  const masked = text.replace(/'(?:[^']|'')*'|"(?:[^"]|"")*"/g, (lit) => {
    literals.push(lit);
    return `\u0000${literals.length - 1}\u0000`;
  });
  return { masked, literals };
}

function unmask(text: string, literals: string[]): string {
  return text.replace(/\u0000(\d+)\u0000/g, (_m, i: string) => literals[Number(i)]!);
}

/** Removes `--` and block comments, leaving string literals and quoted identifiers intact. */
export function stripComments(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === "'" || ch === '"') {
      let j = i + 1;
      while (j < text.length && !(text[j] === ch && text[j + 1] !== ch)) j += text[j] === ch ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j;
    } else if (ch === '-' && text[i + 1] === '-') {
      while (i < text.length && text[i] !== '\n') i++;
      out += '\n';
    } else if (ch === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end < 0 ? text.length : end + 1;
      out += ' ';
    } else out += ch;
  }
  return out;
}

/** The single statement of a migration file. Two statements in one file would run as one implicit transaction. */
export function singleStatement(text: string, file: string): string {
  const { masked, literals } = maskLiterals(stripComments(text));
  const body = masked.trim().replace(/;\s*$/, '');
  if (body.includes(';')) throw new Error(`${file}: holds more than one statement; a migration file holds exactly one`);
  if (!body) throw new Error(`${file}: holds no statement`);
  const stmt = unmask(body, literals).replace(/\s+/g, ' ').trim();
  if (/\bIF\s+NOT\s+EXISTS\b/i.test(stmt)) {
    throw new Error(`${file}: uses IF NOT EXISTS, which reports success over an INVALID index; the runner checks the catalog instead`);
  }
  return stmt;
}

export function buildMigration(src: MigrationSource): Migration {
  const file = `${String(src.version).padStart(4, '0')}_${src.name}`;
  const upStatement = singleStatement(src.up, `${file}.up.sql`);
  const downStatement = singleStatement(src.down, `${file}.down.sql`);
  const index = parseIndexDef(upStatement);
  if (!index) throw new Error(`${file}.up.sql: is not a CREATE INDEX statement`);
  return {
    ...src,
    checksum: migrationChecksum(src.up, src.down),
    concurrently: /^--\s*digest-doctor:\s*concurrently\s*$/m.test(src.up),
    upStatement,
    downStatement,
    index,
  };
}

/**
 * The statement as Postgres runs it: CONCURRENTLY added after CREATE [UNIQUE] INDEX / DROP INDEX.
 * The file keeps the plain form so an embedded engine (PGlite, one connection) can run it as written.
 */
export function withConcurrently(statement: string): string {
  const create = /^(\s*CREATE\s+(?:UNIQUE\s+)?INDEX)\s+(?!CONCURRENTLY\b)/i;
  const drop = /^(\s*DROP\s+INDEX)\s+(?!CONCURRENTLY\b)/i;
  if (/^\s*(?:CREATE\s+(?:UNIQUE\s+)?|DROP\s+)INDEX\s+CONCURRENTLY\b/i.test(statement)) return statement;
  if (create.test(statement)) return statement.replace(create, '$1 CONCURRENTLY ');
  if (drop.test(statement)) return statement.replace(drop, '$1 CONCURRENTLY ');
  throw new Error(`cannot run concurrently: ${statement.slice(0, 60)}`);
}

/** What a runner executes for one direction: Postgres gets CONCURRENTLY, an embedded engine the file as written. */
export function runnableStatement(m: Migration, direction: 'up' | 'down', engine: 'postgres' | 'embedded'): string {
  const stmt = direction === 'up' ? m.upStatement : m.downStatement;
  return engine === 'postgres' && m.concurrently ? withConcurrently(stmt) : stmt;
}

// ---------------------------------------------------------------- index definitions

export interface IndexShape {
  unique: boolean;
  name: string;
  /** Table name without its schema (the schema is chosen by --schema). */
  table: string;
  method: string;
  columns: string[];
  /** Canonical predicate (`status IN ('pending','processing')`), or null for a full index. */
  predicate: string | null;
}

function bareName(ident: string): string {
  const parts = ident.split('.');
  return parts[parts.length - 1]!.replace(/^"|"$/g, '').replace(/""/g, '"');
}

/** Parses `CREATE [UNIQUE] INDEX [CONCURRENTLY] name ON [ONLY] table [USING m] (cols) [WHERE pred]`, as written or as pg_get_indexdef prints it. */
export function parseIndexDef(sql: string): IndexShape | null {
  const { masked, literals } = maskLiterals(sql.replace(/\s+/g, ' ').trim().replace(/;$/, ''));
  const head = /^CREATE (UNIQUE )?INDEX (?:CONCURRENTLY )?(?:IF NOT EXISTS )?(\S+) ON (?:ONLY )?(\S+) (?:USING (\w+) ?)?\(/i.exec(masked);
  if (!head) return null;
  const open = head[0].length - 1;
  let depth = 0;
  let close = -1;
  for (let i = open; i < masked.length; i++) {
    if (masked[i] === '(') depth++;
    else if (masked[i] === ')' && --depth === 0) {
      close = i;
      break;
    }
  }
  if (close < 0) return null;
  const cols = splitTopLevel(masked.slice(open + 1, close)).map((c) => normaliseExpr(unmask(c, literals)));
  const rest = masked.slice(close + 1).trim();
  const where = /^WHERE (.*)$/i.exec(rest);
  if (rest && !where) return null;
  return {
    unique: Boolean(head[1]),
    name: bareName(unmask(head[2]!, literals)),
    table: bareName(unmask(head[3]!, literals)),
    method: (head[4] ?? 'btree').toLowerCase(),
    columns: cols,
    predicate: where ? canonicalPredicate(unmask(where[1]!, literals)) : null,
  };
}

function splitTopLevel(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

const CAST = /::\s*(?:character varying|double precision|timestamp with(?:out)? time zone|[a-z_][a-z0-9_]*)(?:\s*\(\s*\d+(?:\s*,\s*\d+)?\s*\))?(?:\[\])?/g;

/** Lower-cases outside literals, drops quotes around identifiers, casts, parentheses and extra spaces. */
function normaliseExpr(expr: string): string {
  const { masked, literals } = maskLiterals(expr);
  const quotedIdents = literals.map((l) => (l.startsWith('"') ? l.slice(1, -1).replace(/""/g, '"') : l));
  const flat = masked
    .toLowerCase()
    .replace(CAST, '')
    .replace(/[()]/g, ' ')
    .replace(/\s*([=,[\]])\s*/g, ' $1 ')
    .replace(/\s+/g, ' ')
    .trim();
  return unmask(flat, quotedIdents);
}

/**
 * Postgres stores `status IN ('a','b')` as `(status)::text = ANY ((ARRAY['a'::character varying, ...])::text[])`;
 * both, and `status = 'a' OR status = 'b'`, become `status IN ('a','b')` with the values sorted.
 */
export function canonicalPredicate(pred: string): string {
  const flat = normaliseExpr(pred);
  const lits = (s: string): string[] | null => {
    const items = s.split(' , ').map((x) => x.trim());
    return items.every((x) => /^'(?:[^']|'')*'$/.test(x)) ? items : null;
  };
  let col: string | undefined;
  let values: string[] | null = null;
  let m = /^([a-z_][a-z0-9_]*) in (.+)$/.exec(flat);
  if (m) [col, values] = [m[1], lits(m[2]!)];
  m = m ? m : /^([a-z_][a-z0-9_]*) = any array \[ (.+) \]$/.exec(flat);
  if (m && !values) [col, values] = [m[1], lits(m[2]!)];
  if (!values) {
    const ors = flat.split(' or ').map((p) => /^([a-z_][a-z0-9_]*) = ('(?:[^']|'')*')$/.exec(p));
    if (ors.every(Boolean) && new Set(ors.map((o) => o![1])).size === 1) [col, values] = [ors[0]![1], ors.map((o) => o![2]!)];
  }
  if (!col || !values) return flat;
  return `${col} IN (${[...new Set(values)].sort().join(',')})`;
}

/** The index the service contract asks for, built from UNIQUE_INDEX_STATUSES. */
export function expectedUniqueIndex(): IndexShape {
  return {
    unique: true,
    name: UNIQUE_INDEX_NAME,
    table: TABLE,
    method: 'btree',
    columns: ['user_id', 'digest_date'],
    predicate: `status IN (${[...UNIQUE_INDEX_STATUSES].map((s) => `'${s}'`).sort().join(',')})`,
  };
}

/** Differences that matter, in words; empty when the two definitions are the same index. */
export function compareIndexShapes(expected: IndexShape, actual: IndexShape): string[] {
  const out: string[] = [];
  if (expected.unique !== actual.unique) out.push(expected.unique ? 'not UNIQUE' : 'UNIQUE');
  if (expected.table !== actual.table) out.push(`on table ${actual.table}, expected ${expected.table}`);
  if (expected.method !== actual.method) out.push(`USING ${actual.method}, expected ${expected.method}`);
  if (expected.columns.join(', ') !== actual.columns.join(', ')) out.push(`columns (${actual.columns.join(', ')}), expected (${expected.columns.join(', ')})`);
  if (expected.predicate !== actual.predicate) out.push(`predicate ${actual.predicate ?? 'none'}, expected ${expected.predicate ?? 'none'}`);
  return out;
}

// ---------------------------------------------------------------- catalog state and the plan

export interface CatalogIndex {
  exists: boolean;
  valid: boolean;
  ready: boolean;
  /** pg_get_indexdef, when the index exists: shown to the operator, never parsed. */
  definition: string | null;
  /** A CREATE INDEX in progress for this index (pg_stat_progress_create_index). */
  building: { pid: number; phase: string; user: string | null; application: string | null } | null;
  /**
   * How the index differs from the migration, in words, as judged from the server (catalog fields,
   * the predicate evaluated by the server, the service upsert's EXPLAIN): see indexFactDifferences.
   * Empty when it is the same index, or when it does not exist.
   */
  differences: string[];
}

/**
 * The structural facts of an index, read from pg_index / pg_class / pg_am / pg_opclass (no text):
 * what makes an index the arbiter of `ON CONFLICT (user_id, digest_date) WHERE ...`.
 */
export interface IndexFacts {
  /** The table it is on (in the service schema; null: another schema). */
  table: string | null;
  unique: boolean;
  method: string;
  /** Key columns in order, by name; null for an expression key (indkey 0). */
  keyColumns: Array<string | null>;
  /** INCLUDE columns. */
  includeColumns: number;
  /** Every key uses its type's default operator class and the column's collation. */
  defaultOpclasses: boolean;
  defaultCollations: boolean;
  /** indoption: every key ASC NULLS LAST. */
  defaultOrder: boolean;
  nullsNotDistinct: boolean;
  /** DEFERRABLE (indimmediate false): never an arbiter. */
  deferrable: boolean;
  hasPredicate: boolean;
}

/**
 * The statuses a canonical predicate of one of our own migration files (`status IN ('a','b')`,
 * canonicalPredicate) covers; null when it is no such list. Never used on server text.
 */
export function predicateStatuses(predicate: string | null): string[] | null {
  if (predicate === null) return null;
  const m = /^status IN \((.*)\)$/.exec(predicate);
  if (!m) return null;
  const items = m[1]!.split(',').map((x) => /^'((?:[^']|'')*)'$/.exec(x.trim()));
  return items.every(Boolean) ? items.map((x) => x![1]!.replace(/''/g, "'")) : null;
}

/**
 * Differences that matter between the migration's index and the live one, from server facts:
 * `facts` (catalog fields) and `predicateHolds`, the candidate statuses for which the server
 * evaluated the live predicate to true (null: no predicate; `{ error }`: it could not say), over
 * `candidates`. Empty when they are the same index.
 */
export function indexFactDifferences(expected: IndexShape, facts: IndexFacts, predicateHolds: string[] | { error: string } | null, candidates: readonly string[]): string[] {
  const out: string[] = [];
  if (facts.table !== expected.table) out.push(`on table ${facts.table ?? 'of another schema'}, expected ${expected.table}`);
  if (expected.unique !== facts.unique) out.push(expected.unique ? 'not UNIQUE' : 'UNIQUE');
  if (expected.method !== facts.method) out.push(`USING ${facts.method}, expected ${expected.method}`);
  const cols = facts.keyColumns.map((c) => c ?? '(an expression)');
  if (cols.join(', ') !== expected.columns.join(', ')) out.push(`key (${cols.join(', ')}), expected the plain columns (${expected.columns.join(', ')})`);
  if (facts.includeColumns) out.push(`${plural(facts.includeColumns, 'INCLUDE column')}`);
  if (!facts.defaultOpclasses) out.push('a non-default operator class');
  if (!facts.defaultCollations) out.push('a collation other than the column’s');
  if (!facts.defaultOrder) out.push('a key order other than ASC NULLS LAST');
  if (facts.nullsNotDistinct) out.push('NULLS NOT DISTINCT');
  if (facts.deferrable) out.push('DEFERRABLE (never an ON CONFLICT arbiter)');
  const want = predicateStatuses(expected.predicate);
  if (expected.predicate === null) {
    if (facts.hasPredicate) out.push('a WHERE predicate, expected none');
  } else if (!facts.hasPredicate) {
    out.push(`no WHERE predicate, expected ${expected.predicate}`);
  } else if (predicateHolds && !Array.isArray(predicateHolds)) {
    out.push(`its predicate could not be evaluated by the server (${predicateHolds.error})`);
  } else if (want) {
    const holds = predicateHolds ?? [];
    const sameSet = candidates.every((c) => holds.includes(c) === want.includes(c));
    if (!sameSet) out.push(`its predicate covers ${holds.length ? holds.map((h) => `'${h}'`).join(', ') : 'no status'}, expected ${expected.predicate}`);
  }
  return out;
}

export type UpPlan =
  | { kind: 'noop'; reason: string }
  | { kind: 'build'; dropInvalidFirst: boolean; reason: string }
  | { kind: 'building-elsewhere'; pid: number; reason: string }
  | { kind: 'conflict'; differences: string[]; reason: string };

/** The catalog's differences from `expected` (judged from server facts when the index was read). */
export function indexDifferences(_expected: IndexShape, catalog: CatalogIndex): string[] {
  return catalog.exists ? catalog.differences : [];
}

/**
 * How an engine builds and drops a migration's index, in the words the plan and the actions use:
 * 'concurrently' on Postgres; on the embedded engine the file runs as written, and it says so.
 */
export function indexDdlWords(engine: 'postgres' | 'embedded'): string {
  return engine === 'embedded' ? 'without CONCURRENTLY (embedded engine: one connection, nothing else writes)' : 'concurrently';
}

/** What `migrate --apply` does about one index migration, given the catalog, on `engine` (the reason's words). */
export function planUp(expected: IndexShape, catalog: CatalogIndex, engine: 'postgres' | 'embedded' = 'postgres'): UpPlan {
  if (!catalog.exists) return { kind: 'build', dropInvalidFirst: false, reason: `index ${expected.name} does not exist` };
  if (catalog.building) {
    return { kind: 'building-elsewhere', pid: catalog.building.pid, reason: `index ${expected.name} is being built right now by pid ${catalog.building.pid} (${catalog.building.phase})` };
  }
  const diffs = indexDifferences(expected, catalog);
  if (!catalog.valid || !catalog.ready) {
    // A dead concurrent build: still maintained (and enforcing uniqueness on writes) but never used; rebuild it.
    return { kind: 'build', dropInvalidFirst: true, reason: `index ${expected.name} exists but is INVALID (a failed earlier build): drop it ${indexDdlWords(engine)} and rebuild` };
  }
  if (diffs.length) return { kind: 'conflict', differences: diffs, reason: `index ${expected.name} exists with another definition: ${diffs.join('; ')}` };
  return { kind: 'noop', reason: `index ${expected.name} is installed, valid and matching: nothing to do` };
}

// ---------------------------------------------------------------- status

export interface LedgerEntry {
  version: number;
  name: string;
  checksum: string;
  status: 'running' | 'applied' | 'failed' | 'reverted';
  attempts: number;
  lastError: string | null;
  lastSqlstate: string | null;
  toolVersion: string;
  appliedBy: string;
  startedAt: string;
  finishedAt: string | null;
}

export type MigrationState = 'applied' | 'pending' | 'drift' | 'invalid' | 'building';

/** The catalog is the truth; the ledger must agree with it and with the file. */
export function migrationStatus(m: Pick<Migration, 'checksum' | 'index'>, ledger: LedgerEntry | null, catalog: CatalogIndex): { state: MigrationState; problems: string[] } {
  const problems: string[] = [];
  const diffs = indexDifferences(m.index, catalog);
  const healthy = catalog.exists && catalog.valid && catalog.ready && diffs.length === 0;
  const applied = ledger?.status === 'applied';
  if (ledger && ledger.checksum !== m.checksum) problems.push(`the migration file changed since it was recorded (checksum ${ledger.checksum.slice(0, 12)}, file ${m.checksum.slice(0, 12)}): migrations are append-only, add a new one`);
  if (applied && !catalog.exists) problems.push(`the ledger says applied but index ${m.index.name} is missing: run digest-doctor migrate --apply`);
  if (catalog.exists && diffs.length) problems.push(`index ${m.index.name} differs from the migration: ${diffs.join('; ')}`);
  if (catalog.building) return { state: 'building', problems: [`index ${m.index.name} is being built by pid ${catalog.building.pid} (${catalog.building.phase})`, ...problems] };
  if (catalog.exists && (!catalog.valid || !catalog.ready)) {
    problems.push(`index ${m.index.name} is INVALID (a failed concurrent build; it still slows and rejects writes): run digest-doctor migrate --apply to rebuild it`);
    return { state: applied ? 'drift' : 'invalid', problems };
  }
  if (healthy && !applied) problems.push(`index ${m.index.name} is installed but the ledger does not record it: run digest-doctor migrate --apply to record it`);
  if (problems.length) return { state: 'drift', problems };
  return { state: healthy ? 'applied' : 'pending', problems };
}

// ---------------------------------------------------------------- retries and backoff

/** SQLSTATEs after which a concurrent build is dropped and tried again. */
export const RETRYABLE_SQLSTATES: Readonly<Record<string, string>> = {
  '55P03': 'lock_timeout: a lock or an old transaction made the build wait too long',
  '57014': 'statement_timeout or a cancel',
  '40P01': 'deadlock detected',
};

export interface RetryDecision {
  retry: boolean;
  /** The SQLSTATE is one of RETRYABLE_SQLSTATES (a busy table, not a broken build), retried or not. */
  retryable: boolean;
  delayMs: number;
  reason: string;
}

/**
 * Whether a failed concurrent build or drop is tried again. `attempt` counts from 1; the delay is
 * backoffMs(attempt, baseDelayMs = 1000). Only RETRYABLE_SQLSTATES are retried, at most
 * `maxAttempts` attempts in all. (A cancel the user asked for arrives as 57014 too: the caller,
 * which knows it cancelled, stops before asking.)
 */
export function decideRetry(input: { sqlstate: string | undefined; attempt: number; maxAttempts: number; baseDelayMs?: number }): RetryDecision {
  const why = input.sqlstate ? RETRYABLE_SQLSTATES[input.sqlstate] : undefined;
  if (!why) return { retry: false, retryable: false, delayMs: 0, reason: `SQLSTATE ${input.sqlstate ?? 'none'} is not retryable` };
  if (input.attempt >= input.maxAttempts) return { retry: false, retryable: true, delayMs: 0, reason: `${why}; gave up after ${plural(input.attempt, 'attempt')}` };
  return { retry: true, retryable: true, delayMs: backoffMs(input.attempt, input.baseDelayMs ?? 1000), reason: why };
}

/** Exponential backoff, capped: base, 2*base, 4*base ... at most `capMs`. */
export function backoffMs(attempt: number, baseMs: number, capMs = 30_000): number {
  return Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
}

/** The delays between pg_try_advisory_lock polls that fit in `waitMs` (50 ms doubling to 2 s). */
export function lockPollDelays(waitMs: number): number[] {
  const out: number[] = [];
  let total = 0;
  for (let d = 50; total < waitMs; d = Math.min(d * 2, 2000)) {
    const step = Math.min(d, waitMs - total);
    out.push(step);
    total += step;
  }
  return out;
}

// ---------------------------------------------------------------- stops

/** The DoctorError code of each way a migrate run stops early (exit codes: src/errors.ts; the same as the CLI's runExitCode). */
const CODE_BY_OUTCOME = { refused: 'REFUSED', busy: 'BUSY', cancelled: 'CANCELLED', failed: 'BUILD_FAILED' } as const;
/** The outcomes a migrate run can stop with (a subset of the result's `outcome`). */
export type StopOutcome = keyof typeof CODE_BY_OUTCOME;

/**
 * A DoctorError that stops a migrate run and becomes its result (outcome and message) rather than an
 * error document: the outcome rides in `details`, so only the stops migrate makes are turned into
 * results; any other DoctorError (a lost connection, a timeout) still propagates as before.
 */
export function halt(outcome: StopOutcome, message: string): DoctorError {
  return new DoctorError(CODE_BY_OUTCOME[outcome], message, { details: { migrateOutcome: outcome } });
}

/** The outcome of a stop made by `halt`, or undefined for any other error. */
export function stopOutcome(err: unknown): StopOutcome | undefined {
  if (!(err instanceof DoctorError)) return undefined;
  const o = (err.details as { migrateOutcome?: StopOutcome } | undefined)?.migrateOutcome;
  return o !== undefined && o in CODE_BY_OUTCOME ? o : undefined;
}

// ---------------------------------------------------------------- preflight verdicts

export interface SessionFacts {
  port: number | null;
  /** The backend pid stayed the same across statements and a session setting survived. */
  sessionKept: boolean;
  sessionProblem: string | null;
  inRecovery: boolean;
  transactionReadOnly: boolean;
  defaultReadOnly: boolean;
  currentUser: string;
  tableOwner: string;
  canCreateIndex: boolean;
  canWriteState: boolean;
  stateSchema: string;
}

/** Transaction poolers hand each statement to any backend: session locks and SET do not hold there. */
export { SUPABASE_TRANSACTION_POOLER_PORT } from './apply-preflight.js';

/** session, primary and writable (the applying preflight every writing command shares: core/apply-preflight.ts), then privileges and ledger. */
export function connectionChecks(f: SessionFacts): Finding[] {
  return [
    ...applyChecks({ port: f.port, kept: f.sessionKept, problem: f.sessionProblem }, f),
    f.canCreateIndex
      ? finding('privileges', 'ok', `${f.currentUser} may create the index (table owner ${f.tableOwner})`)
      : finding('privileges', 'fail', `${f.currentUser} does not own ${TABLE} (owner ${f.tableOwner}) and is not a superuser`, `connect as ${f.tableOwner} or a member of that role`),
    f.canWriteState
      ? finding('ledger', 'ok', `may write the ledger in schema ${f.stateSchema}`)
      : finding('ledger', 'fail', `${f.currentUser} may not create the ledger in schema ${f.stateSchema}`, `GRANT CREATE on the database or schema ${f.stateSchema} to ${f.currentUser}, or pass --state-schema`),
  ];
}
