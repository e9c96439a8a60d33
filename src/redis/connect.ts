// The one module that owns the `ioredis` import. A standalone server or a cluster, behind one type.
import type { Cluster, Redis } from 'ioredis';
import { DoctorError, badInput } from '../errors.js';
import { classifyRedisFault } from '../core/faults.js';
import { redactUrl } from '../core/redact.js';
import { unparsableReason } from '../core/url.js';

/** Default bound on connecting to Redis (TCP, TLS, AUTH, the first PING). */
export const DEFAULT_REDIS_CONNECT_TIMEOUT_MS = 5_000;
/** Default bound on each Redis command's reply. */
export const DEFAULT_REDIS_COMMAND_TIMEOUT_MS = 10_000;
/** How long QUIT may take before the socket is dropped. */
const QUIT_TIMEOUT_MS = 500;

export type RedisClient = Redis | Cluster;

export interface RedisConfig {
  /** One URL, or a comma-separated list of cluster nodes. */
  url: string;
  /** Force the cluster client even for a single seed URL. */
  cluster?: boolean;
  /** ioredis keyPrefix: prepended to every key (tests isolate themselves with it). */
  keyPrefix?: string;
  /** Bound on connecting: TCP, TLS, AUTH, SELECT and the first PING together. Default 5 s. */
  connectTimeoutMs?: number;
  /** Bound on each command's reply (ioredis commandTimeout); 0 = none. Default 10 s. */
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

/**
 * Parses one URL or a comma-separated list (cluster nodes). BAD_INPUT (exit 2) for anything the tool
 * cannot honour: a URL that does not parse, another scheme, a port outside 1-65535, a database that is
 * not a non-negative integer, any query parameter or fragment (none is read: they would be ignored).
 */
export function parseRedisUrls(raw: string): ParsedNode[] {
  const parts = raw.split(',').map((p) => p.trim()).filter(Boolean);
  if (parts.length === 0) throw badInput('Redis URL is empty: expected redis://[user:password@]host:6379[/db]');
  return parts.map((p) => {
    let u: URL;
    try {
      u = new URL(p);
    } catch {
      throw badInput(`Redis URL "${redactUrl(p)}": ${unparsableReason(p)}: expected redis://[user:password@]host:6379[/db]`);
    }
    if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
      throw badInput(`Redis URL scheme "${u.protocol}" is not redis: expected redis:// or rediss://`);
    }
    if (u.port === '0') throw badInput(`Redis URL "${redactUrl(p)}": port 0 is not a port: give the server's port (1-65535), e.g. :6379`);
    if (u.search) throw badInput(`Redis URL "${redactUrl(p)}" has query parameters (${[...new Set(u.searchParams.keys())].join(', ')}) that digest-doctor does not read: remove them (the database goes in the path, /0)`);
    if (u.hash) throw badInput(`Redis URL "${redactUrl(p)}" has a fragment (#...): remove it, or percent-encode a # in the password as %23`);
    const dbText = u.pathname && u.pathname !== '/' ? u.pathname.slice(1) : undefined;
    const db = dbText === undefined ? undefined : /^\d{1,9}$/.test(dbText) ? Number(dbText) : NaN;
    if (db !== undefined && !Number.isInteger(db)) throw badInput(`Redis URL "${redactUrl(p)}" has a database "${dbText}" that is not a number: expected /0, /1, ...`);
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

/**
 * Connects, PINGs and checks the database the URL names exists (SELECT: ioredis would report a
 * failed SELECT only as an event and go on with database 0), all within connectTimeoutMs. Fails
 * fast (no reconnect loop): UNREACHABLE / AUTH_FAILED / TLS_FAILED (exit 3), or BAD_INPUT (exit 2)
 * for a database the server does not have or a database index on a cluster.
 */
export async function connectRedis(config: RedisConfig): Promise<RedisClient> {
  const nodes = parseRedisUrls(config.url);
  const { Redis, Cluster } = await import('ioredis');
  const first = nodes[0]!;
  const isClusterConfig = Boolean(config.cluster || nodes.length > 1);
  const target = describeRedis(config.url);
  if (isClusterConfig && nodes.some((n) => n.db)) {
    throw badInput(`Redis URL "${redactUrl(config.url)}" names a database, but a Redis Cluster has only database 0: remove the /<db>`);
  }
  const connectTimeoutMs = config.connectTimeoutMs ?? DEFAULT_REDIS_CONNECT_TIMEOUT_MS;
  const commandTimeoutMs = config.commandTimeoutMs ?? DEFAULT_REDIS_COMMAND_TIMEOUT_MS;
  const common = {
    username: first.username,
    password: first.password,
    connectTimeout: connectTimeoutMs,
    commandTimeout: commandTimeoutMs > 0 ? commandTimeoutMs : undefined,
    maxRetriesPerRequest: 1,
    tls: first.tls ? {} : undefined,
    connectionName: 'digest-doctor',
    // the ready check runs INFO, which a read-only ACL user need not have (README's ACL lines); the
    // PING below proves the server answers
    enableReadyCheck: false,
    // quit()/disconnect() otherwise keep the process alive up to 2 s waiting for the socket to close
    disconnectTimeout: 200,
  };
  let client: RedisClient;
  if (isClusterConfig) {
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
  // ioredis emits 'connect' once the socket is up, for rediss:// once the TLS handshake is done
  let connected = false;
  client.on('connect', () => (connected = true));
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new DoctorError(
            'UNREACHABLE',
            first.tls && !connected
              ? `Redis at ${target} did not complete a TLS handshake within ${connectTimeoutMs} ms: rediss:// asks for TLS; if the server on this port takes plain connections, use redis://, else check that it is up, or raise --connect-timeout`
              : `Redis at ${target} did not answer within ${connectTimeoutMs} ms (it accepts connections but does not reply): check that it is a Redis server and up, or raise --connect-timeout`,
          ),
        ),
      connectTimeoutMs,
    );
  });
  try {
    await Promise.race([
      (async () => {
        await client.connect();
        await client.ping();
        // ioredis reports a failed SELECT (database index out of range) only as an 'error' event
        if (first.db) await client.select(first.db);
      })(),
      deadline,
    ]);
  } catch (err) {
    client.disconnect();
    // The 'error' event carries the real cause (ECONNREFUSED...); connect() only says "Connection is closed".
    const classified = classifyRedisFault(err, target);
    throw (classified && classified.code !== 'CONNECTION_LOST' ? classified : undefined) ?? classifyRedisError(cause ?? err, target);
  } finally {
    clearTimeout(timer);
  }
  return client;
}

/** A Redis driver error as a DoctorError where it is a documented fault (src/core/faults.ts); anything else is returned as is. */
export function classifyRedisError(err: unknown, target: string): unknown {
  return classifyRedisFault(err, target) ?? err;
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

/** The one way to close a client: QUIT, bounded (500 ms), then the socket is dropped; never throws. */
export async function closeRedis(client: RedisClient | undefined): Promise<void> {
  if (!client) return;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([client.quit(), new Promise((_r, reject) => (timer = setTimeout(() => reject(new Error('QUIT timed out')), QUIT_TIMEOUT_MS)))]);
  } catch {
    /* dropped below */
  } finally {
    clearTimeout(timer);
    client.disconnect();
  }
}
