// The one module that owns the `ioredis` import. A standalone server or a cluster, behind one type.
import type { Cluster, Redis } from 'ioredis';
import { DoctorError, badInput } from '../errors.js';
import { redactUrl } from '../core/redact.js';

export type RedisClient = Redis | Cluster;

export interface RedisConfig {
  /** One URL, or a comma-separated list of cluster nodes. */
  url: string;
  /** Force the cluster client even for a single seed URL. */
  cluster?: boolean;
  /** ioredis keyPrefix: prepended to every key (tests isolate themselves with it). */
  keyPrefix?: string;
  connectTimeoutMs?: number;
  /** Per-command timeout. */
  commandTimeoutMs?: number;
}

interface ParsedNode {
  host: string;
  port: number;
  username?: string;
  password?: string;
  db?: number;
  tls: boolean;
}

export function parseRedisUrls(raw: string): ParsedNode[] {
  const parts = raw.split(',').map((p) => p.trim()).filter(Boolean);
  if (parts.length === 0) throw badInput('Redis URL is empty: expected redis://[user:password@]host:6379[/db]');
  return parts.map((p) => {
    let u: URL;
    try {
      u = new URL(p);
    } catch {
      throw badInput(`Redis URL "${redactUrl(p)}" does not parse: expected redis://[user:password@]host:6379[/db]`);
    }
    if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
      throw badInput(`Redis URL scheme "${u.protocol}" is not redis: expected redis:// or rediss://`);
    }
    const db = u.pathname && u.pathname !== '/' ? Number(u.pathname.slice(1)) : undefined;
    if (db !== undefined && !Number.isInteger(db)) throw badInput(`Redis URL "${redactUrl(p)}" has a database "${u.pathname.slice(1)}" that is not a number`);
    return {
      host: u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
      port: u.port ? Number(u.port) : 6379,
      username: u.username ? decodeURIComponent(u.username) : undefined,
      password: u.password ? decodeURIComponent(u.password) : undefined,
      db,
      tls: u.protocol === 'rediss:',
    };
  });
}

export function describeRedis(raw: string): string {
  try {
    return parseRedisUrls(raw).map((n) => `${n.host}:${n.port}`).join(',');
  } catch {
    return redactUrl(raw);
  }
}

/** Connects and PINGs; fails fast (no reconnect loop) with an UNREACHABLE DoctorError. */
export async function connectRedis(config: RedisConfig): Promise<RedisClient> {
  const nodes = parseRedisUrls(config.url);
  const { Redis, Cluster } = await import('ioredis');
  const first = nodes[0]!;
  const common = {
    username: first.username,
    password: first.password,
    connectTimeout: config.connectTimeoutMs ?? 5_000,
    commandTimeout: config.commandTimeoutMs,
    maxRetriesPerRequest: 1,
    tls: first.tls ? {} : undefined,
    connectionName: 'digest-doctor',
    // the ready check runs INFO, which a read-only ACL user need not have (README's ACL lines); the
    // PING below proves the server answers
    enableReadyCheck: false,
    // quit()/disconnect() otherwise keep the process alive up to 2 s waiting for the socket to close
    disconnectTimeout: 200,
  };
  const target = describeRedis(config.url);
  let client: RedisClient;
  if (config.cluster || nodes.length > 1) {
    client = new Cluster(
      nodes.map((n) => ({ host: n.host, port: n.port })),
      {
        lazyConnect: true,
        keyPrefix: config.keyPrefix,
        clusterRetryStrategy: () => null,
        enableOfflineQueue: true,
        redisOptions: common,
      },
    );
  } else {
    client = new Redis({
      ...common,
      host: first.host,
      port: first.port,
      db: first.db,
      keyPrefix: config.keyPrefix,
      lazyConnect: true,
      retryStrategy: () => null,
    });
  }
  // The 'error' event carries the real cause (ECONNREFUSED...); connect() only says "Connection is closed".
  let cause: unknown;
  client.on('error', (e) => (cause ??= e));
  try {
    await client.connect();
    await client.ping();
  } catch (err) {
    client.disconnect();
    throw classifyRedisError(cause ?? err, target);
  }
  return client;
}

export function classifyRedisError(err: unknown, target: string): unknown {
  if (err instanceof DoctorError) return err;
  const msg = redactUrl((err as Error)?.message ?? String(err));
  if (/WRONGPASS|NOAUTH|NOPERM|invalid password|invalid username/i.test(msg)) {
    return new DoctorError('AUTH_FAILED', `Redis at ${target} refused us (${msg}): check the user and password in the Redis URL`, { cause: err });
  }
  if (/ECONNREFUSED|ENOTFOUND|ETIMEDOUT|EHOSTUNREACH|ECONNRESET|EAI_AGAIN|connect|Connection is closed|timed? ?out|Failed to refresh slots cache|None of startup nodes/i.test(msg)) {
    return new DoctorError('UNREACHABLE', `cannot reach Redis at ${target} (${msg}): check --redis-url / REDIS_URL and that the server is up`, { cause: err });
  }
  return err;
}

/**
 * A Redis reply error that is the server's answer rather than our bug: a command the ACL user may
 * not run (NOPERM), or one the server does not have (an older version). Anything else is returned as is.
 */
export function classifyRedisReply(err: unknown): unknown {
  if (err instanceof DoctorError) return err;
  const msg = (err as Error)?.message ?? '';
  const noperm = /^NOPERM .*?'([^']+)'/.exec(msg) ?? (/^NOPERM/.test(msg) ? [msg, ''] : null);
  if (noperm) {
    return new DoctorError('AUTH_FAILED', `the Redis user may not run ${noperm[1] ? `'${noperm[1]}'` : 'a command digest-doctor needs'} (${msg}): grant the commands README lists under "Redis permissions"`, { cause: err });
  }
  const unknown = /^ERR unknown command [`']([^`']+)[`']/i.exec(msg);
  if (unknown) {
    const cmd = unknown[1]!.toUpperCase();
    const since: Record<string, string> = { XINFO: '5.0', XRANGE: '5.0', XPENDING: '5.0', XADD: '5.0', XAUTOCLAIM: '6.2', ACL: '6.0' };
    return new DoctorError('REFUSED', `this Redis has no ${cmd} command: digest-doctor needs Redis ${since[cmd] ?? '5.0'} or later for it`, { cause: err });
  }
  return err;
}

/** The master nodes to run per-node commands (SCAN) on: every master of a cluster, or the one server. */
export function masters(client: RedisClient): Redis[] {
  return isCluster(client) ? client.nodes('master') : [client];
}

export function isCluster(client: RedisClient): client is Cluster {
  return (client as Cluster).isCluster === true;
}

/** `redis_version` from INFO server, as [major, minor, patch]. */
export async function serverVersion(client: RedisClient): Promise<[number, number, number]> {
  const node = masters(client)[0]!;
  const info = await node.info('server');
  const m = /redis_version:(\d+)\.(\d+)\.(\d+)/.exec(info);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [0, 0, 0];
}

export function versionAtLeast(v: readonly [number, number, number], major: number, minor = 0): boolean {
  return v[0] > major || (v[0] === major && v[1] >= minor);
}

export async function closeRedis(client: RedisClient | undefined): Promise<void> {
  if (!client) return;
  try {
    await client.quit();
  } catch {
    client.disconnect();
  }
}
