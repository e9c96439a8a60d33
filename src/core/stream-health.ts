// Stream health: typed XINFO / XPENDING replies and the findings drawn from them. Pure: the Redis
// clock's "now" is passed in, replies come in as ioredis returns them.
import { DIGEST_GROUP, EXPECTED_GROUPS, MAX_DELIVERIES, WORKER_CONSUMER_PATTERN, isDlqStream } from './contract.js';
import { formatAge } from './duplicates.js';
import { compareEntryIds, entryIdTime, parseEntryId } from './stream-id.js';

export type FindingVerdict = 'ok' | 'warn' | 'fail';

export interface StreamFinding {
  stream: string;
  group: string | null;
  check: string;
  verdict: FindingVerdict;
  message: string;
  /** What to do about it; null when the check passed. */
  fix: string | null;
  /** Entry ids or consumer names the finding is about (capped). */
  items: string[];
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

/** The id right after `id`: an inclusive start that works on every server (`(id` needs 6.2). */
export function nextEntryId(id: string): string {
  const p = parseEntryId(id);
  if (!p) throw new Error(`not a stream id: ${id}`);
  return p.seq === 18446744073709551615n ? `${p.ms + 1n}-0` : `${p.ms}-${p.seq + 1n}`;
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

/** Entries gone before the group read them, as far as the counters tell; null when they can't. */
export function trimmedBeforeDelivery(info: StreamInfoData, group: GroupInfoData): { lost: boolean; count: number | null; reason: string } {
  const first = info.firstEntry?.id ?? null;
  if (group.entriesRead !== null && info.entriesAdded !== null && group.entriesRead + info.length < info.entriesAdded) {
    const count = info.entriesAdded - group.entriesRead - info.length;
    return { lost: true, count, reason: `entries-read ${group.entriesRead} + length ${info.length} < entries-added ${info.entriesAdded}` };
  }
  if (group.lag !== null && group.lag > info.length) {
    return { lost: true, count: group.lag - info.length, reason: `lag ${group.lag} > length ${info.length}` };
  }
  // last-delivered-id before the first entry only means loss when something after it was deleted.
  if (first && compareEntryIds(group.lastDeliveredId, first) < 0) {
    const deletedAfter = info.maxDeletedEntryId === null || compareEntryIds(info.maxDeletedEntryId, group.lastDeliveredId) > 0;
    if (deletedAfter && (info.entriesAdded === null || info.entriesAdded > info.length)) {
      return { lost: true, count: null, reason: `last-delivered-id ${group.lastDeliveredId} is older than the first entry ${first}` };
    }
  }
  return { lost: false, count: 0, reason: '' };
}

const cap = <T>(xs: readonly T[], n: number): T[] => xs.slice(0, n);

/** Every check for one stream, passing ones included (doctor style). */
export function evaluateStream(s: StreamSnapshot, t: HealthThresholds, nowMs: number): StreamFinding[] {
  const out: StreamFinding[] = [];
  const dlq = isDlqStream(s.key);
  const add = (group: string | null, check: string, verdict: FindingVerdict, message: string, fix: string | null = null, items: string[] = []) =>
    out.push({ stream: s.key, group, check, verdict, message, fix: verdict === 'ok' ? null : fix, items: cap(items, t.listLimit) });

  if (s.state === 'missing') {
    if (dlq) add(null, 'dlq-empty', 'ok', 'DLQ does not exist: nothing ever failed');
    else add(null, 'exists', 'warn', 'stream does not exist', 'check the key, --key-prefix and --redis-url; the service creates it on its first publish');
    return out;
  }
  if (s.state === 'wrong-type') {
    add(null, 'exists', 'fail', `key holds a ${s.type}, not a stream`, 'the service cannot publish here: find who wrote this key and rename or delete it');
    return out;
  }
  add(null, 'exists', 'ok', `stream has ${s.info.length} entries`);
  if (dlq) {
    const age = idAgeMs(s.info.firstEntry?.id, nowMs);
    if (s.info.length > 0) {
      add(null, 'dlq-empty', 'warn', `DLQ holds ${s.info.length} entries (oldest ${age === null ? 'unknown' : formatAge(age)} old)`,
        'replay them with digest-doctor replay --from-dlq --apply once the cause is fixed, then trim the DLQ', s.info.firstEntry ? [s.info.firstEntry.id] : []);
    } else add(null, 'dlq-empty', 'ok', 'DLQ is empty');
  }

  const expected = EXPECTED_GROUPS[s.key];
  if (expected) {
    if (s.groups.some((g) => g.info.name === expected)) add(expected, 'group', 'ok', `group ${expected} exists`);
    else
      add(expected, 'group', dlq ? 'warn' : 'fail', `expected group ${expected} is missing`,
        `create it: XGROUP CREATE ${s.key} ${expected} $ MKSTREAM (or 0 to deliver the backlog)`);
  }
  for (const g of s.groups) evaluateGroup(s.key, s.info, g, t, nowMs, add, dlq);
  return out;
}

/** How long a consumer has done nothing useful: 7.2's `inactive` (last successful read) when given, else `idle`. */
export function quietMs(c: ConsumerInfoData): number {
  return c.inactiveMs !== null && c.inactiveMs >= 0 ? c.inactiveMs : c.idleMs;
}

type Add = (group: string | null, check: string, verdict: FindingVerdict, message: string, fix?: string | null, items?: string[]) => void;

function evaluateGroup(key: string, info: StreamInfoData, g: GroupSnapshot, t: HealthThresholds, nowMs: number, add: Add, dlq: boolean): void {
  // A DLQ's group is never read by design: its backlog is the dlq-empty check, not lag or trimming.
  if (!dlq) lagAndTrim(info, g, t, add);
  pendingChecks(key, g, t, nowMs, add);
}

function lagAndTrim(info: StreamInfoData, g: GroupSnapshot, t: HealthThresholds, add: Add): void {
  const name = g.info.name;
  if (g.info.lag === null) add(name, 'lag', 'ok', 'lag unknown (Redis cannot tell after deletions, or the server is older than 7.0)');
  else if (g.info.lag > t.maxLag)
    add(name, 'lag', 'warn', `lag ${g.info.lag} > ${t.maxLag}: workers are behind`, 'start more workers or find why they are slow; raise --max-lag if this is normal');
  else add(name, 'lag', 'ok', `lag ${g.info.lag}`);
  const trimmed = trimmedBeforeDelivery(info, g.info);
  if (trimmed.lost)
    add(name, 'trimmed', 'fail', `entries trimmed before delivery${trimmed.count !== null ? ` (${trimmed.count})` : ''}: ${trimmed.reason}`,
      'MAXLEN trimmed entries no worker had read: raise MAXLEN or add workers; find the lost events with digest-doctor inspect and replay them');
  else add(name, 'trimmed', 'ok', 'no entry trimmed before delivery');
}

function pendingChecks(key: string, g: GroupSnapshot, t: HealthThresholds, nowMs: number, add: Add): void {
  const name = g.info.name;

  const pendingText = `${g.pendingSummary.count} pending` + (g.pending.oldest ? `, oldest ${formatAge(idAgeMs(g.pending.oldest.id, nowMs) ?? 0)} old` : '');
  if (g.pendingSummary.count > t.maxPending)
    add(name, 'pending', 'warn', `${pendingText} (> ${t.maxPending})`, 'workers are not acking: check their logs; entries idle 60 s are reclaimed by XAUTOCLAIM');
  else add(name, 'pending', 'ok', pendingText);

  const dead = g.consumers.filter((c) => c.pending > 0 && quietMs(c) > t.idleMs);
  if (dead.length)
    add(name, 'idle-consumers', 'warn',
      `${dead.length} consumer(s) idle over ${formatAge(t.idleMs)} hold ${dead.reduce((n, c) => n + c.pending, 0)} pending: ${dead.map((c) => `${c.name} (${c.pending}, idle ${formatAge(quietMs(c))})`).join(', ')}`,
      `claim their entries for a live worker (XAUTOCLAIM ${key} ${name} <worker> 60000 0), then XGROUP DELCONSUMER ${key} ${name} <consumer>`,
      dead.map((c) => c.name));
  else add(name, 'idle-consumers', 'ok', `no consumer idle over ${formatAge(t.idleMs)} holds entries`);

  if (name === DIGEST_GROUP) {
    const stray = g.consumers.filter((c) => !WORKER_CONSUMER_PATTERN.test(c.name));
    if (stray.length)
      add(name, 'stray-consumers', stray.some((c) => c.pending > 0) ? 'fail' : 'warn',
        `${stray.length} consumer(s) not named digest-worker-<pid> (someone ran XREADGROUP by hand?): ${stray.map((c) => `${c.name} (${c.pending} pending)`).join(', ')}`,
        `hand their entries to a worker (XCLAIM/XAUTOCLAIM), then XGROUP DELCONSUMER ${key} ${name} <consumer>; diagnose with digest-doctor, never XREADGROUP`,
        stray.map((c) => c.name));
    else add(name, 'stray-consumers', 'ok', 'every consumer is a digest-worker-<pid>');
  }

  const p = g.pending;
  const partial = p.complete ? '' : ` (first ${p.scanned} of ${g.pendingSummary.count} pending checked)`;
  if (p.dangling.length)
    add(name, 'dangling', 'warn', `${p.dangling.length} pending id(s) whose entry no longer exists${partial}`,
      `ack them: XACK ${key} ${name} <id> ... (they can never be processed)`, p.dangling);
  else add(name, 'dangling', 'ok', `no dangling pending id${p.danglingChecked ? ` (${p.danglingChecked} checked)` : ''}${partial}`);

  if (p.poison.length)
    add(name, 'poison', 'fail',
      `${p.poison.length} entr${p.poison.length === 1 ? 'y' : 'ies'} delivered ${t.maxDeliveries} times or more (max ${p.mostDelivered?.deliveries ?? 0})${partial}`,
      'the worker should have moved them to the DLQ: copy them there (or fix and ack), then XACK', p.poison.map((e) => e.id));
  else add(name, 'poison', 'ok', `no entry delivered ${t.maxDeliveries}+ times${partial}`);
}

/** Counts per verdict and the exit rule: any warn or fail is a finding (exit 1). */
export function summarize(findings: readonly StreamFinding[]): { ok: number; warn: number; fail: number; healthy: boolean } {
  const n = { ok: 0, warn: 0, fail: 0 };
  for (const f of findings) n[f.verdict]++;
  return { ...n, healthy: n.warn === 0 && n.fail === 0 };
}
