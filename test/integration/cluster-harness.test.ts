import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, isCluster, masters, closeRedis, type RedisClient } from '../../src/redis/connect.js';
import { startRedisCluster, type TestCluster } from '../helpers/redis-cluster.js';

describe('connectRedis on a real three-master cluster', () => {
  let cluster: TestCluster;
  let client: RedisClient;
  beforeAll(async () => {
    cluster = await startRedisCluster();
    client = await connectRedis({ url: cluster.url, keyPrefix: 'h:' });
  });
  afterAll(async () => {
    await closeRedis(client);
    await cluster?.stop();
  });

  it('uses the cluster client for a list of nodes and sees three masters', async () => {
    expect(isCluster(client)).toBe(true);
    expect(masters(client)).toHaveLength(3);
  });

  it('routes keys in different slots and applies the key prefix', async () => {
    await client.set('a', '1');
    await client.set('b', '2');
    expect(await client.get('a')).toBe('1');
    const found: string[] = [];
    for (const node of masters(client)) {
      const [, keys] = await node.scan('0', 'MATCH', 'h:*', 'COUNT', 100);
      found.push(...keys);
    }
    expect(found.sort()).toEqual(['h:a', 'h:b']);
  });
});
