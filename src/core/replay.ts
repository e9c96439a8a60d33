// What a replay publishes and what it skips. Pure: candidates and the rows they point at come in,
// a plan comes out (src/ops/replay.ts gathers the inputs and publishes).
import { isInFlight } from './contract.js';
import type { BuildEventInput } from './event.js';
import { finding, type Finding } from './finding.js';
import { keyPrefixPhrases, rerunWithPrefixLead } from './hints.js';
import { shellQuote } from './validate.js';

export type ReplaySource = 'dlq' | 'failed' | 'history-id';

export interface ReplayCandidate {
  source: ReplaySource;
  /** The DLQ entry id, or the row id for row sources. */
  sourceId: string;
  historyId?: string;
  /** The event to rebuild: everything buildEvent needs (null when the row could not be read). */
  input: BuildEventInput | null;
}

export interface ReplayRowState {
  id: string;
  status: string;
  /** Another row of the same (user, day) in flight (IN_FLIGHT_STATUSES): the worker has that job,
   * so a replay beside it is a second digest. Never overridden. */
  in_flight_other_id?: string | null;
  /** Another row of the same (user, day) that is `sent`: replaying sends the digest again, which
   * --force may ask for. */
  sent_other_id?: string | null;
}

/** Why an event is skipped; the JSON's `reason` (with 'invalid event' for one the schema rejects). */
export const SKIP_REASONS = [
  'row already sent',
  'row missing',
  'no history_id',
  'repeat in the source',
  'another row of the day is sent',
  'another row of the day is in flight',
  'row went in flight',
  'another event of the day in this replay',
] as const;
export type SkipReason = (typeof SKIP_REASONS)[number];

/** Skips --force never overrides: a repeat would publish one job twice, and an in-flight row of
 * the (user, day) means a worker has (or will have) that day's digest: a replay beside it is the
 * incident's second digest. 'row went in flight' (found only by the recheck before a batch, see
 * recheckInFlight) is the same with the event's own row: the service published that job again. */
const UNFORCEABLE: ReadonlySet<SkipReason> = new Set(['repeat in the source', 'another row of the day is in flight', 'row went in flight', 'another event of the day in this replay']);

/**
 * Whether --force publishes an event skipped for `reason`: yes for a row already sent, missing, no
 * history_id, or another row of the day sent (the operator asks for a resend on purpose), as long
 * as there is an event to rebuild (`rebuildable`: false for a --history-id whose row is missing).
 */
export function forceOverrides(reason: string | null, rebuildable: boolean): boolean {
  return reason !== null && rebuildable && (SKIP_REASONS as readonly string[]).includes(reason) && !UNFORCEABLE.has(reason as SkipReason);
}

export interface PlannedEvent extends ReplayCandidate {
  action: 'publish' | 'skip';
  reason: SkipReason | null;
}

/** The key of a (user, day) in `inFlightByDay`: the user id lower-case, as the database prints it. */
export function dayKey(userId: string, digestDate: string): string {
  return `${userId.toLowerCase()} ${digestDate}`;
}

export interface PlanOptions {
  /** Publish skipped events that forceOverrides allows. */
  force?: boolean;
  /** For events whose row is not in `rows` (no history_id, or its row is gone): an in-flight row
   * of the event's own (user, day) (dayKey -> row id). */
  inFlightByDay?: ReadonlyMap<string, string>;
}

/**
 * Publishes each distinct job once. Skips (and lists) events whose row is already sent or gone,
 * whose (user, day) has another row sent or in flight (the digest would go out twice), and events
 * with no history_id to check. `force` publishes the skips forceOverrides allows; never a repeat,
 * never an event whose (user, day) has an in-flight row other than its own (the row's
 * in_flight_other_id, or `inFlightByDay` for an event with no row), and never one with nothing to
 * rebuild it from. Source of the rule: the incident (docs: a second digest for one user and day).
 */
export function planReplay(candidates: readonly ReplayCandidate[], rows: ReadonlyMap<string, ReplayRowState>, opts: PlanOptions = {}): PlannedEvent[] {
  const seen = new Set<string>();
  // the (user, day)s this run publishes for: one event each, the first in candidate order (failed
  // rows come newest first, the keep rule's order); a second would be a second digest for that day
  const days = new Set<string>();
  const out: PlannedEvent[] = new Array(candidates.length);
  for (let i = 0; i < candidates.length; i++) {
    const c = candidates[i]!;
    let reason: SkipReason | null = skipReason(c, rows, seen, opts.inFlightByDay);
    let forced = opts.force === true && forceOverrides(reason, c.input !== null);
    if ((reason === null || forced) && c.input) {
      const day = dayKey(c.input.userId, c.input.digestDate);
      if (days.has(day)) [reason, forced] = ['another event of the day in this replay', false];
      else days.add(day);
    }
    // an object literal, not a spread: a spread per event costs microseconds at 100,000 events
    out[i] = { source: c.source, sourceId: c.sourceId, historyId: c.historyId, input: c.input, action: reason === null || forced ? 'publish' : 'skip', reason };
  }
  return out;
}

function skipReason(c: ReplayCandidate, rows: ReadonlyMap<string, ReplayRowState>, seen: Set<string>, inFlightByDay: ReadonlyMap<string, string> | undefined): SkipReason | null {
  if (c.historyId) {
    if (seen.has(c.historyId)) return 'repeat in the source';
    seen.add(c.historyId);
  }
  if (!c.input) return 'row missing';
  const row = c.historyId ? rows.get(c.historyId) : undefined;
  // the reason --force cannot override comes first, so the output names what really blocks
  if (row ? row.in_flight_other_id : inFlightByDay?.has(dayKey(c.input.userId, c.input.digestDate))) return 'another row of the day is in flight';
  if (!c.historyId) return 'no history_id';
  if (!row) return 'row missing';
  if (row.status === 'sent') return 'row already sent';
  return row.sent_other_id ? 'another row of the day is sent' : null;
}

/** An event about to be published, as the recheck before its batch sees it. */
export interface RecheckEvent {
  historyId?: string;
  userId: string;
  digestDate: string;
  /** Its row's status when the replay was planned; undefined when it had none (no history_id, or gone). */
  plannedStatus?: string;
}

/** A row in flight (IN_FLIGHT_STATUSES) of one of the rechecked (user, day)s, as
 * sql/queries/replay_in_flight_by_day.sql returns it (ids lower-case). */
export interface InFlightRow {
  id: string;
  user_id: string;
  digest_date: string;
}

/**
 * The recheck right before a batch is published: for each event, why it must not be published
 * now, or null. `inFlight`: every in-flight row of the events' (user, day)s, read after the plan.
 * 'another row of the day is in flight': a row other than the event's own (the planning rule,
 * planReplay, applied again). 'row went in flight': its own row is in flight now and was not when
 * planned; the service publishes that job itself then (a click on a day whose newest row is
 * `failed` sets that row back to `pending` and publishes it: service-contract.md, "How rows are
 * created"). An own row already in flight when planned (a stuck `pending` row, which the replay is
 * for) does not block. Neither reason is overridden by --force (forceOverrides).
 */
export function recheckInFlight(events: readonly RecheckEvent[], inFlight: readonly InFlightRow[]): Array<SkipReason | null> {
  const byDay = new Map<string, string[]>();
  for (const r of inFlight) {
    const key = dayKey(r.user_id, r.digest_date);
    const ids = byDay.get(key);
    if (ids) ids.push(r.id);
    else byDay.set(key, [r.id]);
  }
  return events.map((e) => {
    const ids = byDay.get(dayKey(e.userId, e.digestDate));
    if (!ids) return null;
    if (ids.some((id) => id !== e.historyId)) return 'another row of the day is in flight';
    return e.plannedStatus !== undefined && isInFlight(e.plannedStatus) ? null : 'row went in flight';
  });
}

/** What the replay's target looks like on the server: where it would publish and who reads there. */
export interface StreamTarget {
  /** The stream key as the server knows it: the client's key prefix + the stream, e.g. `prod:stream:digests:generate`. */
  key: string;
  /** The client's key prefix ('' for none). */
  keyPrefix: string;
  /** The consumer group the service's workers read with (--group, default `digest-workers`). */
  group: string;
  /** The key's type (TYPE): `stream`, `none` when it does not exist, or another type. */
  type: string;
  groupExists: boolean;
  /** Other key prefixes ('' for none) under which the stream exists: asked only when it is missing here. */
  elsewhere: readonly string[];
}

/** How printed fixes are built (the CLI: this run's flags, no password). */
export interface DeliveryAdvice {
  /** `redis-cli <connection> <args>`, runnable as printed. */
  redisCli(args: string): string;
  /** The command to run again with `--key-prefix <prefix>` in place of this run's. */
  rerunWithKeyPrefix(prefix: string): string;
}

/** Why a replay to `target` would not be delivered: the problem, the words before the fix, the fix. */
export interface DeliveryProblem {
  problem: string;
  lead: string;
  fix: string | null;
  finding: Finding;
}

/**
 * Null when the stream exists and has the workers' group: a replay published there is read.
 * Otherwise the reason it would be lost (no stream under this key prefix, a key of another type,
 * or no group on it) and the fix: rerun with the key prefix where the stream exists, or create the
 * group as the worker does, `XGROUP CREATE <key> <group> 0 MKSTREAM` (src/ops/check.ts prints the
 * same for a missing group). `finding` (check `delivery`, verdict fail, items: the key) carries it.
 */
export function deliveryProblem(t: StreamTarget, advice: DeliveryAdvice): DeliveryProblem | null {
  if (t.type === 'stream' && t.groupExists) return null;
  const createGroup = advice.redisCli(`XGROUP CREATE ${shellQuote(t.key)} ${shellQuote(t.group)} 0 MKSTREAM`);
  let problem: string;
  let lead: string;
  let fix: string | null = createGroup;
  if (t.type === 'none') {
    const words = keyPrefixPhrases(t.keyPrefix, t.elsewhere);
    problem = `no stream ${t.key} ${words.here}${t.elsewhere.length ? '' : ', nor under any other key prefix'}: no worker of group "${t.group}" reads there, so a replay would be lost`;
    if (t.elsewhere.length) {
      problem += `; ${words.elsewhere}`;
      lead = rerunWithPrefixLead(t.elsewhere) || 'rerun with that key prefix';
      fix = advice.rerunWithKeyPrefix(t.elsewhere[0]!);
    } else lead = `check --key-prefix and the Redis database in --redis-url; if the workers do read ${t.key}, create the group as the worker does`;
  } else if (t.type !== 'stream') {
    problem = `${t.key} holds a ${t.type}, not a stream: nothing can be published there`;
    lead = 'check --stream and --key-prefix';
    fix = null;
  } else {
    problem = `stream ${t.key} has no consumer group "${t.group}": no worker reads it, so a replay would not be delivered`;
    lead = 'create the group as the worker does (or pass --group with the group the workers read)';
  }
  return { problem, lead, fix, finding: finding('delivery', 'fail', `${problem}; ${lead}`, fix, [t.key]) };
}

/** The id a replayed event is deduplicated on: its history_id, or the DLQ entry when it has none. */
export function replayIdempotencyId(c: Pick<ReplayCandidate, 'historyId' | 'source' | 'sourceId'>): string {
  return c.historyId ?? `${c.source}:${c.sourceId}`;
}

/** How long to wait before the next batch so `sent` events take at least sent/rate seconds. */
export function rateDelayMs(sent: number, elapsedMs: number, ratePerSec: number | undefined): number {
  if (!ratePerSec) return 0;
  return Math.max(0, Math.ceil((sent / ratePerSec) * 1000 - elapsedMs));
}
