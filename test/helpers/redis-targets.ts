// Runs a suite on the shared standalone Redis and on a real three-master cluster: each target gives
// a prefixed digest-doctor client (connectRedis, as the CLI builds it) and the CLI flags for it.
import { randomBytes } from 'node:crypto';
import { closeRedis, connectRedis, masters, type RedisClient } from '../../src/redis/connect.js';
import { startRedisCluster, type TestCluster } from './redis-cluster.js';
import { redisUrl } from './redis.js';

export interface RedisTarget {
  name: 'standalone' | 'cluster';
  /** Starts what the target needs (the cluster) once per file. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** A client with a fresh key prefix; `cliArgs` point the CLI at the same server and prefix. */
  client(): Promise<{ client: RedisClient; prefix: string; cliArgs: string[]; cleanup(): Promise<void> }>;
}

async function deletePrefix(client: RedisClient, prefix: string): Promise<void> {
  for (const node of masters(client)) {
    const nodePrefix = node.options.keyPrefix ?? '';
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      for (const k of keys) await node.del(k.slice(nodePrefix.length));
    } while (cursor !== '0');
  }
}

function target(name: RedisTarget['name']): RedisTarget {
  let cluster: TestCluster | undefined;
  const url = () => (name === 'cluster' ? cluster!.url : redisUrl());
  return {
    name,
    async start() {
      if (name === 'cluster') cluster = await startRedisCluster();
    },
    async stop() {
      await cluster?.stop();
    },
    async client() {
      const prefix = `ddt:${randomBytes(5).toString('hex')}:`;
      const client = await connectRedis({ url: url(), keyPrefix: prefix, cluster: name === 'cluster' });
      return {
        client,
        prefix,
        cliArgs: ['--redis-url', url(), '--key-prefix', prefix, ...(name === 'cluster' ? ['--redis-cluster'] : [])],
        async cleanup() {
          await deletePrefix(client, prefix).catch(() => undefined);
          await closeRedis(client);
        },
      };
    },
  };
}

export const REDIS_TARGETS: readonly RedisTarget[] = [target('standalone'), target('cluster')];
