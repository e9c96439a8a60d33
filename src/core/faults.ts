// Driver errors mapped, in one place, to the documented exit codes: by SQLSTATE class for Postgres
// (https://www.postgresql.org/docs/current/errcodes-appendix.html), by reply prefix for Redis
// (https://redis.io/docs/latest/develop/reference/protocol-spec/#simple-errors), and by error kind
// (socket error codes, TLS failures, the drivers' own timeouts) for both. Pure: no I/O.
//
//   3  UNREACHABLE, AUTH_FAILED, TLS_FAILED, CONNECTION_LOST  the server cannot be reached, refused the
//      login, the TLS handshake failed, or the connection stopped carrying traffic / was cut mid-run
//   4  PERMISSION_DENIED, TIMEOUT, BUSY, REFUSED  a privilege is missing, a lock or statement timeout
//      ran out, the server is busy or read-only
//   2  BAD_INPUT  a part of the URL the server rejects (a Redis database index out of range)
// Anything else is not classified (undefined): it is a bug of ours, exit 70.
import { DoctorError } from '../errors.js';
import { redactUrl } from './redact.js';

interface DriverError {
  code?: unknown;
  message?: unknown;
  name?: unknown;
  severity?: unknown;
}

const oneLine = (s: string): string => s.replace(/\s+/g, ' ').trim();
const messageOf = (err: unknown): string => oneLine(redactUrl(String((err as DriverError)?.message ?? err)));
const codeOf = (err: unknown): string | undefined => {
  const c = (err as DriverError)?.code;
  return typeof c === 'string' ? c : undefined;
};

/** Socket errors that mean the server could not be reached at all. */
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'EADDRNOTAVAIL']);
/** Socket errors that mean an established connection was cut. */
const CUT_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ERR_STREAM_DESTROYED', 'ERR_SOCKET_CLOSED']);
/** Node's TLS verification failures (tls.TLSSocket authorizationError codes) and handshake errors. */
const TLS_MESSAGE = /self[- ]signed certificate|unable to (?:verify|get local issuer)|certificate (?:has expired|is not yet valid)|Hostname\/IP does not match|wrong version number|tlsv1 alert|ssl3_get_record|packet length too long|EPROTO|handshake/i;

/**
 * The SQLSTATE of a Postgres server error, also when it arrives classified (a DoctorError whose
 * `cause` is the driver's error: Db classifies every failure, so `err.code` is then 'TIMEOUT',
 * 'BUSY', ... and not the SQLSTATE a retry rule needs). Null when there is none.
 */
export function sqlstateOf(err: unknown): string | null {
  const e = err instanceof DoctorError ? (err.cause as DriverError | undefined) : (err as DriverError | undefined);
  return isPgServerError(e) ? (e!.code as string) : null;
}

/** The server's own message of a Postgres error, also when it arrives classified (see sqlstateOf); else the error's message. */
export function serverMessageOf(err: unknown): string {
  const e = err instanceof DoctorError && isPgServerError(err.cause) ? err.cause : err;
  return String((e as DriverError)?.message ?? e);
}

/** A node-postgres DatabaseError (a server error with a SQLSTATE) rather than a socket or driver error. */
export function isPgServerError(err: unknown): boolean {
  const e = err as DriverError;
  return typeof e?.severity === 'string' && typeof e?.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code);
}

/**
 * A Postgres driver error as a DoctorError with one line naming cause and fix, or undefined when it
 * is none of the documented faults (then it is a bug of ours). `target` is host:port/db (no secret).
 * Input: what node-postgres throws (DatabaseError with `code` = SQLSTATE; socket errors with `code`
 * = errno name; its own Errors 'timeout expired', 'Query read timeout', 'Connection terminated...').
 */
export function classifyPgFault(err: unknown, target: string): DoctorError | undefined {
  if (err instanceof DoctorError) return err;
  const code = codeOf(err);
  const msg = messageOf(err);
  const make = (c: ConstructorParameters<typeof DoctorError>[0], text: string) => new DoctorError(c, text, { cause: err });
  if (isPgServerError(err)) {
    const sqlstate = code!;
    const cls = sqlstate.slice(0, 2);
    if (sqlstate === '42501') return make('PERMISSION_DENIED', `Postgres at ${target} refused: ${msg} (42501): grant the role the privilege it names (README, "Dry runs, confirmation and permissions"), or use a role that has it`);
    if (sqlstate === '55P03') return make('TIMEOUT', `gave up waiting for a lock another session holds (55P03: ${msg}): find the holder in pg_locks / pg_stat_activity, or raise --lock-timeout`);
    if (sqlstate === '57014') {
      if (/statement timeout/i.test(msg)) return make('TIMEOUT', `a statement ran longer than the statement timeout (57014: ${msg}): raise --statement-timeout (e.g. --statement-timeout 5m) or narrow the command`);
      return make('BUSY', `a statement was cancelled by the server or another session (57014: ${msg}): rerun when nobody cancels it`);
    }
    if (sqlstate === '25006') return make('REFUSED', `Postgres at ${target} is read-only (25006: ${msg}): point --database-url at the primary, or turn default_transaction_read_only off`);
    if (sqlstate === '25P03') return make('CONNECTION_LOST', `Postgres at ${target} ended the session (25P03: ${msg}): rerun; raise the server's idle_in_transaction_session_timeout if it keeps happening`);
    if (sqlstate === '3D000') return make('UNREACHABLE', `Postgres at ${target}: ${msg} (3D000): check the database name in --database-url / DATABASE_URL`);
    if (cls === '28') return make('AUTH_FAILED', `Postgres at ${target} refused the login (${sqlstate}: ${msg}): check the user and password in --database-url / DATABASE_URL and pg_hba.conf`);
    if (cls === '08') return make('CONNECTION_LOST', `the connection to Postgres at ${target} failed (${sqlstate}: ${msg}): check the server and the network, then rerun`);
    if (sqlstate === '57P01' || sqlstate === '57P02') return make('CONNECTION_LOST', `Postgres at ${target} ended our session (${sqlstate}: ${msg}): the server shut down or an administrator terminated it; rerun when it is back`);
    if (sqlstate === '57P03') return make('UNREACHABLE', `Postgres at ${target} is not accepting connections (57P03: ${msg}): retry when it has started`);
    if (sqlstate === '57P05') return make('CONNECTION_LOST', `Postgres at ${target} ended our idle session (57P05: ${msg}): rerun`);
    if (cls === '53') return make('BUSY', `Postgres at ${target} is out of resources (${sqlstate}: ${msg}): retry later, or free connections / disk on the server`);
    if (cls === '40') return make('BUSY', `a transaction conflicted with another session (${sqlstate}: ${msg}): rerun`);
    return undefined;
  }
  if (code && UNREACHABLE_CODES.has(code)) return make('UNREACHABLE', `cannot reach Postgres at ${target} (${code}): check --database-url / DATABASE_URL and that the server is up`);
  if (code && CUT_CODES.has(code)) return make('CONNECTION_LOST', `the connection to Postgres at ${target} was cut (${code}): check the server and the network, then rerun`);
  if (/^timeout expired$/i.test(msg) || /Connection terminated due to connection timeout/i.test(msg)) {
    return make('UNREACHABLE', `Postgres at ${target} did not answer within the connect timeout: check the host, port and firewall, or raise --connect-timeout`);
  }
  if (/Query read timeout/i.test(msg)) {
    return make('CONNECTION_LOST', `Postgres at ${target} stopped answering (no reply within --query-timeout): check the server and the network, then rerun; raise --query-timeout for a slower server`);
  }
  if (/Connection terminated|not queryable|Client was closed|connection .*(?:lost|closed)/i.test(msg)) {
    return make('CONNECTION_LOST', `the connection to Postgres at ${target} was lost (${msg}): check the server and the network, then rerun`);
  }
  if (/^SASL: SCRAM-SERVER-FIRST-MESSAGE: client password must be a (?:non-empty )?string/.test(msg)) {
    // node-postgres' own error when the server asks for SCRAM and no password was found (lib/crypto/sasl.js)
    return make('AUTH_FAILED', `Postgres at ${target} asks for a password and none was given: export PGPASSWORD, add the password to ~/.pgpass, or put it in --database-url / DATABASE_URL`);
  }
  if (/does not support SSL/i.test(msg)) {
    return make('TLS_FAILED', `Postgres at ${target} does not offer TLS, but the URL asks for it (sslmode): enable ssl on the server, or use sslmode=disable on a trusted network`);
  }
  if ((code && /CERT|TLS|SSL/.test(code)) || TLS_MESSAGE.test(msg)) {
    return make('TLS_FAILED', `TLS to Postgres at ${target} failed (${code ?? msg}): give the server's CA with sslrootcert=<file>, or sslmode=no-verify to encrypt without verifying`);
  }
  return undefined;
}

/**
 * A Redis driver error as a DoctorError with one line naming cause and fix, or undefined (a bug of
 * ours). Input: what ioredis throws (ReplyError with the server's error line as message; its own
 * Errors 'Command timed out', 'Connection is closed.', MaxRetriesPerRequestError, ClusterAllFailedError;
 * socket errors with `code`). `target` is host:port (no secret).
 */
/** The Redis version that introduced each command the tool may send (Redis command reference, "Available since"). */
const REDIS_COMMAND_SINCE: Readonly<Record<string, string>> = { XINFO: '5.0', XRANGE: '5.0', XPENDING: '5.0', XADD: '5.0', XAUTOCLAIM: '6.2', ACL: '6.0' };

export function classifyRedisFault(err: unknown, target: string): DoctorError | undefined {
  if (err instanceof DoctorError) return err;
  const code = codeOf(err);
  const msg = messageOf(err);
  const make = (c: ConstructorParameters<typeof DoctorError>[0], text: string) => new DoctorError(c, text, { cause: err });
  if (/^(?:WRONGPASS|NOAUTH)|invalid password|invalid username|AUTH .*without any password|Client sent AUTH/i.test(msg)) {
    return make('AUTH_FAILED', `Redis at ${target} refused us (${msg}): check the user and password in --redis-url / REDIS_URL`);
  }
  if (/^NOPERM|can't run this command or subcommand/i.test(msg)) return make('PERMISSION_DENIED', `Redis at ${target} refused a command (${msg}): give the ACL user the commands README lists under "Redis permissions", or use another user`);
  const unknown = /^ERR unknown command [`']([^`']+)[`']/i.exec(msg);
  if (unknown) {
    const cmd = unknown[1]!.toUpperCase();
    return make('REFUSED', `Redis at ${target} has no ${cmd} command: digest-doctor needs Redis ${REDIS_COMMAND_SINCE[cmd] ?? '5.0'} or later for it`);
  }
  if (/DB index is out of range|invalid DB index/i.test(msg)) return make('BAD_INPUT', `Redis at ${target} has no such database (${msg}): fix the /<db> of the Redis URL (the server's "databases" setting bounds it)`);
  if (/^READONLY/i.test(msg)) return make('REFUSED', `Redis at ${target} is a read-only replica (${msg}): point --redis-url at the master`);
  if (/^(?:LOADING|BUSY|TRYAGAIN|MASTERDOWN)/i.test(msg)) return make('BUSY', `Redis at ${target} is busy (${msg}): retry when it is ready`);
  if (/^OOM/i.test(msg)) return make('REFUSED', `Redis at ${target} is out of memory (${msg}): free memory or raise maxmemory, then rerun`);
  if (/^CLUSTERDOWN/i.test(msg)) return make('UNREACHABLE', `the Redis cluster at ${target} is down (${msg}): retry when every slot is served`);
  if (/Command timed out/i.test(msg)) {
    return make('CONNECTION_LOST', `Redis at ${target} stopped answering (no reply within --redis-command-timeout): check the server and the network, then rerun`);
  }
  if (code && UNREACHABLE_CODES.has(code)) return make('UNREACHABLE', `cannot reach Redis at ${target} (${code}): check --redis-url / REDIS_URL and that the server is up`);
  if (/did not answer within|Failed to refresh slots cache|None of startup nodes|ClusterAllFailed/i.test(msg)) {
    return make('UNREACHABLE', `cannot reach Redis at ${target} (${msg}): check --redis-url / REDIS_URL and that the server is up, or raise --connect-timeout`);
  }
  if ((code && /CERT|TLS|SSL/.test(code)) || TLS_MESSAGE.test(msg)) {
    return make('TLS_FAILED', `TLS to Redis at ${target} failed (${code ?? msg}): use redis:// for a server without TLS, or check its certificate`);
  }
  if ((code && CUT_CODES.has(code)) || /Connection is closed|Stream isn't writeable|Reached the max retries per request|MaxRetriesPerRequest|socket (?:closed|hang up)|connection (?:lost|closed)/i.test(msg)) {
    return make('CONNECTION_LOST', `the connection to Redis at ${target} was lost (${code ?? msg}): check the server and the network, then rerun`);
  }
  return undefined;
}
