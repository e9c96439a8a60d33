// The XINFO / XPENDING / XRANGE calls behind `streams`. Read-only: never XREADGROUP, never XINFO FULL.
import { entryIdAfter } from '../core/stream-id.js';
import {
  parseXinfoConsumers,
  parseXinfoGroups,
  parseXinfoStream,
  parseXpendingEntries,
  parseXpendingSummary,
  type GroupInfoData,
  type GroupSnapshot,
  type PendingEntryData,
  type PendingScanData,
  type StreamSnapshot,
} from '../core/stream-health.js';
import { masters, type RedisClient } from './connect.js';
import { escapeGlob } from './locks.js';

export interface SnapshotOptions {
  /** Pending entries read per group with extended XPENDING (oldest first). */
  pendingScanLimit: number;
  /** Pending ids checked for a live entry with XRANGE id id. */
  danglingCheckLimit: number;
  maxDeliveries: number;
  pageSize?: number;
}

/** Milliseconds from the server's clock (TIME), so ages do not depend on this host's clock. */
export async function redisNowMs(client: RedisClient): Promise<number> {
  const [sec, micro] = (await masters(client)[0]!.time()) as [string | number, string | number];
  return Number(sec) * 1000 + Math.floor(Number(micro) / 1000);
}

export async function streamSnapshot(client: RedisClient, key: string, opts: SnapshotOptions): Promise<StreamSnapshot> {
  const type = await client.type(key);
  if (type === 'none') return { key, state: 'missing' };
  if (type !== 'stream') return { key, state: 'wrong-type', type };
  const info = parseXinfoStream(await client.xinfo('STREAM', key));
  const groups = parseXinfoGroups(await client.xinfo('GROUPS', key));
  const snaps: GroupSnapshot[] = [];
  for (const g of groups) snaps.push(await groupSnapshot(client, key, g, opts));
  return { key, state: 'ok', info, groups: snaps };
}

async function groupSnapshot(client: RedisClient, key: string, info: GroupInfoData, opts: SnapshotOptions): Promise<GroupSnapshot> {
  const consumers = parseXinfoConsumers(await client.xinfo('CONSUMERS', key, info.name));
  const pendingSummary = parseXpendingSummary(await client.xpending(key, info.name));
  const pending = await walkPending(client, key, info.name, pendingSummary.count, opts);
  return { info, consumers, pendingSummary, pending };
}

/** Extended XPENDING in id order up to the limit: oldest, most delivered, poison, and dangling ids. */
async function walkPending(client: RedisClient, key: string, group: string, total: number, opts: SnapshotOptions): Promise<PendingScanData> {
  const page = opts.pageSize ?? 1000;
  const out: PendingScanData = { scanned: 0, complete: true, oldest: null, mostDelivered: null, poison: [], dangling: [], danglingChecked: 0 };
  const toCheck: string[] = [];
  let start = '-';
  while (total > 0 && out.scanned < opts.pendingScanLimit) {
    const count = Math.min(page, opts.pendingScanLimit - out.scanned);
    const rows: PendingEntryData[] = parseXpendingEntries(await client.xpending(key, group, start, '+', count));
    for (const e of rows) {
      out.oldest ??= e;
      if (!out.mostDelivered || e.deliveries > out.mostDelivered.deliveries) out.mostDelivered = e;
      if (e.deliveries >= opts.maxDeliveries) out.poison.push(e);
      if (toCheck.length < opts.danglingCheckLimit) toCheck.push(e.id);
    }
    out.scanned += rows.length;
    if (rows.length < count) break;
    const after = entryIdAfter(rows[rows.length - 1]!.id);
    if (after === null) break;
    start = after;
  }
  out.complete = out.scanned >= total;
  out.dangling = await missingEntries(client, key, toCheck);
  out.danglingChecked = toCheck.length;
  return out;
}

/** Ids with no entry in the stream: one XRANGE id id per id, pipelined in chunks. */
export async function missingEntries(client: RedisClient, key: string, ids: readonly string[], chunk = 1000): Promise<string[]> {
  const missing: string[] = [];
  for (let i = 0; i < ids.length; i += chunk) {
    const part = ids.slice(i, i + chunk);
    const pipeline = client.pipeline();
    for (const id of part) pipeline.xrange(key, id, id, 'COUNT', 1);
    const results = (await pipeline.exec()) ?? [];
    results.forEach(([err, reply], j) => {
      if (err) throw err;
      if ((reply as unknown[]).length === 0) missing.push(part[j]!);
    });
  }
  return missing;
}

/**
 * Stream keys matching `pattern` (a glob, e.g. `stream:digests:*`) on every master. SCAN neither
 * prefixes its MATCH pattern nor strips the prefix from what it returns, so the ioredis keyPrefix is
 * glob-escaped, added, and removed here. `SCAN ... TYPE stream` needs Redis 6.0: a server that
 * rejects it gets a TYPE per key instead (no INFO: a read-only ACL user may not have it).
 */
export async function discoverStreams(client: RedisClient, pattern: string, keyPrefix = ''): Promise<string[]> {
  const found = new Set<string>();
  let untyped = false;
  const match = escapeGlob(keyPrefix) + pattern;
  for (const node of masters(client)) {
    let typed = true;
    let cursor = '0';
    do {
      const args: Array<string | number> = ['MATCH', match, 'COUNT', 1000];
      let reply: [string, string[]];
      try {
        reply = (await node.call('SCAN', cursor, ...args, ...(typed ? ['TYPE', 'stream'] : []))) as [string, string[]];
      } catch (e) {
        // Redis 5: "ERR syntax error" for TYPE; start this node over without it
        if (!typed || cursor !== '0' || !/syntax/i.test((e as Error).message)) throw e;
        typed = false;
        untyped = true;
        continue;
      }
      const [next, keys] = reply;
      cursor = next;
      for (const k of keys) if (k.startsWith(keyPrefix)) found.add(k.slice(keyPrefix.length));
    } while (cursor !== '0');
  }
  // untyped: a TYPE per key (through the client, which adds the prefix)
  if (untyped) for (const k of [...found]) if ((await client.type(k)) !== 'stream') found.delete(k);
  return [...found].sort();
}

/**
 * The key prefixes under which the stream `key` exists, for a deployment whose keys carry a prefix
 * the run was not given (ioredis keyPrefix, e.g. `prod:`): SCAN MATCH `*<key>` on every master,
 * whole keys as Redis knows them (SCAN ignores the client's own keyPrefix), each minus `key`; ''
 * when the key exists without a prefix. At most `limit`, sorted. Walks the keyspace (COUNT 1000
 * per call, at most `maxCalls` calls per master: a hint, not a census, so a huge keyspace is cut
 * short rather than walked for minutes): call it only for a key that was not found. `TYPE stream`
 * needs Redis 6.0; an older server's keys are taken by name.
 */
export async function streamKeyPrefixes(client: RedisClient, key: string, limit = 5, maxCalls = 1000): Promise<string[]> {
  const found = new Set<string>();
  const match = `*${escapeGlob(key)}`;
  for (const node of masters(client)) {
    let typed = true;
    let cursor = '0';
    let calls = 0;
    do {
      if (++calls > maxCalls) break;
      let reply: [string, string[]];
      try {
        reply = (await node.call('SCAN', cursor, 'MATCH', match, 'COUNT', 1000, ...(typed ? ['TYPE', 'stream'] : []))) as [string, string[]];
      } catch (e) {
        if (!typed || cursor !== '0' || !/syntax/i.test((e as Error).message)) throw e;
        typed = false;
        continue;
      }
      cursor = reply[0];
      for (const k of reply[1]) if (k.endsWith(key)) found.add(k.slice(0, k.length - key.length));
    } while (cursor !== '0' && found.size < limit);
  }
  return [...found].sort().slice(0, limit);
}
