// Global options, read once from commander (flags > environment > defaults), and the connections
// built from them. Commands call openDb / openRedis; nothing else reads process.env for these.
import type { Command } from 'commander';
import { DEFAULT_TIME_ZONE } from '../core/contract.js';
import { assertTimeZone } from '../core/keys.js';
import { secretsOf } from '../core/redact.js';
import { badInput } from '../errors.js';
import { connectPg, normalizePgUrl, type Db } from '../postgres/db.js';
import { assertDigestTable } from '../postgres/table.js';
import { connectRedis, describeRedis, type RedisClient } from '../redis/connect.js';
import { assertSchemaName, parseDuration } from '../core/validate.js';

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
  timeZone: string;
  json: boolean;
  color: boolean;
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
    tz: string;
    json?: boolean;
    color?: boolean;
  }>();
  const timeZone = o.tz || DEFAULT_TIME_ZONE;
  assertTimeZone(timeZone);
  const databaseUrl = o.databaseUrl ? normalizePgUrl(o.databaseUrl) : undefined;
  return {
    databaseUrl,
    schema: assertSchemaName(o.schema, '--schema'),
    stateSchema: assertSchemaName(o.stateSchema, '--state-schema'),
    redisUrl: o.redisUrl || undefined,
    redisExplicit: program.getOptionValueSource('redisUrl') === 'cli',
    redisCluster: Boolean(o.redisCluster),
    keyPrefix: o.keyPrefix || undefined,
    statementTimeoutMs: parseDuration(o.statementTimeout, '--statement-timeout'),
    timeZone,
    json: Boolean(o.json),
    color: colorEnabled(o.color),
    secrets: secretsOf([o.databaseUrl, o.redisUrl]),
  };
}

/** Connects to Postgres and checks that digest_history matches the contract (unless told not to). */
export async function openDb(g: GlobalOptions, opts: { checkTable?: boolean; applicationName?: string; lockTimeoutMs?: number } = {}): Promise<Db> {
  if (!g.databaseUrl) throw badInput('no database configured: pass --database-url or set DATABASE_URL (postgresql://user:password@host:5432/dbname)');
  const db = await connectPg({
    url: g.databaseUrl,
    schema: g.schema,
    stateSchema: g.stateSchema,
    statementTimeoutMs: g.statementTimeoutMs,
    lockTimeoutMs: opts.lockTimeoutMs,
    applicationName: opts.applicationName,
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
    if (g.redisExplicit) throw err;
    return { skipped: `Redis at ${describeRedis(g.redisUrl)} unreachable: ${(err as Error).message}` };
  }
}

/** For commands that need Redis. */
export async function openRedis(g: GlobalOptions): Promise<RedisClient> {
  if (!g.redisUrl) throw badInput('no Redis configured: pass --redis-url or set REDIS_URL (redis://host:6379)');
  return connectRedis({ url: g.redisUrl, cluster: g.redisCluster, keyPrefix: g.keyPrefix });
}
