// `replay`: republish digest events from the DLQ, from failed rows of a day, or from named rows.
// Each event is rebuilt as the service builds it, checked with the event schema, and published
// idempotently (a marker per history_id), pipelined in batches so throughput stays near raw XADD,
// and paced to the consumer group so MAXLEN ~ never trims an event before a worker reads it.
import { randomUUID } from 'node:crypto';
import * as z from 'zod';
import { DIGEST_DLQ_STREAM, DIGEST_GROUP, DIGEST_STREAM, IN_FLIGHT_STATUSES, STREAM_MAXLEN, TRIGGERS, type Trigger } from '../core/contract.js';
import { buildEvent, fieldsToRecord, parseDlqEntry, type BuildEventInput, type DigestGenerateEvent } from '../core/event.js';
import {
  dayKey,
  deliveryProblem,
  planReplay,
  recheckInFlight,
  replayIdempotencyId,
  SKIP_REASONS,
  type DeliveryAdvice,
  type InFlightRow,
  type PlannedEvent,
  type ReplayCandidate,
  type ReplayRowState,
  type StreamTarget,
} from '../core/replay.js';
import { FindingSchema } from '../core/finding-schema.js';
import { parseXinfoGroups } from '../core/stream-health.js';
import { shellQuote } from '../core/validate.js';
import { formatCount, formatDuration, plural } from '../core/text.js';
import type { Db } from '../postgres/db.js';
import type { RedisClient } from '../redis/connect.js';
import { DoctorError } from '../errors.js';
import {
  BacklogStallError,
  backlogLimitFor,
  cachedVersion,
  choosePublishMode,
  clientKeyPrefix,
  DEFAULT_MARKER_TTL_MS,
  DEFAULT_STALL_TIMEOUT_MS,
  planPublish,
  publishPaced,
  streamBacklog,
  type PublishMode,
  type PublishPlan,
} from '../redis/publish.js';
import { streamKeyPrefixes } from '../redis/stream-info.js';
import { xrangePages } from '../redis/stream-reader.js';

/** 2: the skip reason 'another row of the day is sent or in flight' split in two ('... is sent',
 * which --force overrides, and '... is in flight', which nothing does), `reason` an enum, and
 * `findings` added (why a replay would not be delivered). Added since, nothing changed or removed:
 * each event's `skippedAt`, the reason 'row went in flight' (only from the recheck at publish), and
 * 'another event of the day in this replay' (one event per (user, day) in a run). */
export const REPLAY_SCHEMA_VERSION = 2 as const;
/** Replay markers are kept apart from the service's own (`idem:`): a replay of a job the service
 * published once must still add, and a second replay of it must not. */
export const DEFAULT_REPLAY_MARKER_PREFIX = 'idem:replay:';

const ReplayEventSchema = z.object({
  source: z.enum(['dlq', 'failed', 'history-id']),
  sourceId: z.string(),
  historyId: z.string().nullable(),
  userId: z.string().nullable(),
  digestDate: z.string().nullable(),
  action: z.enum(['publish', 'skip']),
  /** Why it is skipped: SKIP_REASONS (src/core/replay.ts), or 'invalid event' (the event schema rejected it). */
  reason: z.enum([...SKIP_REASONS, 'invalid event']).nullable(),
  /** For a skip, when it was decided: `plan` (the rows read when the replay was planned, and the
   * event schema), or `publish` (--apply: the recheck right before the event's batch found its
   * (user, day) in flight); null for an event published. */
  skippedAt: z.enum(['plan', 'publish']).nullable(),
  /** After --apply: the entry id (the first one for a repeat) and whether it was a repeat. */
  entryId: z.string().nullable(),
  duplicate: z.boolean().nullable(),
  /** After --apply: added; re-added (its marker pointed at an entry trimmed before the group read
   * it); repeat (the first entry is in the stream); repeat-delivered (delivered, gone since). */
  outcome: z.enum(['added', 're-added', 'repeat', 'repeat-delivered']).nullable(),
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
  /** Pacing to the consumer group: at most backlogLimit unread entries, below MAXLEN ~ maxlen. */
  pacing: z.object({
    group: z.string(),
    maxlen: z.number().int(),
    backlogLimit: z.number().int(),
    stallTimeoutMs: z.number().int(),
    /** --apply: whether the group existed and its unread backlog (up to the limit) before the replay. */
    groupExists: z.boolean().nullable(),
    unreadBefore: z.number().int().nullable(),
  }),
  counts: z.object({
    candidates: z.number().int(),
    toPublish: z.number().int(),
    skipped: z.number().int(),
    invalid: z.number().int(),
    /** --apply: entries added (reAdded of them over a marker whose entry was trimmed unread), and
     * publishes that found their marker and its entry there or delivered (deliveredGone of them). */
    added: z.number().int(),
    reAdded: z.number().int(),
    duplicates: z.number().int(),
    deliveredGone: z.number().int(),
  }),
  events: z.array(ReplayEventSchema),
  /** Why the events to publish would not reach a worker (check `delivery`: no stream under this key
   * prefix, a key of another type, or no consumer group on it); --apply refuses then (exit 4). Empty
   * when the target is fine or there was nothing to publish. */
  findings: z.array(FindingSchema),
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
  /** The consumer group the service's workers read with (default `digest-workers`). */
  group?: string;
  /** The stream's MAXLEN ~ (default the service's 10000): every XADD trims to it. */
  maxlen?: number;
  /** Most unread entries the replay may leave in the stream; default 90% of maxlen. */
  backlogLimit?: number;
  /** Stop (exit 4) when the group reads nothing for this long while the backlog is full; default 60 s. */
  stallTimeoutMs?: number;
  /** How the fixes of a delivery problem are printed; default a bare `redis-cli <args>` and `--key-prefix <p>`. */
  advice?: DeliveryAdvice;
  onProgress?(done: number, total: number): void;
  /** While waiting for the group to read. */
  onWait?(w: { unread: number; backlogLimit: number; published: number; total: number; waitedMs: number }): void;
  /**
   * With `apply`: called, and awaited, right before the recheck of each publish batch (one script
   * call, up to 100 events), with the batch's events as planned. What it commits to the database
   * is seen by that batch's recheck. For tests (a row that goes in flight between the plan and a
   * batch, deterministically) and tracing; the CLI sets none.
   */
  beforeRecheck?(batch: readonly ReplayEvent[]): void | Promise<void>;
}

interface RowRecord {
  id: string;
  user_id: string;
  tenant_id: string | null;
  digest_date: string;
  status: string;
  in_flight_other_id: string | null;
  sent_other_id: string | null;
}

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
    for (const r of await db.query<RowRecord>('replay_rows_by_id', [ids.slice(i, i + 10_000), IN_FLIGHT_STATUSES])) out.set(r.id, r);
  }
  return out;
}

interface Gathered {
  candidates: ReplayCandidate[];
  /** The rows candidates point at, by id. */
  rows: Map<string, ReplayRowState>;
  /** For events with no row: an in-flight row of their (user, day), by dayKey. */
  inFlightByDay: Map<string, string>;
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
  const inFlightByDay = new Map<string, string>();
  if (o.fromDlq) {
    // events that name no row, or a row that is gone, still name a (user, day)
    const days = new Map<string, [string, string]>();
    for (const c of candidates) if (c.input && !(c.historyId && rows.has(c.historyId))) days.set(dayKey(c.input.userId, c.input.digestDate), [c.input.userId.toLowerCase(), c.input.digestDate]);
    const pairs = [...days.values()];
    for (let i = 0; i < pairs.length; i += 10_000) {
      const part = pairs.slice(i, i + 10_000);
      const found = await db.query<{ user_id: string; digest_date: string; id: string }>('replay_in_flight_by_day', [part.map((p) => p[0]), part.map((p) => p[1]), IN_FLIGHT_STATUSES]);
      for (const r of found) inFlightByDay.set(dayKey(r.user_id, r.digest_date), r.id);
    }
  }
  if (o.failedDate) {
    for (const r of await db.query<RowRecord>('replay_failed_rows', [o.failedDate, IN_FLIGHT_STATUSES])) {
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
  return { candidates, rows, inFlightByDay, invalid };
}

/** The target's type, whether `group` is on it, and (when it is missing) where else it exists:
 * TYPE, XINFO GROUPS, and a bounded SCAN (streamKeyPrefixes), each under the client's command timeout. */
async function streamTarget(redis: RedisClient, stream: string, group: string): Promise<StreamTarget> {
  const keyPrefix = clientKeyPrefix(redis);
  const target = { key: keyPrefix + stream, keyPrefix, group, groupExists: false, elsewhere: [] as string[] };
  const type = await redis.type(stream);
  if (type === 'none') return { ...target, type, elsewhere: (await streamKeyPrefixes(redis, stream)).filter((p) => p !== keyPrefix) };
  if (type !== 'stream') return { ...target, type };
  return { ...target, type, groupExists: parseXinfoGroups(await redis.xinfo('GROUPS', stream)).some((g) => g.name === group) };
}

const BARE_ADVICE: DeliveryAdvice = { redisCli: (args) => `redis-cli ${args}`, rerunWithKeyPrefix: (p) => `--key-prefix ${shellQuote(p)}` };

function toEvent(p: PlannedEvent): ReplayEvent {
  return {
    source: p.source,
    sourceId: p.sourceId,
    historyId: p.historyId ?? null,
    userId: p.input?.userId ?? null,
    digestDate: p.input?.digestDate ?? null,
    action: p.action,
    reason: p.reason,
    skippedAt: p.action === 'skip' ? 'plan' : null,
    entryId: null,
    duplicate: null,
    outcome: null,
  };
}

/** Plans the replay and, with `apply`, publishes it. A dry run writes nothing. */
export async function replay(db: Db, redis: RedisClient, o: ReplayOptions): Promise<ReplayResult> {
  const stream = o.stream ?? DIGEST_STREAM;
  const markerPrefix = o.markerPrefix ?? DEFAULT_REPLAY_MARKER_PREFIX;
  const markerTtlMs = o.markerTtlMs ?? DEFAULT_MARKER_TTL_MS;
  const { candidates, rows, inFlightByDay, invalid } = await gather(db, redis, o);
  const unparsable = invalid.length;
  const planned = planReplay(candidates, rows, { force: o.force, inFlightByDay });

  const [{ now }] = (await db.query<{ now: Date }>('db_now')) as [{ now: Date }];
  const version = await cachedVersion(redis);
  const mode = choosePublishMode(version, o.mode);
  const keyPrefix = clientKeyPrefix(redis);
  const events = planned.map(toEvent);
  const group = o.group ?? DIGEST_GROUP;
  const maxlen = o.maxlen ?? STREAM_MAXLEN;
  const backlogLimit = o.backlogLimit ?? backlogLimitFor(maxlen);
  const stallTimeoutMs = o.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;

  /** The event rebuilt as the service builds it, checked by the schema (in buildEvent), planned. */
  const prepare = (index: number): PublishPlan | null => {
    const p = planned[index]!;
    try {
      const event = buildEvent(p.input!, now, randomUUID());
      return planPublish({ stream, event, idempotencyId: replayIdempotencyId(p), markerPrefix, markerTtlMs, mode, maxlen, group, backlogLimit }, version, keyPrefix);
    } catch (err) {
      if (err instanceof DoctorError && err.code === 'BAD_INPUT' && /MAXLEN|backlog limit/.test(err.message)) throw err;
      invalid.push({ source: p.source, sourceId: p.sourceId, error: (err as Error).message });
      events[index] = { ...events[index]!, action: 'skip', reason: 'invalid event', skippedAt: 'plan' };
      return null;
    }
  };
  const toPublish = planned.flatMap((p, i) => (p.action === 'publish' ? [i] : []));
  let droppedAtPublish = 0;

  /**
   * The recheck right before a publish batch (publishPaced's screen; k indexes toPublish): the
   * in-flight rows of the batch's (user, day)s, read in one statement, and the events they block
   * (recheckInFlight) marked skipped at publish; --force does not override them. What it guards: a
   * row that went in flight after the plan and before this statement (a click during a long or
   * paced replay). The window left for an event runs from this statement's snapshot to the XADD of
   * its batch: the statement's reply (handled once this process finishes planning the next batch,
   * about a millisecond), then the call waiting in Redis behind one call at most (publishPaced keeps
   * SCREENED_CALLS_IN_FLIGHT = 2 calls in flight when screening: this recheck overlaps the previous
   * batch's run), then the XADDs before the event in its own call. Measured from before the
   * statement to the batch's reply (bench/replay.mjs's scene): about 4 ms median, rarely over 20 ms.
   * --rate sleeps after a call is sent, never inside it. A click that is over (its row `sent`) by
   * the recheck is not seen either: it reads in-flight rows only. Only the service closes what is left.
   */
  const recheck = async (ks: readonly number[]): Promise<Set<number>> => {
    const batch = ks.map((k) => planned[toPublish[k]!]!);
    if (o.beforeRecheck) await o.beforeRecheck(ks.map((k) => events[toPublish[k]!]!));
    // The arrays go as literals: the ids and days are checked (the event schema, in prepare) and
    // node-postgres would escape each element, a tenth of a millisecond of this process a batch.
    // Not a prepared statement: see the statement's header.
    const users = `{${batch.map((p) => p.input!.userId).join(',')}}`;
    const days = `{${batch.map((p) => p.input!.digestDate).join(',')}}`;
    const inFlight = await db.query<InFlightRow>('replay_in_flight_by_day', [users, days, IN_FLIGHT_STATUSES]);
    const drop = new Set<number>();
    if (!inFlight.length) return drop;
    const reasons = recheckInFlight(
      batch.map((p) => ({ historyId: p.historyId, userId: p.input!.userId, digestDate: p.input!.digestDate, plannedStatus: p.historyId ? rows.get(p.historyId)?.status : undefined })),
      inFlight,
    );
    reasons.forEach((reason, j) => {
      if (!reason) return;
      const i = toPublish[ks[j]!]!;
      events[i] = { ...events[i]!, action: 'skip', reason, skippedAt: 'publish' };
      drop.add(ks[j]!);
    });
    droppedAtPublish += drop.size;
    return drop;
  };

  let added = 0;
  let reAdded = 0;
  let duplicates = 0;
  let deliveredGone = 0;
  let published = 0;
  let before: { groupExists: boolean; unread: number | null } | null = null;
  // Where the events would land: a stream no worker's group reads (a wrong --key-prefix, another
  // Redis database) loses them. Checked once, before publishing; the dry run reports it.
  const undeliverable = toPublish.length ? deliveryProblem(await streamTarget(redis, stream, group), o.advice ?? BARE_ADVICE) : null;
  if (!o.apply) {
    for (const i of toPublish) prepare(i);
  } else if (undeliverable) {
    const { problem, lead, fix, finding } = undeliverable;
    throw new DoctorError('REFUSED', `${problem}; nothing was published (${plural(toPublish.length, 'event')} to replay); ${lead}${fix ? `: ${fix}` : ''}`, { details: { finding } });
  } else if (toPublish.length) {
    const state = await streamBacklog(redis, stream, { group, backlogLimit });
    before = { groupExists: state.groupExists, unread: state.unread };
    const started = Date.now();
    try {
      published = await publishPaced(redis, toPublish.length, (k) => prepare(toPublish[k]!), {
        stallTimeoutMs,
        ratePerSec: o.ratePerSec,
        onWait: o.onWait,
        screen: recheck,
        onResult: (k, r) => {
          if (r.duplicate) duplicates++;
          else added++;
          if (r.outcome === 're-added') reAdded++;
          if (r.outcome === 'repeat-delivered') deliveredGone++;
          const e = events[toPublish[k]!]!;
          e.entryId = r.id;
          e.duplicate = r.duplicate;
          e.outcome = r.outcome;
          o.onProgress?.(added + duplicates, toPublish.length - droppedAtPublish);
        },
      });
    } catch (err) {
      if (!(err instanceof BacklogStallError)) throw err;
      throw new DoctorError(
        'REFUSED',
        `replay stopped after ${formatDuration(Date.now() - started)}: ${formatCount(err.published)} of ${plural(toPublish.length, 'event')} published (${added} added, ${duplicates} already there), ` +
          `${err.remaining} not sent, because consumer group "${group}" on ${stream} read nothing for ${formatDuration(stallTimeoutMs)} with ${err.state.unread === null || err.state.unread === undefined ? 'unknown unread entries' : plural(err.state.unread, 'unread entry', 'unread entries')} ` +
          `(the limit under MAXLEN ~ ${maxlen} is ${backlogLimit}). Start the workers and run the same replay again: the published events have their markers and are not sent twice`,
        { cause: err, details: { published: err.published, added, duplicates, remaining: err.remaining } },
      );
    }
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
    pacing: { group, maxlen, backlogLimit, stallTimeoutMs, groupExists: before?.groupExists ?? null, unreadBefore: before?.unread ?? null },
    counts: {
      candidates: candidates.length + unparsable,
      toPublish: prepared,
      skipped: events.filter((e) => e.action === 'skip').length,
      invalid: invalid.length,
      added,
      reAdded,
      duplicates,
      deliveredGone,
    },
    events,
    findings: undeliverable ? [undeliverable.finding] : [],
    invalid,
  };
}
