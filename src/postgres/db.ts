// The one module that owns the `pg` import. Everything else talks to Postgres through Db.
import type { Client, QueryResultRow } from 'pg';
import { DoctorError, badInput } from '../errors.js';
import { classifyPgFault, isPgServerError } from '../core/faults.js';
import { redactUrl } from '../core/redact.js';
import { unparsableReason } from '../core/url.js';
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
  /** Bound on connecting (TCP, TLS, startup, authentication). Default 10 s. */
  connectTimeoutMs?: number;
  /**
   * Client-side bound on each statement's reply (pg `query_timeout`), for a server or network that
   * stops answering; 0 = none. Default: statementTimeoutMs + 10 s (none when statementTimeoutMs is 0).
   * TCP keepalive (probes after 10 s idle) covers a session whose statements may run long.
   */
  queryTimeoutMs?: number;
}

/** Added to the statement timeout for the client-side bound: the server's own timeout fires first. */
export const QUERY_TIMEOUT_GRACE_MS = 10_000;
/** Default bound on connecting to Postgres. */
export const DEFAULT_PG_CONNECT_TIMEOUT_MS = 10_000;
/** Idle time before the first TCP keepalive probe on every Postgres session. */
export const PG_KEEPALIVE_DELAY_MS = 10_000;
/** How long closing a session may take before its socket is destroyed. */
const CLOSE_TIMEOUT_MS = 1_000;

const DRIVER_SUFFIX = /^(postgres(?:ql)?)\+[a-z0-9_]+:\/\//i;

/**
 * Query parameters of a Postgres URL the tool honours (node-postgres reads them from the URL); any
 * other is refused rather than silently ignored. `application_name` is refused too: every session is
 * named digest-doctor.
 */
const PG_URL_PARAMS = new Set(['sslmode', 'ssl', 'sslrootcert', 'sslcert', 'sslkey', 'sslnegotiation', 'uselibpqcompat', 'user', 'password', 'host', 'port', 'options']);
/** sslmode values and what node-postgres 8 does with them (prefer/allow would need a plain-text fallback it does not have). */
const SSL_MODES = new Set(['disable', 'require', 'verify-ca', 'verify-full', 'no-verify']);

/**
 * Strips a SQLAlchemy driver suffix (`postgresql+asyncpg://`) and checks the URL: it parses, the
 * scheme is postgres, the port is 1-65535, every query parameter is one the tool honours and sslmode
 * one it can honour. BAD_INPUT (exit 2) otherwise, before anything is read or written.
 */
export function normalizePgUrl(raw: string): string {
  const url = raw.trim().replace(DRIVER_SUFFIX, 'postgresql://');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    const why = unparsableReason(url);
    throw badInput(`database URL "${redactUrl(url)}": ${why}: expected postgresql://user:password@host:5432/dbname`);
  }
  if (parsed.protocol !== 'postgresql:' && parsed.protocol !== 'postgres:') {
    throw badInput(`database URL scheme "${parsed.protocol}" is not postgres: expected postgresql://user:password@host:5432/dbname`);
  }
  if (parsed.port === '0') throw badInput(`database URL "${redactUrl(url)}": port 0 is not a port: give the server's port (1-65535), e.g. :5432`);
  if (parsed.hash) throw badInput(`database URL "${redactUrl(url)}" has a fragment (#...): remove it, or percent-encode a # in the password as %23`);
  const unknown = [...new Set(parsed.searchParams.keys())].filter((k) => !PG_URL_PARAMS.has(k));
  if (unknown.length) {
    throw badInput(
      `database URL parameter${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')} not supported: remove ${unknown.length > 1 ? 'them' : 'it'} (digest-doctor honours ${[...PG_URL_PARAMS].join(', ')}${unknown.includes('connect_timeout') ? '; use --connect-timeout' : ''}${unknown.includes('application_name') ? '; sessions are always named digest-doctor' : ''})`,
    );
  }
  const sslmode = parsed.searchParams.get('sslmode');
  if (sslmode !== null && !SSL_MODES.has(sslmode)) {
    throw badInput(`database URL sslmode=${sslmode} cannot be honoured: use disable, require (the certificate is verified, as verify-full), verify-full, or no-verify (encrypted, not verified)`);
  }
  return url;
}

/**
 * The URL handed to node-postgres: `sslmode=require` and `verify-ca` are what node-postgres 8 already
 * treats them as, `verify-full`, spelled so (it prints a nine-line warning for the other spellings).
 */
function driverUrl(url: string): string {
  const parsed = new URL(url);
  const mode = parsed.searchParams.get('sslmode');
  if ((mode === 'require' || mode === 'verify-ca') && parsed.searchParams.get('uselibpqcompat') !== 'true') {
    parsed.searchParams.set('sslmode', 'verify-full');
    return parsed.toString();
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

/** Turns a driver error into a DoctorError where it is a documented fault (src/core/faults.ts); anything else is returned as is. */
export function classifyPgError(err: unknown, target: string): unknown {
  return classifyPgFault(err, target) ?? err;
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
  /** Optional: drops the connection at once (no goodbye to a server that stopped answering). */
  destroy?(): void;
  /** Optional: says goodbye as end() does, resolving once the goodbye is written to the socket, not when the server has closed it. */
  endSent?(): Promise<void>;
}

/** node-postgres' Client as a SqlSession; prepared statements are its named queries. */
function pgSession(client: Client): SqlSession {
  return {
    query: <R extends QueryResultRow>(text: string, params?: unknown[]) => client.query<R>(text, params),
    queryPrepared: <R extends QueryResultRow>(name: string, text: string, params: unknown[]) => client.query<R>({ name, text, values: params }),
    end: () => client.end(),
    destroy: () => streamOf(client)?.destroy(),
    endSent: () =>
      new Promise<void>((resolve) => {
        const stream = streamOf(client);
        // end() writes Terminate, then ends the socket's writing side: 'finish' once both are flushed
        client.end().catch(() => undefined);
        if (!stream || stream.writableFinished || stream.destroyed) return resolve();
        stream.once('finish', resolve);
        stream.once('close', resolve);
      }),
  };
}

/** The socket under a node-postgres Client (not part of its typed API). */
const streamOf = (client: Client) => (client as unknown as { connection?: { stream?: import('node:net').Socket } }).connection?.stream;

/** `postgres`: a server over node-postgres; `embedded`: PGlite in this process (src/postgres/embedded.ts). */
export type Engine = 'postgres' | 'embedded';

export class Db {
  readonly ids: SqlIdentifiers;
  readonly target: string;
  /** Set once the connection is lost: every later statement fails at once with this error. */
  private lost: DoctorError | undefined;
  /**
   * Whether close() waits for the server to close the connection (the default), or only until the
   * goodbye is written (false: for a process that exits next, as the CLI's binary does, sparing the
   * server's backend shutdown; the session ends on the server all the same).
   */
  awaitServerClose = true;

  constructor(
    readonly client: SqlSession,
    readonly config: PgConfig,
    /** What runs the SQL: a server, or the embedded engine (one connection, no CONCURRENTLY). */
    readonly engine: Engine = 'postgres',
    /** How `reopen` opens a new session like this one (default: connectPg with the same config). */
    private readonly opener?: () => Promise<Db>,
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
    if (this.lost) throw this.lost;
    try {
      const res = prepareAs && this.client.queryPrepared ? await this.client.queryPrepared<R>(prepareAs, text, params) : await this.client.query<R>(text, params);
      return res.rows;
    } catch (err) {
      // A server's answer (an error with a SQLSTATE) is thrown as the driver gave it: the operations
      // decide on its code (retry a lock timeout, a 42P10...), and the CLI classifies what reaches it.
      if (isPgServerError(err)) throw err;
      const classified = classifyPgError(err, this.target);
      if (classified instanceof DoctorError && (classified.code === 'CONNECTION_LOST' || classified.code === 'UNREACHABLE')) {
        // A session that timed out client-side still has its query queued in the driver: drop it.
        this.lost = classified;
        this.client.destroy?.();
      }
      throw classified;
    }
  }

  /** The connection was lost (a statement got no reply, or the socket was cut): nothing more can run on it. */
  get connectionLost(): boolean {
    return this.lost !== undefined;
  }

  /** A new session with the same settings (to record what happened after this one was lost). */
  async reopen(): Promise<Db> {
    return this.opener ? this.opener() : connectPg(this.config);
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
      if (!this.lost) await this.client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  /** The server's process id for this session (for pg_cancel_backend from another connection). */
  async backendPid(): Promise<number> {
    const [row] = await this.raw<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    return row!.pid;
  }

  /**
   * Ends the session; bounded: a server that does not answer the goodbye has its socket destroyed
   * after 1 s. Resolves when the server has closed the connection, or (awaitServerClose false) once
   * the goodbye is written.
   */
  async close(): Promise<void> {
    if (this.lost) {
      this.client.destroy?.();
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const ending = !this.awaitServerClose && this.client.endSent ? this.client.endSent() : this.client.end();
    const ended = await Promise.race([
      ending.then(
        () => true,
        () => true,
      ),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), CLOSE_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
    if (!ended) this.client.destroy?.();
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
 * `extra`: more settings in the same statement (connectPg's statement_timeout and lock_timeout, in ms).
 * Throws what the driver throws.
 */
export async function fixSessionSettings(session: Pick<SqlSession, 'query'>, extra: Readonly<Record<string, string>> = {}): Promise<void> {
  const settings = { ...SESSION_SETTINGS, ...extra };
  const names = Object.keys(settings);
  const calls = names.map((_, i) => `pg_catalog.set_config($${2 * i + 1}, $${2 * i + 2}, false)`).join(', ');
  await session.query(`SELECT ${calls}`, names.flatMap((n) => [n, settings[n]!]));
}

const DATE_OID = 1082;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;

/** `date` text as the server sends it under DateStyle ISO; anything else means the session lost its settings. */
function parseIsoDate(v: string): string {
  if (!ISO_DATE.test(v)) throw new DoctorError('INTERNAL', `Postgres sent the date "${v}" in another DateStyle than ISO: the session lost the settings digest-doctor fixes at connect (is a pooler resetting them?)`);
  return v;
}
const INT8_OID = 20;

/**
 * Opens one session: application_name digest-doctor, a statement_timeout, a lock_timeout if given,
 * SESSION_SETTINGS, bounded connect (connectTimeoutMs) and replies (queryTimeoutMs), TCP keepalive.
 * Errors are classified (src/core/faults.ts): exit 3 for unreachable, login refused, TLS.
 */
export async function connectPg(config: PgConfig): Promise<Db> {
  const { default: pg } = await import('pg');
  const target = describeTarget(config.url);
  const queryTimeoutMs = config.queryTimeoutMs ?? (config.statementTimeoutMs > 0 ? config.statementTimeoutMs + QUERY_TIMEOUT_GRACE_MS : 0);
  const client = new pg.Client({
    connectionString: driverUrl(config.url),
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
        // `date` stays 'YYYY-MM-DD' (pg would make a local-midnight Date); bigint counts become numbers.
        if (oid === DATE_OID) return parseIsoDate;
        if (oid === INT8_OID) return (v: string) => Number(v);
        return pg.types.getTypeParser(oid, format as 'text');
      }) as typeof pg.types.getTypeParser,
    },
    application_name: config.applicationName ?? 'digest-doctor',
    connectionTimeoutMillis: config.connectTimeoutMs ?? DEFAULT_PG_CONNECT_TIMEOUT_MS,
    query_timeout: queryTimeoutMs > 0 ? queryTimeoutMs : undefined,
    keepAlive: true,
    keepAliveInitialDelayMillis: PG_KEEPALIVE_DELAY_MS,
  });
  // An idle client that loses its server emits 'error'; without a listener node would crash.
  client.on('error', () => undefined);
  try {
    await client.connect();
    // the timeouts too, in the same statement rather than as startup parameters (a pooler refuses those)
    const timeouts: Record<string, string> = { statement_timeout: String(config.statementTimeoutMs) };
    if (config.lockTimeoutMs !== undefined) timeouts.lock_timeout = String(config.lockTimeoutMs);
    await fixSessionSettings(client, timeouts);
  } catch (err) {
    await client.end().catch(() => undefined);
    throw classifyPgError(err, target);
  }
  return new Db(pgSession(client), config);
}
