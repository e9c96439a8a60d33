// `inspect`: the state of digest_history (globally, or one user's day) and, for a user, the lock and
// the stream entries that carry them. Reads only, in one read-only transaction.
import { durationFlag, formatDuration, plural } from '../core/text.js';
import type * as z from 'zod';
import type { DuplicateGroupSchema, InspectSummarySchema, InspectUserSchema, UserEntrySchema } from './inspect-schema.js';
import { finding, type Finding } from '../core/finding.js';
import { DIGEST_DLQ_GROUP, DIGEST_DLQ_STREAM, DIGEST_GROUP, DIGEST_STREAM, IN_FLIGHT_STATUSES, WORKER_CONSUMER_PATTERN } from '../core/contract.js';
import { classifyGroup, type KeepPolicy } from '../core/duplicates.js';
import { dayBounds, formatInZone, userLockKey } from '../core/keys.js';
import { entryIdTime, idAtOrAfter, idAtOrBefore } from '../core/stream-id.js';
import { assertUuid } from '../core/validate.js';
import type { Db } from '../postgres/db.js';
import type { RedisClient } from '../redis/connect.js';
import { findStaleLocks } from '../redis/locks.js';
import { pendingForIds, xrangePages } from '../redis/stream-reader.js';

import { INSPECT_SCHEMA_VERSION } from './inspect-version.js';

export { INSPECT_SCHEMA_VERSION };

// The documents' schemas (./inspect-schema.ts) as types only: importing this module builds no zod schema.
export type DuplicateGroup = z.infer<typeof DuplicateGroupSchema>;
export type InspectSummary = z.infer<typeof InspectSummarySchema>;
export type InspectUser = z.infer<typeof InspectUserSchema>;
type UserEntry = z.infer<typeof UserEntrySchema>;

/** A Redis client, or why the Redis part is skipped. */
export type RedisPart = { client: RedisClient } | { skipped: string };

export interface InspectSummaryInput {
  date?: string;
  since?: string;
  limit: number;
  stuckAfterMs: number;
  /** The client's Redis key prefix: the stale-locks fix names the key as Redis knows it. */
  keyPrefix?: string;
}

const inFlight = [...IN_FLIGHT_STATUSES];
const iso = (d: Date | string | null | undefined): string | null => (d == null ? null : new Date(d).toISOString());

export async function inspectSummary(db: Db, redis: RedisPart, input: InspectSummaryInput): Promise<InspectSummary> {
  const locks: InspectSummary['locks'] =
    'skipped' in redis ? { skipped: true, reason: redis.skipped } : { skipped: false, stale: await findStaleLocks(redis.client) };
  return db.readOnly(async (tx) => {
    const [{ now }] = (await tx.query<{ now: Date }>('db_now')) as [{ now: Date }];
    const date = input.date ?? null;
    const since = input.since ?? null;
    const groupsRows = await tx.query<{
      user_id: string;
      digest_date: string;
      row_count: number;
      ids: string[];
      statuses: string[];
      created: Date[];
      oldest: Date;
      newest: Date;
      total_groups: number;
      total_rows: number;
    }>('inspect_duplicate_groups', [inFlight, date, since, null, input.limit]);
    const [ages] = await tx.query<{ lt_1h: number; h1_d1: number; d1_d7: number; gt_7d: number; stuck: number; oldest: Date | null }>(
      'inspect_inflight_ages',
      [inFlight, date, since, input.stuckAfterMs],
    );
    const statusRows = await tx.query<{ status: string; row_count: number }>('inspect_status_counts', [date, since]);
    // A window (--date / --since) hides the other digest dates: the same counts over the whole table,
    // minus the window's, say what it left out. Groups are (user, day), so each is wholly in or out.
    let outsideWindow: InspectSummary['outsideWindow'] = null;
    if (date !== null || since !== null) {
      const [all] = await tx.query<{ total_groups: number }>('inspect_duplicate_groups', [inFlight, null, null, null, 1]);
      const [allAges] = await tx.query<{ lt_1h: number; h1_d1: number; d1_d7: number; gt_7d: number; stuck: number }>('inspect_inflight_ages', [inFlight, null, null, input.stuckAfterMs]);
      const allStatus = await tx.query<{ status: string; row_count: number }>('inspect_status_counts', [null, null]);
      const sum = (rs: Array<{ row_count: number }>) => rs.reduce((n, r) => n + r.row_count, 0);
      const inFl = (x: { lt_1h: number; h1_d1: number; d1_d7: number; gt_7d: number }) => x.lt_1h + x.h1_d1 + x.d1_d7 + x.gt_7d;
      outsideWindow = {
        rows: sum(allStatus) - sum(statusRows),
        inFlight: inFl(allAges!) - inFl(ages!),
        stuck: allAges!.stuck - ages!.stuck,
        duplicateGroups: (all?.total_groups ?? 0) - (groupsRows[0]?.total_groups ?? 0),
      };
    }

    // Window aggregates run before LIMIT: these count every group, not just the ones listed.
    const totalGroups = groupsRows[0]?.total_groups ?? 0;
    const totalRows = groupsRows[0]?.total_rows ?? 0;
    const a = ages!;
    const byAge = { '< 1 h': a.lt_1h, '1 h - 1 d': a.h1_d1, '1 - 7 d': a.d1_d7, '> 7 d': a.gt_7d };
    const findings: Finding[] = [];
    // the hints narrow as this inspect did; mark-stale's threshold is the --stuck-after that called the rows stuck
    const scope = input.date ? ` --date ${input.date}` : '';
    if (totalGroups > 0) findings.push(finding('duplicates', 'fail', `${plural(totalGroups, '(user, day) group')} with more than one in-flight row (${plural(totalRows - totalGroups, 'extra row')})`, `digest-doctor fix-duplicates${scope || (input.since ? ` --since ${input.since}` : '')}`, groupsRows.map((g) => `${g.user_id} ${g.digest_date}`)));
    if (a.stuck > 0) findings.push(finding('stuck', 'fail', `${plural(a.stuck, 'in-flight row')} older than ${formatDuration(input.stuckAfterMs)}`, `digest-doctor mark-stale --older-than ${durationFlag(input.stuckAfterMs)}${scope}`));
    if (!locks.skipped && locks.stale.length) {
      findings.push(finding('stale-locks', 'fail', `${plural(locks.stale.length, 'stale lock')} (no TTL, or more TTL than the lock allows) block requests`, `check no request is running, then delete them (first: ${input.keyPrefix ?? ''}${locks.stale[0]!.key})`, locks.stale.map((l) => l.key)));
    }
    if (outsideWindow && outsideWindow.rows > 0) {
      const o = outsideWindow;
      const window = date !== null ? `digest date ${date}` : `digest dates from ${since}`;
      const hidden = `${plural(o.rows, 'row')} outside the window (${window}) ${o.rows === 1 ? 'was' : 'were'} not looked at: ${o.inFlight} in flight, ${o.stuck} stuck (older than ${formatDuration(input.stuckAfterMs)}), ${plural(o.duplicateGroups, 'duplicate group')}`;
      findings.push(
        o.stuck > 0 || o.duplicateGroups > 0
          ? finding('outside-window', 'warn', hidden, 'digest-doctor inspect')
          : finding('outside-window', 'ok', hidden),
      );
    }
    return {
      schemaVersion: INSPECT_SCHEMA_VERSION,
      command: 'inspect',
      mode: 'summary',
      now: now.toISOString(),
      filters: { user: null, date, since, limit: input.limit, stuckAfterMs: input.stuckAfterMs },
      duplicates: {
        totalGroups,
        totalRows,
        extraRows: totalRows - totalGroups,
        groups: groupsRows.map((g) => ({
          userId: g.user_id,
          digestDate: g.digest_date,
          rows: g.row_count,
          ids: g.ids,
          statuses: g.statuses,
          createdAt: g.created.map((c) => new Date(c).toISOString()),
          oldestAgeMs: now.getTime() - new Date(g.oldest).getTime(),
          newestAgeMs: now.getTime() - new Date(g.newest).getTime(),
        })),
      },
      inFlightByAge: byAge,
      inFlightTotal: a.lt_1h + a.h1_d1 + a.d1_d7 + a.gt_7d,
      stuck: { count: a.stuck, olderThanMs: input.stuckAfterMs, oldestCreatedAt: iso(a.oldest) },
      statusCounts: Object.fromEntries(statusRows.map((r) => [r.status, r.row_count])),
      locks,
      outsideWindow,
      findings,
    };
  });
}

export interface InspectUserInput {
  userId: string;
  digestDate: string;
  timeZone: string;
  stuckAfterMs: number;
  keep?: KeepPolicy;
  /** Entries scanned around the day; DLQ entries up to now. */
  pageSize?: number;
}

type UserRow = { id: string; status: string; created_at: Date; createdUs: number; sent_at: Date | null };

/**
 * One user's day: rows, lock and stream entries. `input.userId` is a UUID in any case (BAD_INPUT
 * otherwise); it is compared, keyed and reported lower-case, as the service writes it, and so are
 * the user_id and history_id of the stream entries.
 */
export async function inspectUser(
  db: Db,
  redis: RedisPart,
  given: InspectUserInput,
): Promise<InspectUser> {
  const input = { ...given, userId: assertUuid(given.userId, 'user id') };
  const { now, rows, days } = await db.readOnly(async (tx) => {
    const [{ now }] = (await tx.query<{ now: Date }>('db_now')) as [{ now: Date }];
    const rows = await tx.query<UserRow>('inspect_user_rows', [input.userId, input.digestDate]);
    const days = rows.length ? null : (await tx.query<{ row_count: number; latest_date: string | null }>('inspect_user_days', [input.userId]))[0]!;
    return { now, rows, days };
  });
  // The keep rule, to the microsecond (createdUs): the row fix-duplicates would keep.
  const cls = classifyGroup(rows, input.keep ?? 'newest');
  const extras = new Set(cls.extras.map((r) => r.id));
  const outRows = rows.map((r) => {
    const created = new Date(r.created_at);
    const ageMs = now.getTime() - created.getTime();
    const inFl = cls.inFlight.some((x) => x.id === r.id);
    const marks: Array<'kept' | 'duplicate' | 'stuck'> = [];
    if (extras.size > 0 && cls.kept?.id === r.id) marks.push('kept');
    if (extras.has(r.id)) marks.push('duplicate');
    if (inFl && ageMs > input.stuckAfterMs) marks.push('stuck');
    return {
      id: r.id,
      status: r.status,
      createdAt: created.toISOString(),
      createdAtLocal: formatInZone(created, input.timeZone),
      sentAt: iso(r.sent_at),
      ageMs,
      inFlight: inFl,
      marks,
    };
  });
  const stuckCount = outRows.filter((r) => r.marks.includes('stuck')).length;
  const findings: Finding[] = [];
  if (!rows.length) {
    // About the input: the user id or the day is likely wrong; never "nothing wrong" about a day with no row.
    findings.push(
      days!.row_count > 0
        ? finding('no-rows', 'warn', `user ${input.userId} has no digest_history row for ${input.digestDate} (${plural(days!.row_count, 'row')} on other days, the latest ${days!.latest_date})`, `digest-doctor inspect --user ${input.userId} --date ${days!.latest_date}`)
        : finding('no-rows', 'warn', `user ${input.userId} has no digest_history row on any day: check the user id (and --schema)`),
    );
  }
  if (extras.size) findings.push(finding('duplicates', 'fail', `${plural(cls.inFlight.length, 'in-flight row')} for this day (${extras.size} extra)`, `digest-doctor fix-duplicates --user ${input.userId} --date ${input.digestDate}`, [...extras]));
  if (stuckCount) findings.push(finding('stuck', 'fail', `${plural(stuckCount, 'in-flight row')} older than ${formatDuration(input.stuckAfterMs)}`, `digest-doctor mark-stale --older-than ${durationFlag(input.stuckAfterMs)} --user ${input.userId} --date ${input.digestDate}`, outRows.filter((r) => r.marks.includes('stuck')).map((r) => r.id)));

  let redisPart: InspectUser['redis'];
  if ('skipped' in redis) {
    redisPart = { skipped: true, reason: redis.skipped };
  } else {
    redisPart = await userStreams(redis.client, input, rows);
    findings.push(...streamFindings(redisPart));
  }
  return {
    schemaVersion: INSPECT_SCHEMA_VERSION,
    command: 'inspect',
    mode: 'user',
    now: now.toISOString(),
    userId: input.userId,
    digestDate: input.digestDate,
    timeZone: input.timeZone,
    rows: outRows,
    duplicateCount: extras.size,
    stuckCount,
    redis: redisPart,
    rowsOnOtherDays: days ? { rows: days.row_count, latestDate: days.latest_date } : null,
    findings,
  };
}

/**
 * What is wrong in the user's window of the streams: a lock with no TTL; the same history_id published
 * twice to the digest stream (the DLQ copy of an entry carries its history_id too, so only the digest
 * stream counts); an entry pending with a consumer that is not a worker (digest-worker-<pid>); entries
 * that do not parse; a consumer group missing. Each is a Finding (exit 1).
 */
function streamFindings(r: Extract<InspectUser['redis'], { skipped: false }>): Finding[] {
  const out: Finding[] = [];
  if (r.lock.noTtl) out.push(finding('lock-no-ttl', 'fail', `lock ${r.lock.key} has no TTL: it will never expire`, 'delete it once no request is running', [r.lock.key]));
  const byHistory = new Map<string, string[]>();
  for (const e of r.entries) {
    if (e.stream !== DIGEST_STREAM || e.historyId === null) continue;
    byHistory.set(e.historyId, [...(byHistory.get(e.historyId) ?? []), e.id]);
  }
  for (const [historyId, ids] of byHistory) {
    if (ids.length > 1) out.push(finding('published-twice', 'fail', `history_id ${historyId} was published ${ids.length} times to ${DIGEST_STREAM}: the worker may send the digest more than once`, null, ids));
  }
  for (const e of r.entries) {
    if (e.stream === DIGEST_STREAM && e.pending && !WORKER_CONSUMER_PATTERN.test(e.pending.consumer)) {
      out.push(
        finding('stray-consumer', 'fail', `entry ${e.id} is held by consumer ${e.pending.consumer}, which is not a digest-worker-<pid> (someone ran XREADGROUP by hand?)`,
          `hand it to a worker (XCLAIM/XAUTOCLAIM), then XGROUP DELCONSUMER ${DIGEST_STREAM} ${DIGEST_GROUP} ${e.pending.consumer}`, [e.id]),
      );
    }
  }
  if (r.malformed) out.push(finding('malformed', 'warn', `${r.malformed} entr${r.malformed === 1 ? 'y' : 'ies'} in the window do${r.malformed === 1 ? 'es' : ''} not parse`, 'digest-doctor streams --scan lists them'));
  for (const m of r.groupsMissing) out.push(finding('group', 'warn', `consumer group missing: ${m}`, null));
  return out;
}

const SLACK_MS = 10 * 60_000;

async function userStreams(client: RedisClient, input: InspectUserInput, rows: UserRow[]) {
  const key = userLockKey(input.userId);
  const [value, ttl] = await Promise.all([client.get(key), client.pttl(key)]);
  const lock = { key, held: value !== null, value, ttlMs: ttl >= 0 ? ttl : null, noTtl: ttl === -1 };

  // Events for day D are published on day D in the service's zone, or when one of its rows was created;
  // entry ids carry their milliseconds, so only that window is read. The DLQ copy comes later: read to now.
  const day = dayBounds(input.digestDate, input.timeZone);
  const times = rows.flatMap((r) => [new Date(r.created_at).getTime(), r.sent_at ? new Date(r.sent_at).getTime() : NaN]).filter(Number.isFinite);
  const from = new Date(Math.min(day.start.getTime(), ...times) - SLACK_MS);
  const to = new Date(Math.max(day.end.getTime(), ...times) + SLACK_MS);

  const entries: UserEntry[] = [];
  let malformed = 0;
  const groupsMissing: string[] = [];
  const scans: Array<{ stream: string; group: string; start: string; end: string; dlq: boolean }> = [
    { stream: DIGEST_STREAM, group: DIGEST_GROUP, start: idAtOrAfter(from), end: idAtOrBefore(to), dlq: false },
    { stream: DIGEST_DLQ_STREAM, group: DIGEST_DLQ_GROUP, start: idAtOrAfter(from), end: '+', dlq: true },
  ];
  // the event parser builds its zod schema when loaded: only here, with entries to read. An entry of
  // the digest stream is checked as the scan checks it (the schema's rules by hand when it has the
  // plain shape the service writes, the schema otherwise): the same verdict, without zod's cost per entry.
  const [{ fieldsToRecord, parseDlqEntry }, { parseEntryEvent }] = await Promise.all([import('../core/event.js'), import('../core/stream-scan/event-text.js')]);
  for (const s of scans) {
    const found: UserEntry[] = [];
    for await (const page of xrangePages(client, s.stream, { start: s.start, end: s.end, pageSize: input.pageSize ?? 1000 })) {
      for (const [id, flat] of page) {
        let parsed;
        let dlqReason: string | null = null;
        if (s.dlq) {
          const d = parseDlqEntry(fieldsToRecord(flat));
          parsed = d.event;
          dlqReason = d.error ?? null;
        } else {
          parsed = parseEntryEvent(flat, false);
        }
        if (!parsed.ok) {
          malformed++;
          continue;
        }
        if (parsed.event.user_id.toLowerCase() !== input.userId || parsed.event.digest_date !== input.digestDate) continue;
        found.push({
          stream: s.stream,
          id,
          addedAt: iso(entryIdTime(id)),
          trigger: parsed.event.trigger ?? null,
          historyId: parsed.event.history_id?.toLowerCase() ?? null,
          traceId: parsed.event.trace_id ?? null,
          dlqReason,
          pending: null,
        });
      }
    }
    const pending = await pendingForIds(client, s.stream, s.group, found.map((f) => f.id));
    if (pending.groupMissing && !s.dlq) groupsMissing.push(`${s.stream} ${s.group}`);
    for (const f of found) f.pending = pending.byId.get(f.id) ?? null;
    entries.push(...found);
  }
  return { skipped: false as const, lock, window: { from: from.toISOString(), to: to.toISOString() }, entries, groupsMissing, malformed };
}
