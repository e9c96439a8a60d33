// Read-only stream access: paged XRANGE (bounded memory however long the stream), pending lookups.
// Never XREADGROUP: reading through a group creates consumers and takes ownership of entries.
import { compareEntryIds } from '../core/stream-id.js';
import type { RedisClient } from './connect.js';

export type RawEntry = [id: string, fields: string[]];

export interface PageOptions {
  /** Inclusive start id, or '-' */
  start?: string;
  /** Inclusive end id, or '+' */
  end?: string;
  pageSize?: number;
  /** Ask for the next page before yielding this one, so the server works while the caller does. */
  prefetch?: boolean;
}

/** Yields pages of entries in id order; the next page starts after the last id seen (exclusive range). */
export async function* xrangePages(client: RedisClient, key: string, opts: PageOptions = {}): AsyncGenerator<RawEntry[]> {
  const end = opts.end ?? '+';
  const count = opts.pageSize ?? 1000;
  let start = opts.start ?? '-';
  const fetch = (from: string) => client.xrange(key, from, end, 'COUNT', count) as Promise<RawEntry[]>;
  let next: Promise<RawEntry[]> | undefined = fetch(start);
  while (next) {
    const page = await next;
    next = undefined;
    if (page.length === 0) return;
    const last = page[page.length - 1]![0];
    const more = page.length === count && (end === '+' || compareEntryIds(last, end) < 0);
    start = `(${last}`;
    if (more && opts.prefetch) {
      next = fetch(start);
      // a caller that stops early never awaits it: don't let its failure go unhandled
      next.catch(() => undefined);
    }
    yield page;
    if (!more) return;
    next ??= fetch(start);
  }
}

export interface PendingInfo {
  consumer: string;
  idleMs: number;
  deliveries: number;
}

/**
 * Pending state of each id in `group`, one XPENDING per id, pipelined. A missing group yields
 * `groupMissing: true` rather than an error.
 */
export async function pendingForIds(
  client: RedisClient,
  key: string,
  group: string,
  ids: readonly string[],
): Promise<{ groupMissing: boolean; byId: Map<string, PendingInfo> }> {
  const byId = new Map<string, PendingInfo>();
  if (ids.length === 0) return { groupMissing: false, byId };
  const pipeline = client.pipeline();
  for (const id of ids) pipeline.xpending(key, group, id, id, 1);
  const results = (await pipeline.exec()) ?? [];
  for (let i = 0; i < results.length; i++) {
    const [err, reply] = results[i]!;
    if (err) {
      if (/NOGROUP/i.test(err.message)) return { groupMissing: true, byId };
      throw err;
    }
    const row = (reply as Array<[string, string, number, number]>)[0];
    if (row) byId.set(row[0], { consumer: row[1], idleMs: Number(row[2]), deliveries: Number(row[3]) });
  }
  return { groupMissing: false, byId };
}
