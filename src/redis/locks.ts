// Owner-checked locks: SET NX PX with a random token; release and extend only by the token's owner
// (compare-and-delete / compare-and-pexpire scripts). Expiry is kept by the Redis server's clock.
import { randomBytes } from 'node:crypto';
import { GROUP_LOCK_TTL_MS, LOCK_PREFIX, USER_LOCK_TTL_MS } from '../core/contract.js';
import { isUuid } from '../core/validate.js';
import { DoctorError, badInput } from '../errors.js';
import { masters, type RedisClient } from './connect.js';
import { SCRIPT_CODES, withScripts } from './scripts.js';

export interface Lock {
  key: string;
  token: string;
  ttlMs: number;
}

/** released / extended; `not-held`: expired or never taken; `not-owner`: another token holds it (refused). */
export type LockOutcome = 'ok' | 'not-held' | 'not-owner';

export interface LockResult {
  ok: boolean;
  outcome: LockOutcome;
}

function checkTtl(ttlMs: number): void {
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) throw badInput(`lock TTL ${ttlMs} ms must be a positive whole number of milliseconds`);
}

/** A fresh random token: 128 bits, so no two owners ever share one. */
export function newLockToken(): string {
  return randomBytes(16).toString('hex');
}

/** Takes `key` if free. Returns the lock (keep its token to release or extend) or null when held. */
export async function acquireLock(client: RedisClient, key: string, ttlMs: number, token: string = newLockToken()): Promise<Lock | null> {
  checkTtl(ttlMs);
  const reply = await client.set(key, token, 'PX', ttlMs, 'NX');
  return reply === 'OK' ? { key, token, ttlMs } : null;
}

/** The lock scripts' codes (SCRIPT_CODES) as an outcome; any other reply is a bug of ours. */
export function lockOutcome(code: unknown): LockResult {
  const n = Number(code);
  if (n === SCRIPT_CODES.LOCK_DONE) return { ok: true, outcome: 'ok' };
  if (n === SCRIPT_CODES.LOCK_NOT_OWNER) return { ok: false, outcome: 'not-owner' };
  if (n === SCRIPT_CODES.LOCK_NOT_HELD) return { ok: false, outcome: 'not-held' };
  throw new DoctorError('INTERNAL', `lock script returned unknown code ${String(code)}`);
}

/** Deletes the lock only if it still carries `lock.token`; a non-owner's release is refused. */
export async function releaseLock(client: RedisClient, lock: Pick<Lock, 'key' | 'token'>): Promise<LockResult> {
  return lockOutcome(await withScripts(client).releaseLock(lock.key, lock.token));
}

/** Resets the lock's TTL to `ttlMs` (server time) only if it still carries `lock.token`. */
export async function extendLock(client: RedisClient, lock: Pick<Lock, 'key' | 'token'>, ttlMs: number): Promise<LockResult> {
  checkTtl(ttlMs);
  return lockOutcome(await withScripts(client).extendLock(lock.key, lock.token, ttlMs));
}

// ---- stale locks (for `inspect`) -----------------------------------------------------------------

export interface StaleLock {
  /** The key without the client's keyPrefix. */
  key: string;
  kind: 'user' | 'group';
  /** Remaining TTL in ms; null when the key has none. */
  ttlMs: number | null;
  /** The most a lock of this kind may have left. */
  maxTtlMs: number;
  reason: 'no TTL' | 'TTL longer than the lock allows';
}

export interface StaleLockOptions {
  /** Lock keys start with this (default `digest:lock:`). */
  prefix?: string;
  /** Longest TTL each kind may carry (defaults: the user lock's 300 s, the group lock's 900 s). */
  ttlMs?: { user?: number; group?: number };
  /** SCAN COUNT hint. */
  count?: number;
}

/** `digest:lock:{uuid}` is a user's lock; anything else under the prefix is a group pipeline lock. */
export function lockKind(key: string, prefix = LOCK_PREFIX): 'user' | 'group' {
  return isUuid(key.slice(prefix.length)) ? 'user' : 'group';
}

/** Lock keys with no TTL, or with more TTL left than their kind allows: SCAN on every master. */
export async function findStaleLocks(client: RedisClient, opts: StaleLockOptions = {}): Promise<StaleLock[]> {
  const prefix = opts.prefix ?? LOCK_PREFIX;
  const max = { user: opts.ttlMs?.user ?? USER_LOCK_TTL_MS, group: opts.ttlMs?.group ?? GROUP_LOCK_TTL_MS };
  // SCAN MATCH and its replies ignore ioredis keyPrefix: add it to the pattern, strip it from keys.
  const keyPrefix = client.options.keyPrefix ?? '';
  const out: StaleLock[] = [];
  for (const node of masters(client)) {
    const nodePrefix = node.options.keyPrefix ?? '';
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${escapeGlob(keyPrefix + prefix)}*`, 'COUNT', opts.count ?? 1000);
      cursor = next;
      if (keys.length === 0) continue;
      const pipeline = node.pipeline();
      for (const full of keys) pipeline.pttl(full.slice(nodePrefix.length));
      const ttls = (await pipeline.exec()) ?? [];
      keys.forEach((full, i) => {
        const [err, ttl] = ttls[i]!;
        if (err) throw err;
        const key = full.slice(keyPrefix.length);
        const kind = lockKind(key, prefix);
        const left = Number(ttl);
        if (left === -2) return; // expired between SCAN and PTTL
        if (left === -1) out.push({ key, kind, ttlMs: null, maxTtlMs: max[kind], reason: 'no TTL' });
        else if (left > max[kind]) out.push({ key, kind, ttlMs: left, maxTtlMs: max[kind], reason: 'TTL longer than the lock allows' });
      });
    } while (cursor !== '0');
  }
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** SCAN MATCH is a glob: escape its metacharacters in the literal part. */
export function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&');
}
