// `streams`: health of the digest streams (XINFO / XPENDING, never XREADGROUP) and, with scan, a
// whole-stream read for duplicate, conflicting, malformed and already-sent events. Read-only.
import * as z from 'zod';
import { FindingSchema } from '../core/finding-schema.js';
import { DEFAULT_STREAMS, DIGEST_DLQ_STREAM, DIGEST_STREAM, isDlqStream } from '../core/contract.js';
import { formatAge } from '../core/duplicates.js';
import {
  DEFAULT_THRESHOLDS,
  evaluateStream,
  groupAccounting,
  idAgeMs,
  summarize,
  type HealthThresholds,
  type StreamFinding,
  type StreamSnapshot,
} from '../core/stream-health.js';
import { RowCheck, ScanAccumulator, type ScanTotals } from '../core/stream-scan/index.js';
import { parseIdempotencyKey } from '../core/keys.js';
import { formatCount, plural, progressLine } from '../core/text.js';
import type { Db } from '../postgres/db.js';
import { isCluster, type RedisClient } from '../redis/connect.js';
import { discoverStreams, redisNowMs, streamSnapshot } from '../redis/stream-info.js';
import { canReadRaw, xrangeBufferPages, xrangeRawPages } from '../redis/stream-reader.js';

export const STREAMS_SCHEMA_VERSION = 1 as const;
/** What --scan reads when no stream is named: the streams of DigestGenerateEvent. */
export const SCANNED_BY_DEFAULT: readonly string[] = [DIGEST_STREAM, DIGEST_DLQ_STREAM];
/** Where discovery looks (SCAN MATCH, before the key prefix). */
export const DISCOVERY_PATTERN = 'stream:digests:*';

/** A Finding (core/finding.ts) about one stream, or one group of it. */
const StreamFindingSchema = FindingSchema.extend({ stream: z.string(), group: z.string().nullable() });

const PendingEntrySchema = z.object({ id: z.string(), consumer: z.string(), idleMs: z.number(), deliveries: z.number().int() });

const GroupSchema = z.object({
  name: z.string(),
  consumers: z.number().int(),
  pending: z.number().int(),
  lastDeliveredId: z.string(),
  entriesRead: z.number().int().nullable(),
  /** Entries present after last-delivered-id; null: not known exactly ("unknown"), see lagMin/lagMax. */
  lag: z.number().int().nullable(),
  lagMin: z.number().int(),
  lagMax: z.number().int(),
  /** Where lag comes from: ids and length (exact), Redis's counter, or bounds only. */
  lagSource: z.enum(['ids', 'redis', 'bounds']),
  /** XINFO GROUPS' own lag, as Redis reported it (null: Redis cannot tell, or before 7.0). */
  redisLag: z.number().int().nullable(),
  /** Entries trimmed before this group delivered them: at least min, at most max (null: no bound, Redis < 7.0). */
  trimmed: z.object({ min: z.number().int(), max: z.number().int().nullable() }),
  consumerList: z.array(z.object({ name: z.string(), pending: z.number().int(), idleMs: z.number(), inactiveMs: z.number().nullable() })),
  pendingSummary: z.object({
    count: z.number().int(),
    oldestId: z.string().nullable(),
    oldestAgeMs: z.number().nullable(),
    perConsumer: z.array(z.object({ name: z.string(), pending: z.number().int() })),
    mostDelivered: PendingEntrySchema.nullable(),
    scanned: z.number().int(),
    complete: z.boolean(),
  }),
});

const StreamSchema = z.object({
  key: z.string(),
  state: z.enum(['ok', 'missing', 'wrong-type']),
  type: z.string().nullable(),
  info: z
    .object({
      length: z.number().int(),
      firstEntryId: z.string().nullable(),
      firstEntryAgeMs: z.number().nullable(),
      lastEntryId: z.string().nullable(),
      lastEntryAgeMs: z.number().nullable(),
      lastGeneratedId: z.string(),
      entriesAdded: z.number().int().nullable(),
      maxDeletedEntryId: z.string().nullable(),
    })
    .nullable(),
  groups: z.array(GroupSchema),
});

const ExampleRowSchema = z.object({ historyId: z.string(), firstEntryId: z.string(), entries: z.number().int() });

const ScanSchema = z.object({
  key: z.string(),
  dlq: z.boolean(),
  exists: z.boolean(),
  durationMs: z.number(),
  entries: z.number().int(),
  valid: z.number().int(),
  withoutHistoryId: z.number().int(),
  distinctHistoryIds: z.number().int(),
  malformed: z.object({ count: z.number().int(), examples: z.array(z.object({ id: z.string(), error: z.string() })) }),
  duplicates: z.object({
    historyIds: z.number().int(),
    extraEntries: z.number().int(),
    examples: z.array(z.object({ historyId: z.string(), count: z.number().int(), entryIds: z.array(z.string()) })),
  }),
  idempotencyConflicts: z.object({
    keys: z.number().int(),
    extraHistoryIds: z.number().int(),
    examples: z.array(z.object({ key: z.string(), historyIds: z.array(z.string()) })),
  }),
  /** null: no database configured. */
  rows: z
    .object({
      checked: z.number().int(),
      sent: z.object({ count: z.number().int(), examples: z.array(ExampleRowSchema) }),
      missing: z.object({ count: z.number().int(), examples: z.array(ExampleRowSchema) }),
    })
    .nullable(),
});
export type StreamScanResult = z.infer<typeof ScanSchema>;

export const StreamsReportSchema = z.object({
  schemaVersion: z.literal(STREAMS_SCHEMA_VERSION),
  command: z.literal('streams'),
  now: z.string(),
  /**
   * version: the server's feature class, told from the replies read (INFO is not used, so a read-only
   * ACL user works): "7.2+" (consumers report inactive), "7.0+" (XINFO STREAM has entries-added),
   * "5.0-6.2" (it has not), "unknown" (no stream was read).
   */
  server: z.object({ version: z.string(), cluster: z.boolean() }),
  thresholds: z.object({ maxLag: z.number(), maxPending: z.number(), idleMs: z.number(), maxDeliveries: z.number(), listLimit: z.number() }),
  streams: z.array(StreamSchema),
  /** Every check, passing ones too. */
  findings: z.array(StreamFindingSchema),
  /** null unless --scan. */
  scan: z.object({ database: z.boolean(), streams: z.array(ScanSchema) }).nullable(),
  /** healthy: no warn and no fail (the exit code is 1 otherwise). */
  summary: z.object({ ok: z.number().int(), warn: z.number().int(), fail: z.number().int(), healthy: z.boolean() }),
});
export type StreamsReport = z.infer<typeof StreamsReportSchema>;

export interface ScanOptions {
  pageSize: number;
  /** Examples listed per kind of finding. */
  examples: number;
  idsPerExample: number;
  /** history_ids per database lookup. */
  batchSize: number;
}

export interface StreamsInput {
  /** Keys to report on; empty: the default streams plus those discovery finds. */
  streams: string[];
  /** SCAN every master for stream:digests:* streams (always on when no stream is named). */
  discover: boolean;
  /** The client's ioredis keyPrefix (SCAN needs it added and stripped by hand). */
  keyPrefix?: string;
  thresholds?: Partial<HealthThresholds>;
  pendingScanLimit?: number;
  danglingCheckLimit?: number;
  /** Read every entry too. */
  scan?: ScanOptions;
  onProgress?: (text: string) => void;
}

export const DEFAULT_SCAN_OPTIONS: ScanOptions = { pageSize: 250, examples: 10, idsPerExample: 10, batchSize: 5000 };

export async function resolveStreams(client: RedisClient, input: Pick<StreamsInput, 'streams' | 'discover' | 'keyPrefix'>): Promise<string[]> {
  const named = input.streams.length ? input.streams : [...DEFAULT_STREAMS];
  const found = input.discover || input.streams.length === 0 ? await discoverStreams(client, DISCOVERY_PATTERN, input.keyPrefix ?? '') : [];
  return [...new Set([...named, ...found])];
}

export async function streamsReport(client: RedisClient, db: Db | undefined, input: StreamsInput): Promise<StreamsReport> {
  const thresholds: HealthThresholds = { ...DEFAULT_THRESHOLDS, ...input.thresholds };
  const keys = await resolveStreams(client, input);
  const nowMs = await redisNowMs(client);
  const findings: StreamFinding[] = [];
  const streams: StreamsReport['streams'] = [];
  const snaps: StreamSnapshot[] = [];
  for (const key of keys) {
    const snap = await streamSnapshot(client, key, {
      pendingScanLimit: input.pendingScanLimit ?? 10_000,
      danglingCheckLimit: input.danglingCheckLimit ?? 1000,
      maxDeliveries: thresholds.maxDeliveries,
    });
    streams.push(streamView(snap, nowMs));
    snaps.push(snap);
  }
  // a DLQ missing beside a missing digest stream says nothing about failures (wrong key prefix?)
  const digestStreamMissing = snaps.some((s) => s.key === DIGEST_STREAM && s.state === 'missing');
  for (const snap of snaps) findings.push(...evaluateStream(snap, thresholds, nowMs, input.keyPrefix ?? '', digestStreamMissing));
  let scan: StreamsReport['scan'] = null;
  if (input.scan) {
    const results: StreamScanResult[] = [];
    // Only streams that carry DigestGenerateEvent are read whole, unless named: the context stream's
    // events have another shape and would all look malformed.
    const targets = input.streams.length ? streams : streams.filter((s) => SCANNED_BY_DEFAULT.includes(s.key));
    for (const s of targets) {
      const r = await scanStream(client, db, s.key, s.state === 'ok', input.scan, input.onProgress);
      results.push(r);
      findings.push(...scanFindings(r, input.scan.examples, input.keyPrefix ?? ''));
    }
    scan = { database: db !== undefined, streams: results };
  }
  return {
    schemaVersion: STREAMS_SCHEMA_VERSION,
    command: 'streams',
    now: new Date(nowMs).toISOString(),
    server: { version: featureClass(snaps), cluster: isCluster(client) },
    thresholds,
    streams,
    findings,
    scan,
    summary: summarize(findings),
  };
}

/** The server's feature class from what XINFO replied (see StreamsReportSchema.server). */
export function featureClass(snaps: readonly StreamSnapshot[]): string {
  const read = snaps.filter((s): s is Extract<StreamSnapshot, { state: 'ok' }> => s.state === 'ok');
  if (read.length === 0) return 'unknown';
  if (read.some((s) => s.groups.some((g) => g.consumers.some((c) => c.inactiveMs !== null)))) return '7.2+';
  return read.some((s) => s.info.entriesAdded !== null) ? '7.0+' : '5.0-6.2';
}

function streamView(s: StreamSnapshot, nowMs: number): StreamsReport['streams'][number] {
  if (s.state !== 'ok') return { key: s.key, state: s.state, type: s.state === 'wrong-type' ? s.type : null, info: null, groups: [] };
  const i = s.info;
  return {
    key: s.key,
    state: 'ok',
    type: 'stream',
    info: {
      length: i.length,
      firstEntryId: i.firstEntry?.id ?? null,
      firstEntryAgeMs: idAgeMs(i.firstEntry?.id, nowMs),
      lastEntryId: i.lastEntry?.id ?? null,
      lastEntryAgeMs: idAgeMs(i.lastEntry?.id, nowMs),
      lastGeneratedId: i.lastGeneratedId,
      entriesAdded: i.entriesAdded,
      maxDeletedEntryId: i.maxDeletedEntryId,
    },
    groups: s.groups.map((g) => {
      const a = groupAccounting(i, g.info);
      return {
      ...g.info,
      lag: a.lag,
      lagMin: a.lagMin,
      lagMax: a.lagMax,
      lagSource: a.lagSource,
      redisLag: g.info.lag,
      trimmed: { min: a.trimmedMin, max: a.trimmedMax },
      consumerList: g.consumers,
      pendingSummary: {
        count: g.pendingSummary.count,
        oldestId: g.pendingSummary.minId,
        oldestAgeMs: idAgeMs(g.pendingSummary.minId, nowMs),
        perConsumer: g.pendingSummary.consumers,
        mostDelivered: g.pending.mostDelivered,
        scanned: g.pending.scanned,
        complete: g.pending.complete,
      },
      };
    }),
  };
}

/** Reads one stream whole in pages; the database lookups run behind the reading, one batch in flight. */
export async function scanStream(
  client: RedisClient,
  db: Db | undefined,
  key: string,
  exists: boolean,
  opts: ScanOptions,
  onProgress?: (text: string) => void,
): Promise<StreamScanResult> {
  const started = performance.now();
  const dlq = isDlqStream(key);
  const length = exists ? await client.xlen(key) : 0;
  const acc = new ScanAccumulator({ examples: opts.examples, idsPerExample: opts.idsPerExample }, db !== undefined, length);
  const rows = db ? new RowCheck(opts.examples) : undefined;
  let inFlight: Promise<void> = Promise.resolve();
  const lookup = (ids: string[]) => {
    if (!db || !rows || ids.length === 0) return;
    const previous = inFlight;
    inFlight = previous.then(async () => {
      const found = await db.query<{ id: string; status: string }>('streams_history_status', [ids]);
      rows.record(ids, new Map(found.map((r) => [r.id, r.status])));
    });
    // awaited after the read; until then a failure must not count as unhandled
    inFlight.catch(() => undefined);
  };
  let pending: string[] = [];
  const afterPage = () => {
    if (db) {
      pending = pending.concat(acc.drainFresh());
      if (pending.length >= opts.batchSize) {
        lookup(pending);
        pending = [];
      }
    }
    onProgress?.(`scanning ${key}: ${progressLine(acc.totals.entries, length, 'entry', performance.now() - started)}`);
  };
  // The digest stream is read as raw reply bytes (the event checked in place, no string or object per
  // entry); the DLQ, small and of two shapes, and servers we cannot open a socket to, through ioredis.
  if (exists && !dlq && canReadRaw(client)) {
    for await (const page of xrangeRawPages(client, key, { pageSize: opts.pageSize })) {
      const { bytes, at } = page;
      for (let k = 0; k < page.count * 4; k += 4) acc.addRaw(bytes, at[k]!, at[k + 1]!, at[k + 2]!, at[k + 3]!);
      afterPage();
    }
  } else if (exists) {
    for await (const page of xrangeBufferPages(client, key, { pageSize: opts.pageSize, prefetch: true })) {
      for (const [id, flat] of page) acc.addBuffers(id.toString('latin1'), flat, dlq);
      afterPage();
    }
  }
  lookup(pending);
  await inFlight;
  const t: ScanTotals = acc.result();
  return {
    key,
    dlq,
    exists,
    durationMs: Math.round(performance.now() - started),
    ...t,
    rows: rows ? rows.result(acc) : null,
  };
}

/** The scan's findings, doctor style: one line per check, passing ones included. */
export function scanFindings(r: StreamScanResult, listLimit: number, keyPrefix = ''): StreamFinding[] {
  // advice names the key as Redis knows it (with the key prefix), so it runs as printed
  const fullKey = keyPrefix + r.key;
  const out: StreamFinding[] = [];
  const add = (check: string, bad: boolean, verdict: 'warn' | 'fail', badText: string, okText: string, fix: string, items: string[]) =>
    out.push({ stream: r.key, group: null, check, verdict: bad ? verdict : 'ok', message: bad ? badText : okText, fix: bad ? fix : null, items: bad ? items.slice(0, listLimit) : [] });
  if (!r.exists) return out;
  const d = r.duplicates;
  add('scan-duplicates', d.historyIds > 0, 'warn',
    `${plural(d.historyIds, 'history_id')} published more than once (${plural(d.extraEntries, 'extra entry', 'extra entries')}): ${d.examples.map((e) => `${e.historyId} x${e.count} [${e.entryIds.join(' ')}]`).join('; ')}`,
    `every history_id published once (${r.distinctHistoryIds} distinct)`,
    `each copy is generated and sent again: delete the later copies the workers have not read yet (XDEL ${fullKey} ${d.examples.flatMap((e) => e.entryIds.slice(1)).slice(0, 50).join(' ')}; ack instead those already pending), and publish with replay (idempotent) from now on`,
    d.examples.map((e) => e.historyId));
  const c = r.idempotencyConflicts;
  add('scan-idempotency', c.keys > 0, 'warn',
    `${plural(c.keys, 'idempotency key')} with several history_ids (${formatCount(c.extraHistoryIds)} extra): ${c.examples.map((e) => `${e.key} -> ${e.historyIds.join(', ')}`).join('; ')}`,
    'no idempotency key carries two history_ids',
    `several digests were requested for one user and day: ${inspectHints(c.examples.map((e) => e.key))}`,
    c.examples.map((e) => e.key));
  const m = r.malformed;
  add('scan-malformed', m.count > 0, 'fail',
    `${plural(m.count, 'entry', 'entries')} ${m.count === 1 ? 'does' : 'do'} not parse as a DigestGenerateEvent: ${m.examples.map((e) => `${e.id}: ${e.error}`).join('; ')}`,
    `${r.entries === 1 ? 'the one entry parses' : `all ${plural(r.entries, 'entry', 'entries')} parse`}`,
    'the worker sends these to the DLQ: find the publisher that wrote them; XDEL them once understood',
    m.examples.map((e) => e.id));
  if (r.rows) {
    const { sent, missing } = r.rows;
    add('scan-sent', sent.count > 0, 'warn',
      `${plural(sent.count, 'event')} for rows already sent: ${sent.examples.map((e) => `${e.historyId} (${e.firstEntryId})`).join(', ')}`,
      `no event for a row already sent (${r.rows.checked} checked)`,
      'the worker does not check the status: these digests will be sent twice; XDEL the entries (or XACK if pending)',
      sent.examples.map((e) => e.historyId));
    add('scan-missing', missing.count > 0, 'warn',
      `${plural(missing.count, 'event')} whose digest_history row does not exist: ${missing.examples.map((e) => `${e.historyId} (${e.firstEntryId})`).join(', ')}`,
      'every event has its row',
      'check --schema; rows deleted (user removed?) or published before the commit: the worker will fail on them',
      missing.examples.map((e) => e.historyId));
  }
  return out;
}

/** One line for people: what a scan took. */
export function scanRate(r: StreamScanResult): string {
  const secs = r.durationMs / 1000;
  return `${plural(r.entries, 'entry', 'entries')} in ${formatAge(r.durationMs)}${secs > 0 ? ` (${formatCount(Math.round(r.entries / secs))}/s)` : ''}`;
}

/** `digest-doctor inspect --user <id> --date <day>` for each user key (digest:<user>:<day>), then fix-duplicates for them. */
function inspectHints(keys: readonly string[]): string {
  const users = keys.map(parseIdempotencyKey).filter((k) => k?.kind === 'user').slice(0, 3);
  if (!users.length) return 'find the rows with digest-doctor inspect, then run digest-doctor fix-duplicates';
  return users.map((k) => `run digest-doctor inspect --user ${k!.userId} --date ${k!.day}, then digest-doctor fix-duplicates --user ${k!.userId} --date ${k!.day}`).join('; ');
}
