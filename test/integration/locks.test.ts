import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { GROUP_LOCK_TTL_MS, USER_LOCK_TTL_MS } from '../../src/core/contract.js';
import { acquireLock, extendLock, findStaleLocks, releaseLock } from '../../src/redis/locks.js';
import type { RedisClient } from '../../src/redis/connect.js';
import { REDIS_TARGETS } from '../helpers/redis-targets.js';

const USER = '6af5e7d3-e736-46da-bfc1-42786f2ab1c0';

describe.each(REDIS_TARGETS)('locks on $name Redis', (target) => {
  let client: RedisClient;
  let cleanup: () => Promise<void>;
  beforeAll(() => target.start());
  afterAll(() => target.stop());
  beforeAll(async () => {
    ({ client, cleanup } = await target.client());
  });
  afterAll(() => cleanup());
  afterEach(async () => {
    // one DEL per key: on a cluster the keys live in different slots
    for (const k of [`digest:lock:${USER}`, 'digest:lock:t1:g1:w1', 'digest:lock:t2:g2:w2']) await client.del(k);
  });

  it('acquires once; a second acquire gets null while it is held', async () => {
    const lock = await acquireLock(client, `digest:lock:${USER}`, 10_000);
    expect(lock).not.toBeNull();
    expect(await acquireLock(client, `digest:lock:${USER}`, 10_000)).toBeNull();
    expect(await client.get(`digest:lock:${USER}`)).toBe(lock!.token);
    const ttl = await client.pttl(`digest:lock:${USER}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(10_000);
  });

  it('refuses a release and an extend by a non-owner and leaves the lock untouched', async () => {
    const lock = (await acquireLock(client, `digest:lock:${USER}`, 10_000))!;
    const intruder = { key: lock.key, token: 'not-the-owner' };
    expect(await releaseLock(client, intruder)).toEqual({ ok: false, outcome: 'not-owner' });
    expect(await extendLock(client, intruder, 60_000)).toEqual({ ok: false, outcome: 'not-owner' });
    expect(await client.get(lock.key)).toBe(lock.token);
    expect(await client.pttl(lock.key)).toBeLessThanOrEqual(10_000);
    expect(await releaseLock(client, lock)).toEqual({ ok: true, outcome: 'ok' });
    expect(await client.exists(lock.key)).toBe(0);
  });

  it('extends for the owner, by the server clock', async () => {
    const lock = (await acquireLock(client, `digest:lock:${USER}`, 5_000))!;
    expect(await extendLock(client, lock, 120_000)).toEqual({ ok: true, outcome: 'ok' });
    expect(await client.pttl(lock.key)).toBeGreaterThan(5_000);
  });

  it('a lock expires by itself; release and extend then say not-held, and another owner can take it', async () => {
    const lock = (await acquireLock(client, `digest:lock:${USER}`, 1))!;
    // poll the server instead of sleeping a fixed time: expiry is the server's business
    while ((await client.exists(lock.key)) === 1) await new Promise((r) => setTimeout(r, 5));
    expect(await releaseLock(client, lock)).toEqual({ ok: false, outcome: 'not-held' });
    expect(await extendLock(client, lock, 1000)).toEqual({ ok: false, outcome: 'not-held' });
    const next = await acquireLock(client, lock.key, 10_000);
    expect(next).not.toBeNull();
    expect(await releaseLock(client, lock)).toEqual({ ok: false, outcome: 'not-owner' });
  });

  it('findStaleLocks reports locks with no TTL or more TTL than their kind allows, keys without the prefix', async () => {
    await client.set(`digest:lock:${USER}`, '1'); // the bot's lock left without a TTL
    await client.set('digest:lock:t1:g1:w1', 'tok', 'PX', GROUP_LOCK_TTL_MS * 4); // too long for a group lock
    await client.set('digest:lock:t2:g2:w2', 'tok', 'PX', GROUP_LOCK_TTL_MS); // healthy
    await client.set('digest:other', '1'); // not a lock
    const stale = await findStaleLocks(client);
    expect(stale.map((s) => [s.key, s.kind, s.reason])).toEqual([
      [`digest:lock:${USER}`, 'user', 'no TTL'],
      ['digest:lock:t1:g1:w1', 'group', 'TTL longer than the lock allows'],
    ]);
    expect(stale[0]!.ttlMs).toBeNull();
    expect(stale[0]!.maxTtlMs).toBe(USER_LOCK_TTL_MS);
    expect(stale[1]!.ttlMs).toBeGreaterThan(GROUP_LOCK_TTL_MS);
    await client.del('digest:other');
  });
});
