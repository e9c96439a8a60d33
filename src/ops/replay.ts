// `replay`: republish digest events from the DLQ, from failed rows of a day, or from named rows.
// Each event is rebuilt as the service builds it, checked with the event schema, and published
// idempotently (a marker per history_id), pipelined in batches so throughput stays near raw XADD.
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { DIGEST_DLQ_STREAM, DIGEST_STREAM, IN_FLIGHT_STATUSES, TRIGGERS, type Trigger } from '../core/contract.js';
import { buildEvent, fieldsToRecord, parseDlqEntry, type BuildEventInput, type DigestGenerateEvent } from '../core/event.js';
import { planReplay, rateDelayMs, replayIdempotencyId, type PlannedEvent, type ReplayCandidate, type ReplayRowState } from '../core/replay.js';
import type { Db } from '../postgres/db.js';
import type { RedisClient } from '../redis/connect.js';
import { cachedVersion, choosePublishMode, clientKeyPrefix, DEFAULT_MARKER_TTL_MS, planPublish, publishBatch, type PublishMode, type PublishPlan, type PublishResult } from '../redis/publish.js';
import { xrangePages } from '../redis/stream-reader.js';

export const REPLAY_SCHEMA_VERSION = 1 as const;
/** Replay markers are kept apart from the service's own (`idem:`): a replay of a job the service
 * published once must still add, and a second replay of it must not. */
export const DEFAULT_REPLAY_MARKER_PREFIX = 'idem:replay:';
/** Events per script call: one round of script overhead for many events. */
const SCRIPT_BATCH = 100;
/** Events prepared (built, validated, serialised) and sent between waits. */
const CHUNK = 1000;
/** Chunks in flight: the next one is prepared while Redis runs the previous ones. */
const IN_FLIGHT = 4;

const ReplayEventSchema = z.object({
  source: z.enum(['dlq', 'failed', 'history-id']),
  sourceId: z.string(),
  historyId: z.string().nullable(),
  userId: z.string().nullable(),
  digestDate: z.string().nullable(),
  action: z.enum(['publish', 'skip']),
  reason: z.string().nullable(),
  /** After --apply: the entry id (the first one for a repeat) and whether it was a repeat. */
  entryId: z.string().nullable(),
  duplicate: z.boolean().nullable(),
});
export type ReplayEvent = z.infer<typeof ReplayEventSchema>;

export const ReplayResultSchema = z.object({
  schemaVersion: z.literal(REPLAY_SCHEMA_VERSION),
  command: z.literal('replay'),
  applied: z.boolean(),
  stream: z.string(),
  sources: z.object({ fromDlq: z.string().nullable(), failedDate: z.string().nullable(), historyIds: z.array(z.string()) }),
  mode: z.enum(['lua', 'idmp']),
  marker: z.object({ prefix: z.string(), ttlMs: z.number().int() }),
  force: z.boolean(),
  ratePerSec: z.number().nullable(),
  counts: z.object({
    candidates: z.number().int(),
    toPublish: z.number().int(),
    skipped: z.number().int(),
    invalid: z.number().int(),
    /** --apply: entries added, and publishes that found their marker (added before). */
    added: z.number().int(),
    duplicates: z.number().int(),
  }),
  events: z.array(ReplayEventSchema),
  /** Entries that do not parse or fail the event schema: listed, never fatal. */
  invalid: z.array(z.object({ source: z.string(), sourceId: z.string(), error: z.string() })),
});
export type ReplayResult = z.infer<typeof ReplayResultSchema>;

export interface ReplayOptions {
  fromDlq?: boolean;
  failedDate?: string;
  historyIds?: readonly string[];
  apply?: boolean;
  force?: boolean;
  /** Events per second; unset = as fast as the pipeline goes. */
  ratePerSec?: number;
  stream?: string;
  dlqStream?: string;
  markerPrefix?: string;
  markerTtlMs?: number;
  mode?: PublishMode | 'auto';
  onProgress?(done: number, total: number): void;
}

interface RowRecord {
  id: string;
  user_id: string;
  tenant_id: string | null;
  digest_date: string;
  status: string;
  other_id: string | null;
}

/** Another row of the (user, day) in one of these makes a replay a second send. */
const BLOCKING_STATUSES = ['sent', ...IN_FLIGHT_STATUSES];

function rowInput(r: RowRecord): BuildEventInput | null {
  if (!r.tenant_id) return null;
  return { userId: r.user_id, tenantId: r.tenant_id, digestDate: r.digest_date, trigger: 'scheduler_retry', historyId: r.id };
}

/** What buildEvent needs from a DLQ copy: the original trigger and the fields it carried. */
function dlqInput(e: DigestGenerateEvent): BuildEventInput {
  const { schema_version: _s, trace_id: _t, occurred_at: _o, idempotency_key: _i, user_id, tenant_id, digest_date, trigger, history_id, requested_by, ...extra } = e;
  const t: Trigger = trigger && (TRIGGERS as readonly string[]).includes(trigger) ? trigger : 'scheduler_retry';
  return { userId: user_id, tenantId: tenant_id, digestDate: digest_date, trigger: t, historyId: history_id, requestedBy: requested_by, extra };
}

async function rowsById(db: Db, ids: readonly string[]): Promise<Map<string, RowRecord>> {
  const out = new Map<string, RowRecord>();
  for (let i = 0; i < ids.length; i += 10_000) {
    for (const r of await db.query<RowRecord>('replay_rows_by_id', [ids.slice(i, i + 10_000), BLOCKING_STATUSES])) out.set(r.id, r);
  }
  return out;
}

interface Gathered {
  candidates: ReplayCandidate[];
  /** The rows candidates point at, by id. */
  rows: Map<string, ReplayRowState>;
  invalid: ReplayResult['invalid'];
}

async function gather(db: Db, redis: RedisClient, o: ReplayOptions): Promise<Gathered> {
  const candidates: ReplayCandidate[] = [];
  const invalid: ReplayResult['invalid'] = [];
  const rows = new Map<string, ReplayRowState>();
  if (o.fromDlq) {
    for await (const page of xrangePages(redis, o.dlqStream ?? DIGEST_DLQ_STREAM)) {
      for (const [id, fields] of page) {
        const entry = parseDlqEntry(fieldsToRecord(fields));
        if (!entry.event.ok) invalid.push({ source: 'dlq', sourceId: id, error: entry.event.error });
        // ids compared lower-case, as the database prints them: a DLQ copy may carry an upper-case history_id
        else candidates.push({ source: 'dlq', sourceId: id, historyId: entry.event.event.history_id?.toLowerCase(), input: dlqInput(entry.event.event) });
      }
    }
    const ids = [...new Set(candidates.map((c) => c.historyId).filter((h): h is string => h !== undefined))];
    for (const r of (await rowsById(db, ids)).values()) rows.set(r.id, r);
  }
  if (o.failedDate) {
    for (const r of await db.query<RowRecord>('replay_failed_rows', [o.failedDate, BLOCKING_STATUSES])) {
      rows.set(r.id, r);
      candidates.push({ source: 'failed', sourceId: r.id, historyId: r.id, input: rowInput(r) });
    }
  }
  if (o.historyIds?.length) {
    const historyIds = o.historyIds.map((h) => h.toLowerCase());
    const found = await rowsById(db, historyIds);
    for (const id of historyIds) {
      const r = found.get(id);
      if (r) rows.set(id, r);
      candidates.push({ source: 'history-id', sourceId: id, historyId: id, input: r ? rowInput(r) : null });
    }
  }
  return { candidates, rows, invalid };
}

/** Sends one chunk as script calls of SCRIPT_BATCH events, without waiting between them. */
async function sendChunk(redis: RedisClient, plans: readonly PublishPlan[]): Promise<PublishResult[]> {
  const calls: Array<Promise<PublishResult[]>> = [];
  for (let i = 0; i < plans.length; i += SCRIPT_BATCH) calls.push(publishBatch(redis, plans.slice(i, i + SCRIPT_BATCH)));
  return (await Promise.all(calls)).flat();
}

function toEvent(p: PlannedEvent): ReplayEvent {
  return {
    source: p.source,
    sourceId: p.sourceId,
    historyId: p.historyId ?? null,
    userId: p.input?.userId ?? null,
    digestDate: p.input?.digestDate ?? null,
    action: p.action,
    reason: p.reason,
    entryId: null,
    duplicate: null,
  };
}

/** Plans the replay and, with `apply`, publishes it. A dry run writes nothing. */
export async function replay(db: Db, redis: RedisClient, o: ReplayOptions): Promise<ReplayResult> {
  const stream = o.stream ?? DIGEST_STREAM;
  const markerPrefix = o.markerPrefix ?? DEFAULT_REPLAY_MARKER_PREFIX;
  const markerTtlMs = o.markerTtlMs ?? DEFAULT_MARKER_TTL_MS;
  const { candidates, rows, invalid } = await gather(db, redis, o);
  const unparsable = invalid.length;
  const planned = planReplay(candidates, rows, { force: o.force });

  const [{ now }] = (await db.query<{ now: Date }>('db_now')) as [{ now: Date }];
  const version = await cachedVersion(redis);
  const mode = choosePublishMode(version, o.mode);
  const keyPrefix = clientKeyPrefix(redis);
  const events = planned.map(toEvent);

  /** The event rebuilt as the service builds it, checked by the schema (in buildEvent), planned. */
  const prepare = (index: number): PublishPlan | null => {
    const p = planned[index]!;
    try {
      const event = buildEvent(p.input!, now, randomUUID());
      return planPublish({ stream, event, idempotencyId: replayIdempotencyId(p), markerPrefix, markerTtlMs, mode }, version, keyPrefix);
    } catch (err) {
      invalid.push({ source: p.source, sourceId: p.sourceId, error: (err as Error).message });
      events[index] = { ...events[index]!, action: 'skip', reason: 'invalid event' };
      return null;
    }
  };
  const toPublish = planned.flatMap((p, i) => (p.action === 'publish' ? [i] : []));

  let added = 0;
  let duplicates = 0;
  let published = 0;
  if (!o.apply) {
    for (const i of toPublish) prepare(i);
  } else {
    interface Sent {
      indices: number[];
      results: Promise<PublishResult[]>;
    }
    const record = async (sent: Sent) => {
      const results = await sent.results;
      for (let k = 0; k < results.length; k++) {
        const r = results[k]!;
        if (r.duplicate) duplicates++;
        else added++;
        const e = events[sent.indices[k]!]!;
        e.entryId = r.id;
        e.duplicate = r.duplicate;
      }
      o.onProgress?.(added + duplicates, toPublish.length);
    };
    const window: Sent[] = [];
    const started = Date.now();
    const chunk = o.ratePerSec ? Math.max(1, Math.min(CHUNK, Math.floor(o.ratePerSec / 10))) : CHUNK;
    for (let c = 0; c < toPublish.length; c += chunk) {
      const indices: number[] = [];
      const plans: PublishPlan[] = [];
      for (let i = c; i < Math.min(c + chunk, toPublish.length); i++) {
        const plan = prepare(toPublish[i]!);
        if (plan) {
          indices.push(toPublish[i]!);
          plans.push(plan);
        }
      }
      published += plans.length;
      const results = sendChunk(redis, plans);
      results.catch(() => undefined); // awaited in order below; this only keeps an early failure from being "unhandled"
      window.push({ indices, results });
      if (window.length >= IN_FLIGHT) await record(window.shift()!);
      const wait = rateDelayMs(published, Date.now() - started, o.ratePerSec);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    while (window.length) await record(window.shift()!);
  }
  const prepared = o.apply ? published : events.filter((e) => e.action === 'publish').length;

  return {
    schemaVersion: REPLAY_SCHEMA_VERSION,
    command: 'replay',
    applied: Boolean(o.apply),
    stream,
    sources: { fromDlq: o.fromDlq ? (o.dlqStream ?? DIGEST_DLQ_STREAM) : null, failedDate: o.failedDate ?? null, historyIds: [...(o.historyIds ?? [])] },
    mode,
    marker: { prefix: markerPrefix, ttlMs: markerTtlMs },
    force: Boolean(o.force),
    ratePerSec: o.ratePerSec ?? null,
    counts: {
      candidates: candidates.length + unparsable,
      toPublish: prepared,
      skipped: events.filter((e) => e.action === 'skip').length,
      invalid: invalid.length,
      added,
      duplicates,
    },
    events,
    invalid,
  };
}
