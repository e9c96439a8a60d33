// The one module that owns the `pg` import. Everything else talks to Postgres through Db.
import type { Client, QueryResultRow } from 'pg';
import { DoctorError, badInput } from '../errors.js';
import { redactUrl } from '../core/redact.js';
import { sql, type SqlIdentifiers } from './sql.js';

export interface PgConfig {
  /** Already normalised (see normalizePgUrl). */
  url: string;
  /** The service's schema (where digest_history lives). */
  schema: string;
  /** The tool's own schema (ledger, audit). */
  stateSchema: string;
  statementTimeoutMs: number;
  lockTimeoutMs?: number;
  applicationName?: string;
  connectTimeoutMs?: number;
}

const DRIVER_SUFFIX = /^(postgres(?:ql)?)\+[a-z0-9_]+:\/\//i;

/** Strips a SQLAlchemy driver suffix (`postgresql+asyncpg://`) and checks the URL parses. */
export function normalizePgUrl(raw: string): string {
  const url = raw.trim().replace(DRIVER_SUFFIX, 'postgresql://');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw badInput(`database URL "${redactUrl(url)}" does not parse: expected postgresql://user:password@host:5432/dbname`);
  }
  if (parsed.protocol !== 'postgresql:' && parsed.protocol !== 'postgres:') {
    throw badInput(`database URL scheme "${parsed.protocol}" is not postgres: expected postgresql://user:password@host:5432/dbname`);
  }
  return url;
}

export function describeTarget(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname || 'localhost'}:${u.port || '5432'}${u.pathname || ''}`;
  } catch {
    return redactUrl(url);
  }
}

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'ETIMEDOUT', 'EHOSTUNREACH', 'ECONNRESET', 'EAI_AGAIN', 'ENETUNREACH']);

/** Turns a driver error into a DoctorError where it means "unreachable" or "refused us". */
export function classifyPgError(err: unknown, target: string): unknown {
  if (err instanceof DoctorError) return err;
  const e = err as { code?: string; message?: string };
  const msg = redactUrl(e?.message ?? String(err));
  if (e?.code && UNREACHABLE_CODES.has(e.code)) {
    return new DoctorError('UNREACHABLE', `cannot reach Postgres at ${target} (${e.code}): check --database-url / DATABASE_URL and that the server is up`, { cause: err });
  }
  if (/timeout expired|Connection terminated/i.test(msg)) {
    return new DoctorError('UNREACHABLE', `Postgres at ${target} did not answer (${msg}): check the host, port and firewall`, { cause: err });
  }
  if (e?.code === '28P01' || e?.code === '28000') {
    return new DoctorError('AUTH_FAILED', `Postgres at ${target} refused the login (${e.code}: ${msg}): check the user and password in the database URL`, { cause: err });
  }
  if (e?.code === '3D000') {
    return new DoctorError('UNREACHABLE', `Postgres at ${target}: ${msg}: check the database name in the URL`, { cause: err });
  }
  if (e?.code === '57P01' || e?.code === '57P03' || e?.code === '53300') {
    return new DoctorError('UNREACHABLE', `Postgres at ${target} refused us (${e.code}: ${msg})`, { cause: err });
  }
  return err;
}

/**
 * The two things Db needs from a driver session. node-postgres' Client is one; an embedded engine
 * (PGlite's query/close) can be adapted to it without touching any operation.
 */
export interface SqlSession {
  query<R extends QueryResultRow>(text: string, params?: unknown[]): Promise<{ rows: R[] }>;
  /** Optional: runs `text` as the session's prepared statement `name` (parsed once, its plan cached by the server). */
  queryPrepared?<R extends QueryResultRow>(name: string, text: string, params: unknown[]): Promise<{ rows: R[] }>;
  end(): Promise<void>;
}

/** node-postgres' Client as a SqlSession; prepared statements are its named queries. */
function pgSession(client: Client): SqlSession {
  return {
    query: <R extends QueryResultRow>(text: string, params?: unknown[]) => client.query<R>(text, params),
    queryPrepared: <R extends QueryResultRow>(name: string, text: string, params: unknown[]) => client.query<R>({ name, text, values: params }),
    end: () => client.end(),
  };
}

/** `postgres`: a server over node-postgres; `embedded`: PGlite in this process (src/postgres/embedded.ts). */
export type Engine = 'postgres' | 'embedded';

export class Db {
  readonly ids: SqlIdentifiers;
  readonly target: string;

  constructor(
    readonly client: SqlSession,
    readonly config: PgConfig,
    /** What runs the SQL: a server, or the embedded engine (one connection, no CONCURRENTLY). */
    readonly engine: Engine = 'postgres',
  ) {
    this.ids = { schema: config.schema, state: config.stateSchema };
    this.target = engine === 'embedded' ? config.url : describeTarget(config.url);
  }

  /**
   * Runs sql/queries/<name>.sql with positional parameters. `prepare`: as a prepared statement, for
   * a statement run many times whose plan does not depend on its parameters' values (the server
   * may switch to a generic plan after five runs).
   */
  async query<R extends QueryResultRow = Record<string, any>>(name: string, params: unknown[] = [], opts: { prepare?: boolean } = {}): Promise<R[]> {
    return this.run<R>(sql(name, this.ids), params, opts.prepare ? `digest-doctor:${name}` : undefined);
  }

  /** Runs literal text; for statements that must be built (DDL) or come from sql/migrations. */
  async raw<R extends QueryResultRow = Record<string, any>>(text: string, params: unknown[] = []): Promise<R[]> {
    return this.run<R>(text, params);
  }

  private async run<R extends QueryResultRow>(text: string, params: unknown[], prepareAs?: string): Promise<R[]> {
    try {
      const res = prepareAs && this.client.queryPrepared ? await this.client.queryPrepared<R>(prepareAs, text, params) : await this.client.query<R>(text, params);
      return res.rows;
    } catch (err) {
      throw classifyPgError(err, this.target);
    }
  }

  /** A read-only, repeatable-read transaction: every read sees one snapshot. */
  async readOnly<T>(fn: (db: Db) => Promise<T>): Promise<T> {
    return this.transaction(fn, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  }

  async transaction<T>(fn: (db: Db) => Promise<T>, begin = 'BEGIN'): Promise<T> {
    await this.raw(begin);
    try {
      const out = await fn(this);
      await this.raw('COMMIT');
      return out;
    } catch (err) {
      await this.client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  /** The server's process id for this session (for pg_cancel_backend from another connection). */
  async backendPid(): Promise<number> {
    const [row] = await this.raw<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    return row!.pid;
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => undefined);
  }
}

/**
 * The session settings every value the tool reads depends on, fixed on every session it opens
 * whatever the server, database or role defaults are (`ALTER DATABASE ... SET datestyle` and the like):
 * - DateStyle ISO: `date` comes back as YYYY-MM-DD and timestamptz in the form node-postgres parses
 *   (under German or SQL it parses to null, under `SQL, DMY` to the wrong day);
 * - IntervalStyle postgres: the interval form node-postgres parses;
 * - TimeZone UTC: timestamptz text carries +00, and `date` casts of instants are UTC;
 * - extra_float_digits 3: floats exact (the default, 1, is exact too; a negative one rounds).
 * search_path is left as the role has it (the service's own triggers may rely on it): every
 * statement of the tool names its tables with their schema, and built-in functions and operators
 * resolve in pg_catalog, which is searched first unless a search_path lists it explicitly later.
 * Source: PostgreSQL 15 manual, 20.11.2 "Locale and Formatting" and 8.5.2 "Date/Time Output".
 */
export const SESSION_SETTINGS: Readonly<Record<string, string>> = {
  DateStyle: 'ISO, MDY',
  IntervalStyle: 'postgres',
  TimeZone: 'UTC',
  extra_float_digits: '3',
};

/**
 * Fixes SESSION_SETTINGS on a freshly opened session: one statement (`set_config(..., false)`,
 * session-level), sent after the connect rather than as startup parameters because a pooler such as
 * pgbouncer refuses startup parameters it does not know (unless `ignore_startup_parameters` lists
 * them). DateStyle, IntervalStyle and TimeZone are reported to the client (GUC_REPORT), so
 * pgbouncer, even in transaction mode, replays them on every server connection it hands us.
 * Throws what the driver throws.
 */
export async function fixSessionSettings(session: Pick<SqlSession, 'query'>): Promise<void> {
  const names = Object.keys(SESSION_SETTINGS);
  const calls = names.map((_, i) => `pg_catalog.set_config($${2 * i + 1}, $${2 * i + 2}, false)`).join(', ');
  await session.query(`SELECT ${calls}`, names.flatMap((n) => [n, SESSION_SETTINGS[n]!]));
}

const DATE_OID = 1082;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;

/** `date` text as the server sends it under DateStyle ISO; anything else means the session lost its settings. */
function parseIsoDate(v: string): string {
  if (!ISO_DATE.test(v)) throw new DoctorError('INTERNAL', `Postgres sent the date "${v}" in another DateStyle than ISO: the session lost the settings digest-doctor fixes at connect (is a pooler resetting them?)`);
  return v;
}
const INT8_OID = 20;

/** Opens one session: application_name digest-doctor, a statement_timeout, a lock_timeout if given, and SESSION_SETTINGS. */
export async function connectPg(config: PgConfig): Promise<Db> {
  const { default: pg } = await import('pg');
  const target = describeTarget(config.url);
  const client = new pg.Client({
    connectionString: config.url,
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
        // `date` stays 'YYYY-MM-DD' (pg would make a local-midnight Date); bigint counts become numbers.
        if (oid === DATE_OID) return parseIsoDate;
        if (oid === INT8_OID) return (v: string) => Number(v);
        return pg.types.getTypeParser(oid, format as 'text');
      }) as typeof pg.types.getTypeParser,
    },
    application_name: config.applicationName ?? 'digest-doctor',
    statement_timeout: config.statementTimeoutMs,
    lock_timeout: config.lockTimeoutMs,
    connectionTimeoutMillis: config.connectTimeoutMs ?? 10_000,
  });
  // An idle client that loses its server emits 'error'; without a listener node would crash.
  client.on('error', () => undefined);
  try {
    await client.connect();
    await fixSessionSettings(client);
  } catch (err) {
    await client.end().catch(() => undefined);
    throw classifyPgError(err, target);
  }
  return new Db(pgSession(client), config);
}
