// Redis stream entry ids (`<ms>-<seq>`): parsing, comparison, and ids that bound a time window.

export interface EntryId {
  ms: bigint;
  seq: bigint;
}

const ID = /^(\d+)-(\d+)$/;

export function parseEntryId(id: string): EntryId | undefined {
  const m = ID.exec(id);
  return m ? { ms: BigInt(m[1]!), seq: BigInt(m[2]!) } : undefined;
}

/** -1, 0, 1 like a comparator. '0-0' sorts first. */
export function compareEntryIds(a: string, b: string): number {
  const x = parseEntryId(a);
  const y = parseEntryId(b);
  if (!x || !y) throw new Error(`not a stream id: ${!x ? a : b}`);
  if (x.ms !== y.ms) return x.ms < y.ms ? -1 : 1;
  if (x.seq !== y.seq) return x.seq < y.seq ? -1 : 1;
  return 0;
}

/** The millisecond timestamp an id carries (when it was added, for `*` ids). */
export function entryIdTime(id: string): Date | undefined {
  const p = parseEntryId(id);
  return p ? new Date(Number(p.ms)) : undefined;
}

/** The smallest id at or after `at`: an inclusive XRANGE start. */
export function idAtOrAfter(at: Date): string {
  return `${Math.max(0, at.getTime())}-0`;
}

/** The largest id at or before `at`: an inclusive XRANGE end. */
export function idAtOrBefore(at: Date): string {
  return `${Math.max(0, at.getTime())}-18446744073709551615`;
}

const MAX_U64 = 18446744073709551615n;

/**
 * The smallest id after `id`: `ms-(seq+1)`, or `(ms+1)-0` when seq is at its maximum (2^64-1); null
 * after the largest id there is. An inclusive XRANGE start that works on every server, where the
 * exclusive `(id` needs Redis 6.2.
 */
export function entryIdAfter(id: string): string | null {
  const p = parseEntryId(id);
  if (!p) throw new Error(`not a stream id: ${id}`);
  if (p.seq < MAX_U64) return `${p.ms}-${p.seq + 1n}`;
  return p.ms < MAX_U64 ? `${p.ms + 1n}-0` : null;
}
