// Global options, read once from commander (flags > environment > defaults), and the connections
// built from them. Commands call openDb / openRedis; nothing else reads process.env for these.
import type { Command } from 'commander';
import { DEFAULT_TIME_ZONE } from '../core/contract.js';
import { assertTimeZone } from '../core/keys.js';
import { secretsOf } from '../core/redact.js';
import { DoctorError, badInput } from '../errors.js';
import { DEFAULT_DATA_DIR } from '../postgres/embedded-defaults.js';
import { writeErr } from './stderr.js';
import { exitsAfterCommand } from './exit.js';

/** Tried when no Redis URL is configured. */
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
/** How long the default Redis gets to answer before its parts are skipped. */
const DEFAULT_REDIS_PROBE_MS = 500;
import { connectPg, normalizePgUrl, type Db } from '../postgres/db.js';
import { assertDigestTable } from '../postgres/table.js';
import { connectRedis, describeRedis, parseRedisUrls, type RedisClient } from '../redis/connect.js';
import { assertSchemaName, parseDuration, shellQuote } from '../core/validate.js';

export interface GlobalOptions {
  databaseUrl?: string;
  /** Where the embedded database lives when no database URL is configured (--data-dir). */
  dataDir: string;
  /** The global flags given on the command line, pasteable (no password): for printed fix commands. */
  cliFlags: string[];
  schema: string;
  stateSchema: string;
  redisUrl?: string;
  /** The Redis URL came from --redis-url (not the environment): unreachable then means exit 3. */
  redisExplicit: boolean;
  redisCluster: boolean;
  keyPrefix?: string;
  statementTimeoutMs: number;
  /** Bound on connecting to Postgres and to Redis (--connect-timeout). */
  connectTimeoutMs: number;
  /** Client-side bound on each Postgres reply (--query-timeout); undefined = statement timeout + 10 s; 0 = none. */
  queryTimeoutMs?: number;
  /** Bound on each Redis reply (--redis-command-timeout); 0 = none. */
  redisCommandTimeoutMs: number;
  timeZone: string;
  json: boolean;
  color: boolean;
  /** --wide: tables unlimited in width, ids whole. */
  wide: boolean;
  /** Passwords of the configured URLs, masked in every message. */
  secrets: string[];
}

export function colorEnabled(flag: boolean | undefined, env: NodeJS.ProcessEnv = process.env, isTty = Boolean(process.stdout.isTTY)): boolean {
  if (flag === false) return false;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0') return true;
  return isTty && env.TERM !== 'dumb';
}

export function readGlobalOptions(program: Command): GlobalOptions {
  const o = program.opts<{
    databaseUrl?: string;
    schema: string;
    stateSchema: string;
    redisUrl?: string;
    redisCluster?: boolean;
    keyPrefix?: string;
    statementTimeout: string;
    connectTimeout: string;
    queryTimeout?: string;
    redisCommandTimeout: string;
    tz: string;
    json?: boolean;
    color?: boolean;
    wide?: boolean;
    dataDir?: string;
  }>();
  const timeZone = o.tz || DEFAULT_TIME_ZONE;
  // A zone given is checked before anything runs. The built-in default is a zone every Node with
  // ICU knows, and checking it would initialise ICU's date formatting before the first query for a
  // command that may never format a date (a sixth of inspect's start-up before its first query).
  if (timeZone !== DEFAULT_TIME_ZONE) assertTimeZone(timeZone);
  const databaseUrl = o.databaseUrl ? normalizePgUrl(o.databaseUrl) : undefined;
  // a Redis URL the tool cannot honour is exit 2 before anything is read, configured by flag or environment
  if (o.redisUrl) parseRedisUrls(o.redisUrl);
  const durationOrZero = (v: string, flag: string) => (/^0+(?:ms|s|m|h|d)?$/.test(v.trim()) ? 0 : parseDuration(v, flag));
  return {
    databaseUrl,
    dataDir: o.dataDir || DEFAULT_DATA_DIR,
    cliFlags: pasteableFlags(program),
    schema: assertSchemaName(o.schema, '--schema'),
    stateSchema: assertSchemaName(o.stateSchema, '--state-schema'),
    redisUrl: o.redisUrl || undefined,
    redisExplicit: program.getOptionValueSource('redisUrl') === 'cli',
    redisCluster: Boolean(o.redisCluster),
    keyPrefix: o.keyPrefix || undefined,
    statementTimeoutMs: parseDuration(o.statementTimeout, '--statement-timeout'),
    connectTimeoutMs: parseDuration(o.connectTimeout, '--connect-timeout'),
    queryTimeoutMs: o.queryTimeout === undefined ? undefined : durationOrZero(o.queryTimeout, '--query-timeout'),
    redisCommandTimeoutMs: durationOrZero(o.redisCommandTimeout, '--redis-command-timeout'),
    timeZone,
    json: Boolean(o.json),
    color: colorEnabled(o.color),
    wide: Boolean(o.wide),
    secrets: secretsOf([o.databaseUrl, o.redisUrl]),
  };
}

export { shellQuote };

/** `digest-doctor <args>` as a POSIX shell line to paste: every argument shell-quoted. */
export function commandLine(args: readonly string[]): string {
  return ['digest-doctor', ...args.map(shellQuote)].join(' ');
}

/**
 * `redis-cli` for this run's Redis, runnable as printed: `-u <url>` (the first node of a list; the
 * default URL when none was given) without its password (redis-cli reads REDISCLI_AUTH), `-c` for a
 * cluster, then `args` as given (quote keys with shellQuote; the key prefix is the caller's to add).
 */
export function redisCliCommand(g: Pick<GlobalOptions, 'redisUrl' | 'redisCluster'>, args: string): string {
  const url = g.redisUrl ?? DEFAULT_REDIS_URL;
  return `redis-cli ${g.redisCluster || url.includes(',') ? '-c ' : ''}-u ${shellQuote(stripPassword(url.split(',')[0]!))} ${args}`;
}

/**
 * The global options this run got on the command line (or from --config), as flags to paste into
 * a printed command: URLs lose their password (node-postgres reads PGPASSWORD, Redis REDISCLI_AUTH
 * is not read, so a Redis password shows as ***). Raw argv tokens (a value that starts with a dash
 * joined as `--flag=value`): pass them to main() as they are, print them with commandLine().
 */
export function pasteableFlags(program: Command): string[] {
  const out: string[] = [];
  for (const opt of program.options) {
    const key = opt.attributeName();
    const source = program.getOptionValueSource(key);
    if (source !== 'cli' && source !== 'config') continue;
    const value = program.getOptionValue(key);
    const flag = opt.long ?? opt.short;
    if (!flag || value === undefined || flag === '--json' || flag === '--version' || flag === '--wide') continue;
    if (typeof value === 'boolean') {
      if (opt.negate ? !value : value) out.push(flag);
      continue;
    }
    let text = String(value);
    if (key === 'databaseUrl' || key === 'redisUrl') text = text.split(',').map(stripPassword).join(',');
    if (text.startsWith('-')) out.push(`${flag}=${text}`);
    else out.push(flag, text);
  }
  return out;
}

function stripPassword(url: string): string {
  try {
    const u = new URL(url.trim());
    if (!u.password) return url.trim();
    u.password = '';
    return u.toString();
  } catch {
    return url;
  }
}

/** Whether this process has printed the embedded engine's notice (once: a process is one command, or the demo's steps). */
let noticed = false;

/**
 * Connects to Postgres (or, with no URL, the embedded engine) and checks that digest_history matches
 * the contract and that the role may read it and the service tables in `alsoReads` (unless told not to).
 */
export async function openDb(g: GlobalOptions, opts: { checkTable?: boolean; applicationName?: string; lockTimeoutMs?: number; queryTimeoutMs?: number; embedded?: boolean; alsoReads?: string[] } = {}): Promise<Db> {
  let db: Db;
  if (!g.databaseUrl) {
    if (opts.embedded === false) throw badInput('no database configured: pass --database-url or set DATABASE_URL (postgresql://user:password@host:5432/dbname)');
    // No URL: the embedded engine, loaded only now, with a notice every time a command runs (once per
    // process: migrate --apply opens a second connection for its build, and the demo runs its steps
    // in its own process, each of which printed the notice again)
    const { connectEmbedded, embeddedNotice } = await import('../postgres/embedded.js');
    if (!noticed) writeErr(embeddedNotice(g.dataDir));
    noticed = true;
    db = await connectEmbedded(g.dataDir, { schema: g.schema, stateSchema: g.stateSchema, statementTimeoutMs: g.statementTimeoutMs, lockTimeoutMs: opts.lockTimeoutMs, applicationName: opts.applicationName });
  } else {
    db = await connectPg({
      url: g.databaseUrl,
      schema: g.schema,
      stateSchema: g.stateSchema,
      statementTimeoutMs: g.statementTimeoutMs,
      lockTimeoutMs: opts.lockTimeoutMs,
      applicationName: opts.applicationName,
      connectTimeoutMs: g.connectTimeoutMs,
      queryTimeoutMs: opts.queryTimeoutMs ?? g.queryTimeoutMs,
    });
  }
  // the binary exits right after its command: its closes need not wait for the server's side
  db.awaitServerClose = !exitsAfterCommand();
  if (opts.checkTable !== false) {
    try {
      await assertDigestTable(db, { alsoReads: opts.alsoReads });
    } catch (err) {
      await db.close();
      throw err;
    }
  }
  return db;
}

export type RedisAvailability =
  | { client: RedisClient; skipped?: undefined }
  | { client?: undefined; skipped: string };

/**
 * For commands where Redis is optional: a client, or why the Redis part is skipped. Unreachable
 * is an error (exit 3) only when --redis-url was given on the command line.
 */
export async function openOptionalRedis(g: GlobalOptions): Promise<RedisAvailability> {
  if (!g.redisUrl) {
    // No URL: the local default is tried briefly; nothing there means the Redis parts are skipped.
    try {
      return { client: await connectDefaultRedis(g) };
    } catch {
      const skipped = `Redis not configured and nothing answers at ${describeRedis(DEFAULT_REDIS_URL)}: the Redis parts are skipped (pass --redis-url or set REDIS_URL)`;
      writeErr(`digest-doctor: ${skipped}`);
      return { skipped };
    }
  }
  try {
    return { client: await openRedis(g) };
  } catch (err) {
    // a URL naming something the server does not have is an error however it was given
    if (g.redisExplicit || !(err instanceof DoctorError) || err.exitCode !== 3) throw err;
    return { skipped: `Redis at ${describeRedis(g.redisUrl)} (REDIS_URL) unreachable, skipped: ${err.message}` };
  }
}

/** The local default Redis, tried when none is configured: DEFAULT_REDIS_PROBE_MS to connect and answer. */
function connectDefaultRedis(g: GlobalOptions): Promise<RedisClient> {
  return connectRedis({ url: DEFAULT_REDIS_URL, cluster: false, keyPrefix: g.keyPrefix, connectTimeoutMs: DEFAULT_REDIS_PROBE_MS, commandTimeoutMs: g.redisCommandTimeoutMs });
}

/** For commands that need Redis. */
export async function openRedis(g: GlobalOptions): Promise<RedisClient> {
  if (!g.redisUrl) {
    try {
      return await connectDefaultRedis(g);
    } catch (err) {
      throw new DoctorError('UNREACHABLE', `no Redis configured and nothing answers at ${describeRedis(DEFAULT_REDIS_URL)}: pass --redis-url or set REDIS_URL (redis://host:6379)`, { cause: err });
    }
  }
  return connectRedis({ url: g.redisUrl, cluster: g.redisCluster, keyPrefix: g.keyPrefix, connectTimeoutMs: g.connectTimeoutMs, commandTimeoutMs: g.redisCommandTimeoutMs });
}
