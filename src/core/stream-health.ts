// Stream health: typed XINFO / XPENDING replies and the findings drawn from them. Pure: the Redis
// clock's "now" is passed in, replies come in as ioredis returns them.
import { plural } from './text.js';
import { DIGEST_GROUP, EXPECTED_GROUPS, MAX_DELIVERIES, WORKER_CONSUMER_PATTERN, isDlqStream } from './contract.js';
import { formatAge } from './duplicates.js';
import { countVerdicts, type Finding, type FindingVerdict } from './finding.js';
import { compareEntryIds, entryIdAfter, entryIdTime } from './stream-id.js';

export type { FindingVerdict } from './finding.js';

/** A Finding (core/finding.ts) about one stream, or one group of it (null: the stream itself). */
export interface StreamFinding extends Finding {
  stream: string;
  group: string | null;
}

export interface EntrySummary {
  id: string;
  fields: Record<string, string>;
}

export interface StreamInfoData {
  length: number;
  lastGeneratedId: string;
  /** 7.0+; null on older servers. */
  maxDeletedEntryId: string | null;
  entriesAdded: number | null;
  recordedFirstEntryId: string | null;
  groups: number;
  firstEntry: EntrySummary | null;
  lastEntry: EntrySummary | null;
}

export interface GroupInfoData {
  name: string;
  consumers: number;
  pending: number;
  lastDeliveredId: string;
  /** 7.0+ */
  entriesRead: number | null;
  /** 7.0+; null also when Redis cannot tell (after deletions): "unknown", never 0. */
  lag: number | null;
}

export interface ConsumerInfoData {
  name: string;
  pending: number;
  idleMs: number;
  /** 7.2+: ms since the last successful read; null when not reported. */
  inactiveMs: number | null;
}

export interface PendingSummaryData {
  count: number;
  minId: string | null;
  maxId: string | null;
  consumers: Array<{ name: string; pending: number }>;
}

export interface PendingEntryData {
  id: string;
  consumer: string;
  idleMs: number;
  deliveries: number;
}

/** A reply that is a flat [k, v, k, v] list (RESP2 shape) or a map (RESP3) -> a plain record. */
export function replyToRecord(reply: unknown): Record<string, unknown> {
  if (reply instanceof Map) return Object.fromEntries([...reply.entries()].map(([k, v]) => [String(k), v]));
  if (Array.isArray(reply)) {
    const out: Record<string, unknown> = {};
    for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = reply[i + 1];
    return out;
  }
  if (reply && typeof reply === 'object') return reply as Record<string, unknown>;
  throw new Error(`unexpected Redis reply: ${JSON.stringify(reply)}`);
}

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

function entryOf(v: unknown): EntrySummary | null {
  if (!Array.isArray(v) || v.length < 2) return null;
  const flat = (v[1] as unknown[]) ?? [];
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) fields[String(flat[i])] = String(flat[i + 1]);
  return { id: String(v[0]), fields };
}

export function parseXinfoStream(reply: unknown): StreamInfoData {
  const r = replyToRecord(reply);
  const maxDeleted = str(r['max-deleted-entry-id']);
  return {
    length: Number(r.length ?? 0),
    lastGeneratedId: String(r['last-generated-id'] ?? '0-0'),
    maxDeletedEntryId: maxDeleted,
    entriesAdded: num(r['entries-added']),
    recordedFirstEntryId: str(r['recorded-first-entry-id']),
    groups: Number(r.groups ?? 0),
    firstEntry: entryOf(r['first-entry']),
    lastEntry: entryOf(r['last-entry']),
  };
}

export function parseXinfoGroups(reply: unknown): GroupInfoData[] {
  return (reply as unknown[]).map((g) => {
    const r = replyToRecord(g);
    return {
      name: String(r.name),
      consumers: Number(r.consumers ?? 0),
      pending: Number(r.pending ?? 0),
      lastDeliveredId: String(r['last-delivered-id'] ?? '0-0'),
      entriesRead: num(r['entries-read']),
      lag: num(r.lag),
    };
  });
}

export function parseXinfoConsumers(reply: unknown): ConsumerInfoData[] {
  return (reply as unknown[]).map((c) => {
    const r = replyToRecord(c);
    return { name: String(r.name), pending: Number(r.pending ?? 0), idleMs: Number(r.idle ?? 0), inactiveMs: num(r.inactive) };
  });
}

/** `XPENDING key group`: [count, min, max, [[consumer, n], ...]] */
export function parseXpendingSummary(reply: unknown): PendingSummaryData {
  const [count, minId, maxId, consumers] = reply as [unknown, unknown, unknown, unknown];
  return {
    count: Number(count ?? 0),
    minId: str(minId),
    maxId: str(maxId),
    consumers: ((consumers as Array<[unknown, unknown]> | null) ?? []).map(([name, n]) => ({ name: String(name), pending: Number(n) })),
  };
}

/** `XPENDING key group start end count`: [[id, consumer, idle, deliveries], ...] */
export function parseXpendingEntries(reply: unknown): PendingEntryData[] {
  return ((reply as Array<[unknown, unknown, unknown, unknown]>) ?? []).map(([id, consumer, idle, deliveries]) => ({
    id: String(id),
    consumer: String(consumer),
    idleMs: Number(idle),
    deliveries: Number(deliveries),
  }));
}

/** The id right after `id`: an inclusive start that works on every server (`(id` needs 6.2). Throws after the largest id. */
export function nextEntryId(id: string): string {
  const next = entryIdAfter(id);
  if (next === null) throw new Error(`no stream id after ${id}`);
  return next;
}

/** What the pending-entry walk found for one group. */
export interface PendingScanData {
  /** Pending entries read (at most the scan limit). */
  scanned: number;
  /** False when the group has more pending entries than the limit allowed reading. */
  complete: boolean;
  oldest: PendingEntryData | null;
  mostDelivered: PendingEntryData | null;
  /** Entries delivered MAX_DELIVERIES times or more. */
  poison: PendingEntryData[];
  /** Pending ids whose entry is gone (checked with XRANGE id id), and how many were checked. */
  dangling: string[];
  danglingChecked: number;
}

export interface GroupSnapshot {
  info: GroupInfoData;
  consumers: ConsumerInfoData[];
  pendingSummary: PendingSummaryData;
  pending: PendingScanData;
}

export type StreamSnapshot =
  | { key: string; state: 'missing' }
  | { key: string; state: 'wrong-type'; type: string }
  | { key: string; state: 'ok'; info: StreamInfoData; groups: GroupSnapshot[] };

export interface HealthThresholds {
  /** Group lag above this is a warning. */
  maxLag: number;
  /** Pending entries in a group above this is a warning. */
  maxPending: number;
  /** A consumer (or pending entry) idle longer than this, holding entries, is dead. */
  idleMs: number;
  /** Deliveries at or above this make an entry poison. */
  maxDeliveries: number;
  /** Ids listed per finding. */
  listLimit: number;
}

export const DEFAULT_THRESHOLDS: HealthThresholds = {
  maxLag: 1000,
  maxPending: 100,
  idleMs: 10 * 60_000,
  maxDeliveries: MAX_DELIVERIES,
  listLimit: 10,
};

/** Ages from the server clock: the ms an id carries against `nowMs`. */
export function idAgeMs(id: string | null | undefined, nowMs: number): number | null {
  const t = id ? entryIdTime(id) : undefined;
  return t ? Math.max(0, nowMs - t.getTime()) : null;
}

/** What can be known of one group's position, from XINFO STREAM and XINFO GROUPS alone. */
export interface GroupAccounting {
  /** Entries present after last-delivered-id (what the group has still to deliver); null: not known exactly. */
  lag: number | null;
  /** Bounds on lag (equal to it when known). */
  lagMin: number;
  lagMax: number;
  /** Where the lag comes from: counted from ids and length, Redis's own counter, or bounds only. */
  lagSource: 'ids' | 'redis' | 'bounds';
  /** Entries trimmed before the group delivered them: at least `min`, at most `max` (null: no bound, Redis < 7.0). */
  trimmedMin: number;
  trimmedMax: number | null;
  /** True when the group is behind the start of the stream (entries between it and the first entry are gone). */
  behindStart: boolean;
  /** The facts the numbers come from, for the message. */
  reason: string;
}

/**
 * What the counters of XINFO STREAM / XINFO GROUPS prove about one group, and no more. Rules, from
 * Redis's t_stream.c (7.0-7.4: streamEstimateDistanceFromFirstEverEntry, streamReplyWithCGLag,
 * streamRangeHasTombstones) and first principles:
 * - entries-added (A) counts every XADD ever; A - length entries are gone (trimmed or XDEL'd).
 * - max-deleted-entry-id (D) moves on XDEL only, never on a trim: D = 0-0 means nothing was ever
 *   deleted, so every entry gone was trimmed; D != 0-0 proves one gone entry (D) was deleted.
 * - a trim removes a prefix; entries after last-delivered-id (L) that are gone while L < the first
 *   entry were never delivered.
 * - entries-read (E), when valid, counts the entries at or before L that the group read or that Redis
 *   counted as read when it (re)estimated the counter; it only grows by one per read, so entries
 *   removed between two reads stay uncounted (why Redis's lag, A - E, goes stale after a trim:
 *   redis/redis#13957). For a group at 0-0, E is 0 whatever Redis shows.
 * - so A = E + (entries at or before L never counted) + (entries added after L), and the entries the
 *   group never got, U = A - E - (entries present after L), are all gone: each trimmed or deleted.
 * Lag is exact from ids when L is before the first entry (= length) or at/after the last (= 0);
 * between them Redis's counter is used when it fits 1..length-1, else only those bounds are known.
 * Redis < 7.0 reports neither A nor D nor E: only "behind the start" can be told, never a count.
 */
export function groupAccounting(info: StreamInfoData, group: GroupInfoData): GroupAccounting {
  const L = group.lastDeliveredId;
  const len = info.length;
  const first = info.firstEntry?.id ?? null;
  const last = info.lastEntry?.id ?? null;
  const A = info.entriesAdded;
  const D = info.maxDeletedEntryId;
  // lag from ids
  let lagMin: number;
  let lagMax: number;
  let lagSource: GroupAccounting['lagSource'] = 'ids';
  let behindStart = false;
  if (len === 0 || !first || !last || compareEntryIds(L, last) >= 0) {
    lagMin = lagMax = 0;
    behindStart = len === 0 && compareEntryIds(L, info.lastGeneratedId) < 0;
  } else if (compareEntryIds(L, first) < 0) {
    lagMin = lagMax = len;
    behindStart = true;
  } else if (compareEntryIds(L, first) === 0) {
    lagMin = lagMax = len - 1;
  } else {
    lagMin = 1;
    lagMax = len - 1;
    if (group.lag !== null && group.lag >= lagMin && group.lag <= lagMax) {
      lagMin = lagMax = group.lag;
      lagSource = 'redis';
    } else {
      lagSource = 'bounds';
      if (group.lag !== null && group.lag >= 1) lagMax = Math.min(lagMax, group.lag);
    }
  }
  const lag = lagMin === lagMax ? lagMin : null;
  // Redis's counter may count entries skipped over as lag: the trim bounds use the id bounds only
  const idLagMin = lagSource === 'ids' ? lagMin : 1;
  const idLagMax = lagSource === 'ids' ? lagMax : len - 1;

  if (A === null) {
    // Redis < 7.0: no counters. Behind the start means entries after L are gone, or never existed.
    return {
      lag, lagMin, lagMax, lagSource, behindStart, trimmedMin: 0, trimmedMax: behindStart ? null : 0,
      reason: behindStart ? `last-delivered-id ${L} is before the first entry ${first ?? '(stream empty)'}; Redis before 7.0 has no entries-added to count what is gone` : '',
    };
  }
  const removed = Math.max(0, A - len);
  const noDeletes = D === null || D === '0-0';
  const deletedAfterL = !noDeletes && compareEntryIds(D!, L) > 0;
  const E = L === '0-0' ? 0 : group.entriesRead;
  // U = A - E - (present after L): bounds from the lag bounds
  let uMin = 0;
  let uMax = removed;
  if (E !== null) {
    uMin = Math.max(0, A - E - idLagMax);
    uMax = Math.min(removed, Math.max(0, A - E - idLagMin));
  }
  let trimmedMin = noDeletes ? uMin : 0;
  let trimmedMax = uMax;
  if (!noDeletes) trimmedMax = Math.max(0, Math.min(uMax - (deletedAfterL ? 1 : 0), removed - 1));
  // an empty stream whose last generated entry was never delivered: that entry was trimmed unless deleted
  if (len === 0 && behindStart && (noDeletes || compareEntryIds(D!, info.lastGeneratedId) < 0)) trimmedMin = Math.max(trimmedMin, 1);
  trimmedMin = Math.min(trimmedMin, trimmedMax);
  const parts = [`entries-added ${A}`, `length ${len}`, `entries-read ${group.entriesRead ?? 'null'}${L === '0-0' && group.entriesRead === null ? ' (0: the group never read)' : ''}`,
    `last-delivered-id ${L}`, `first entry ${first ?? 'none'}`, `max-deleted-entry-id ${D ?? 'n/a'}${noDeletes ? ' (nothing ever deleted)' : ''}`];
  return { lag, lagMin, lagMax, lagSource, behindStart, trimmedMin, trimmedMax, reason: parts.join(', ') };
}

const cap = <T>(xs: readonly T[], n: number): T[] => xs.slice(0, n);

/**
 * Every check for one stream, passing ones included (doctor style). `digestStreamMissing`: the digest
 * stream itself is missing under this key prefix, so a missing DLQ proves nothing (the keys may live
 * under another prefix): it is a warning then, not "nothing ever failed".
 */
export function evaluateStream(s: StreamSnapshot, t: HealthThresholds, nowMs: number, keyPrefix = '', digestStreamMissing = false): StreamFinding[] {
  // commands in advice name the key as Redis knows it (the key prefix added), so they run as printed
  const fullKey = keyPrefix + s.key;
  const pre70 = s.state === 'ok' && s.info.entriesAdded === null;
  const out: StreamFinding[] = [];
  const dlq = isDlqStream(s.key);
  const add = (group: string | null, check: string, verdict: FindingVerdict, message: string, fix: string | null = null, items: string[] = []) =>
    out.push({ stream: s.key, group, check, verdict, message, fix: verdict === 'ok' ? null : fix, items: cap(items, t.listLimit) });

  if (s.state === 'missing') {
    if (dlq && digestStreamMissing) add(null, 'dlq-empty', 'warn', 'DLQ does not exist, nor does the digest stream: not judged (are the keys under another --key-prefix?)', 'check the key, --key-prefix and --redis-url');
    else if (dlq) add(null, 'dlq-empty', 'ok', 'DLQ does not exist: nothing ever failed');
    else add(null, 'exists', 'warn', 'stream does not exist', 'check the key, --key-prefix and --redis-url; the service creates it on its first publish');
    return out;
  }
  if (s.state === 'wrong-type') {
    add(null, 'exists', 'fail', `key holds a ${s.type}, not a stream`, 'the service cannot publish here: find who wrote this key and rename or delete it');
    return out;
  }
  add(null, 'exists', 'ok', `stream has ${plural(s.info.length, 'entry')}`);
  if (dlq) {
    const age = idAgeMs(s.info.firstEntry?.id, nowMs);
    if (s.info.length > 0) {
      add(null, 'dlq-empty', 'warn', `DLQ holds ${plural(s.info.length, 'entry')} (oldest ${age === null ? 'unknown' : formatAge(age)} old)`,
        'replay them with digest-doctor replay --from-dlq --apply once the cause is fixed, then trim the DLQ', s.info.firstEntry ? [s.info.firstEntry.id] : []);
    } else add(null, 'dlq-empty', 'ok', 'DLQ is empty');
  }

  const expected = EXPECTED_GROUPS[s.key];
  if (expected) {
    if (s.groups.some((g) => g.info.name === expected)) add(expected, 'group', 'ok', `group ${expected} exists`);
    else
      add(expected, 'group', dlq ? 'warn' : 'fail', `expected group ${expected} is missing`,
        `create it as the worker does: XGROUP CREATE ${fullKey} ${expected} 0 MKSTREAM (the entries already in the stream are delivered; $ would skip them)`);
  }
  for (const g of s.groups) evaluateGroup(fullKey, s.info, g, t, nowMs, add, dlq, pre70);
  return out;
}

/** How long a consumer has done nothing useful: 7.2's `inactive` (last successful read) when given, else `idle`. */
export function quietMs(c: ConsumerInfoData): number {
  return c.inactiveMs !== null && c.inactiveMs >= 0 ? c.inactiveMs : c.idleMs;
}

type Add = (group: string | null, check: string, verdict: FindingVerdict, message: string, fix?: string | null, items?: string[]) => void;

function evaluateGroup(key: string, info: StreamInfoData, g: GroupSnapshot, t: HealthThresholds, nowMs: number, add: Add, dlq: boolean, pre70: boolean): void {
  // A DLQ's group is never read by design: its backlog is the dlq-empty check, not lag or trimming.
  if (!dlq) lagAndTrim(info, g, t, add);
  pendingChecks(key, g, t, nowMs, add, pre70);
}

function lagAndTrim(info: StreamInfoData, g: GroupSnapshot, t: HealthThresholds, add: Add): void {
  const name = g.info.name;
  const a = groupAccounting(info, g.info);
  const lagText = a.lag !== null ? `lag ${a.lag}` : `lag unknown (between ${a.lagMin} and ${a.lagMax})`;
  if (a.lagMin > t.maxLag)
    add(name, 'lag', 'warn', `${lagText} > ${t.maxLag}: workers are behind`, 'start more workers or find why they are slow; raise --max-lag if this is normal');
  else add(name, 'lag', 'ok', lagText);
  const fix = 'find the lost events with digest-doctor inspect and replay them; raise MAXLEN or add workers so the service trims only delivered entries';
  if (a.trimmedMin > 0) {
    const count = a.trimmedMax === a.trimmedMin ? `${a.trimmedMin}` : `at least ${a.trimmedMin}${a.trimmedMax !== null ? `, at most ${a.trimmedMax}` : ''}`;
    add(name, 'trimmed', 'fail', `entries trimmed before delivery (${count}): ${a.reason}`, fix);
  } else if (a.behindStart && (a.trimmedMax === null || a.trimmedMax > 0)) {
    const upTo = a.trimmedMax === null ? '' : ` (up to ${a.trimmedMax})`;
    add(name, 'trimmed', 'warn',
      `possibly trimmed before delivery${upTo}: the group is behind the first entry and the counters cannot tell entries trimmed after its position from entries removed before it${a.reason ? `: ${a.reason}` : ''}`,
      `compare the group's position (XINFO GROUPS) with when it was created; if events were lost, ${fix}`);
  } else add(name, 'trimmed', 'ok', a.behindStart ? 'no entry trimmed before delivery' : 'no entry known to be trimmed before delivery');
}

function pendingChecks(key: string, g: GroupSnapshot, t: HealthThresholds, nowMs: number, add: Add, pre70 = false): void {
  const name = g.info.name;

  const pendingText = `${g.pendingSummary.count} pending` + (g.pending.oldest ? `, oldest ${formatAge(idAgeMs(g.pending.oldest.id, nowMs) ?? 0)} old` : '');
  if (g.pendingSummary.count > t.maxPending)
    add(name, 'pending', 'warn', `${pendingText} (> ${t.maxPending})`, 'workers are not acking: check their logs; entries idle 60 s are reclaimed by XAUTOCLAIM');
  else add(name, 'pending', 'ok', pendingText);

  const dead = g.consumers.filter((c) => c.pending > 0 && quietMs(c) > t.idleMs);
  if (dead.length)
    add(name, 'idle-consumers', 'warn',
      `${plural(dead.length, 'consumer')} idle over ${formatAge(t.idleMs)} hold ${dead.reduce((n, c) => n + c.pending, 0)} pending: ${dead.map((c) => `${c.name} (${c.pending}, idle ${formatAge(quietMs(c))})`).join(', ')}`,
      `claim their entries for a live worker (${pre70 ? `XAUTOCLAIM ${key} ${name} <worker> 60000 0 on Redis 6.2+; before 6.2 XCLAIM ${key} ${name} <worker> 60000 <id> ...` : `XAUTOCLAIM ${key} ${name} <worker> 60000 0`}), then ${dead.map((c) => `XGROUP DELCONSUMER ${key} ${name} ${c.name}`).join('; ')} (<worker>: the name of a live worker of yours)`,
      dead.map((c) => c.name));
  else add(name, 'idle-consumers', 'ok', `no consumer idle over ${formatAge(t.idleMs)} holds entries`);

  if (name === DIGEST_GROUP) {
    const stray = g.consumers.filter((c) => !WORKER_CONSUMER_PATTERN.test(c.name));
    if (stray.length)
      add(name, 'stray-consumers', stray.some((c) => c.pending > 0) ? 'fail' : 'warn',
        `${plural(stray.length, 'consumer')} not named digest-worker-<pid> (someone ran XREADGROUP by hand?): ${stray.map((c) => `${c.name} (${c.pending} pending)`).join(', ')}`,
        `hand their entries to a worker (XCLAIM/XAUTOCLAIM), then ${stray.map((c) => `XGROUP DELCONSUMER ${key} ${name} ${c.name}`).join('; ')}; diagnose with digest-doctor, never XREADGROUP`,
        stray.map((c) => c.name));
    else add(name, 'stray-consumers', 'ok', 'every consumer is a digest-worker-<pid>');
  }

  const p = g.pending;
  const partial = p.complete ? '' : ` (first ${p.scanned} of ${g.pendingSummary.count} pending checked)`;
  if (p.dangling.length)
    add(name, 'dangling', 'warn', `${plural(p.dangling.length, 'pending id')} whose entry no longer exists${partial}`,
      `ack them (they can never be processed): XACK ${key} ${name} ${p.dangling.slice(0, 10).join(' ')}${p.dangling.length > 10 ? ' ... (the rest: --json lists them)' : ''}`, p.dangling);
  else add(name, 'dangling', 'ok', `no dangling pending id${p.danglingChecked ? ` (${p.danglingChecked} checked)` : ''}${partial}`);

  if (p.poison.length)
    add(name, 'poison', 'fail',
      `${plural(p.poison.length, 'entry')} delivered ${t.maxDeliveries} times or more (max ${p.mostDelivered?.deliveries ?? 0})${partial}`,
      'the worker should have moved them to the DLQ: copy them there (or fix and ack), then XACK', p.poison.map((e) => e.id));
  else add(name, 'poison', 'ok', `no entry delivered ${t.maxDeliveries}+ times${partial}`);
}

/** Counts per verdict and the exit rule: any warn or fail is a finding (exit 1). */
export function summarize(findings: readonly StreamFinding[]): { ok: number; warn: number; fail: number; healthy: boolean } {
  const n = countVerdicts(findings);
  return { ...n, healthy: n.warn === 0 && n.fail === 0 };
}
