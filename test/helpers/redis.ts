// A key prefix per test on the shared Redis, and cleanup of everything under it.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { inject } from 'vitest';

export interface TestRedis {
  url: string;
  prefix: string;
  /** A raw client (no keyPrefix): build keys with key(). */
  client: Redis;
  key(name: string): string;
  /** Global CLI flags for this prefix. */
  cliArgs: string[];
  cleanup(): Promise<void>;
}

export function redisUrl(): string {
  return inject('redisUrl');
}

export async function createTestRedis(): Promise<TestRedis> {
  const url = redisUrl();
  const prefix = `ddtest:${randomBytes(5).toString('hex')}:`;
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await client.connect();
  return {
    url,
    prefix,
    client,
    key: (name) => prefix + name,
    cliArgs: ['--redis-url', url, '--key-prefix', prefix],
    async cleanup() {
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
        cursor = next;
        if (keys.length) await client.del(...keys);
      } while (cursor !== '0');
      client.disconnect();
    },
  };
}
