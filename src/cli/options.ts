// Global options, read once from commander (flags > environment > defaults), and the connections
// built from them. Commands call openDb / openRedis; nothing else reads process.env for these.
import type { Command } from 'commander';
import { DEFAULT_TIME_ZONE } from '../core/contract.js';
import { assertTimeZone } from '../core/keys.js';
import { secretsOf } from '../core/redact.js';
import { badInput } from '../errors.js';
import { connectPg, normalizePgUrl, type Db } from '../postgres/db.js';
import { assertDigestTable } from '../postgres/table.js';
import { connectRedis, describeRedis, parseRedisUrls, type RedisClient } from '../redis/connect.js';
import { DoctorError } from '../errors.js';
import { parseDuration } from '../core/validate.js';

export interface GlobalOptions {
  databaseUrl?: string;
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
  /** Passwords of the configured URLs, masked in every message. */
  secrets: string[];
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;

function checkIdent(value: string, flag: string): string {
  if (!IDENT.test(value)) throw badInput(`${flag} "${value}" is not a plain Postgres identifier: use letters, digits and _ (at most 63)`);
  return value;
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
  }>();
  const timeZone = o.tz || DEFAULT_TIME_ZONE;
  assertTimeZone(timeZone);
  const databaseUrl = o.databaseUrl ? normalizePgUrl(o.databaseUrl) : undefined;
  // a Redis URL the tool cannot honour is exit 2 before anything is read, configured by flag or environment
  if (o.redisUrl) parseRedisUrls(o.redisUrl);
  const durationOrZero = (v: string, flag: string) => (/^0+(?:ms|s|m|h|d)?$/.test(v.trim()) ? 0 : parseDuration(v, flag));
  return {
    databaseUrl,
    schema: checkIdent(o.schema, '--schema'),
    stateSchema: checkIdent(o.stateSchema, '--state-schema'),
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
    secrets: secretsOf([o.databaseUrl, o.redisUrl]),
  };
}

/** Connects to Postgres and checks that digest_history matches the contract (unless told not to). */
export async function openDb(g: GlobalOptions, opts: { checkTable?: boolean; applicationName?: string; lockTimeoutMs?: number; queryTimeoutMs?: number } = {}): Promise<Db> {
  if (!g.databaseUrl) throw badInput('no database configured: pass --database-url or set DATABASE_URL (postgresql://user:password@host:5432/dbname)');
  const db = await connectPg({
    url: g.databaseUrl,
    schema: g.schema,
    stateSchema: g.stateSchema,
    statementTimeoutMs: g.statementTimeoutMs,
    lockTimeoutMs: opts.lockTimeoutMs,
    applicationName: opts.applicationName,
    connectTimeoutMs: g.connectTimeoutMs,
    queryTimeoutMs: opts.queryTimeoutMs ?? g.queryTimeoutMs,
  });
  if (opts.checkTable !== false) {
    try {
      await assertDigestTable(db);
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
  if (!g.redisUrl) return { skipped: 'Redis not configured (pass --redis-url or set REDIS_URL)' };
  try {
    return { client: await openRedis(g) };
  } catch (err) {
    // a URL naming something the server does not have is an error however it was given
    if (g.redisExplicit || !(err instanceof DoctorError) || err.exitCode !== 3) throw err;
    return { skipped: `Redis at ${describeRedis(g.redisUrl)} (REDIS_URL) unreachable, skipped: ${err.message}` };
  }
}

/** For commands that need Redis. */
export async function openRedis(g: GlobalOptions): Promise<RedisClient> {
  if (!g.redisUrl) throw badInput('no Redis configured: pass --redis-url or set REDIS_URL (redis://host:6379)');
  return connectRedis({ url: g.redisUrl, cluster: g.redisCluster, keyPrefix: g.keyPrefix, connectTimeoutMs: g.connectTimeoutMs, commandTimeoutMs: g.redisCommandTimeoutMs });
}
