// Idempotent, atomic publish of a DigestGenerateEvent: one script checks a marker key, XADDs with
// the service's MAXLEN ~, and stores the new entry id in the marker with a TTL. A repeat gets the
// first entry id back and adds nothing, as long as that entry is still in the stream or was
// delivered to the consumer group; a marker whose entry was trimmed unread does not block.
// Publishes are paced to the group: never more unread entries than the backlog limit (below
// MAXLEN), so the stream's own trimming never drops an entry before a worker reads it.
// Redis 8.6+ has idempotent XADD natively (XADD ... IDMP): used there, with the same rules.
import { DIGEST_GROUP, STREAM_MAXLEN } from '../core/contract.js';
import { serializeEvent, type DigestGenerateEvent } from '../core/event.js';
import { rateDelayMs } from '../core/replay.js';
import { formatDuration } from '../core/text.js';
import { DoctorError, badInput } from '../errors.js';
import { serverVersion, versionAtLeast, type RedisClient } from './connect.js';
import { SCRIPT_CODES, scriptError, withScripts } from './scripts.js';

/** Markers live a day: long enough for every retry and replay of one job, short enough that a
 * stale marker never blocks a genuinely new job for long (a new job has a new history_id anyway). */
export const DEFAULT_MARKER_TTL_MS = 86_400_000;
/** Marker key = `{<stream's hash tag>}:<marker prefix><idempotent id>`. */
export const DEFAULT_MARKER_PREFIX = 'idem:';
/** The IDMP producer id digest-doctor uses on Redis 8.6+. */
export const DEFAULT_PRODUCER = 'digest-doctor';

export type PublishMode = 'lua' | 'idmp';

export interface PublishOptions {
  /** The stream key (without the client's keyPrefix), e.g. `stream:digests:generate`. */
  stream: string;
  event: DigestGenerateEvent;
  /** What makes two publishes "the same": default the event's history_id. */
  idempotencyId?: string;
  /** The whole marker key; default `{<stream tag>}:<markerPrefix><idempotencyId>` (see markerKeyFor). */
  markerKey?: string;
  /** Default `idem:`. */
  markerPrefix?: string;
  /** Default 24 h. */
  markerTtlMs?: number;
  /** MAXLEN ~ threshold; default the service's 10000. */
  maxlen?: number;
  /** `auto` (default): IDMP on Redis 8.6+, the script before. */
  mode?: PublishMode | 'auto';
  /** IDMP producer id (8.6+ only). */
  producer?: string;
  /** The consumer group whose reads count as delivery; default the service's `digest-workers`. */
  group?: string;
  /** Most unread entries (after the group's last-delivered-id) the stream may hold after a publish;
   * default backlogLimitFor(maxlen), 90% of MAXLEN. 0 turns pacing off (entries may be trimmed unread). */
  backlogLimit?: number;
}

/**
 * `added`: a new entry. `re-added`: a new entry, because the marker pointed at an entry that went
 * (trimmed or deleted) before the group read it. `repeat`: nothing added, the first entry is still
 * in the stream. `repeat-delivered`: nothing added, the first entry was delivered to the group and
 * has gone since.
 */
export type PublishOutcome = 'added' | 're-added' | 'repeat' | 'repeat-delivered';

export interface PublishResult {
  /** The new entry's id, or the first entry's id for a repeat. */
  id: string;
  /** outcome is repeat or repeat-delivered. */
  duplicate: boolean;
  outcome: PublishOutcome;
  markerKey: string;
  mode: PublishMode;
}

/** Share of MAXLEN the unread backlog may fill: the rest is left for the service's own publishes. */
export const BACKLOG_SHARE = 0.9;

/** The default backlog limit for a MAXLEN: floor(90%), at least 1. */
export function backlogLimitFor(maxlen: number): number {
  return Math.max(1, Math.floor(maxlen * BACKLOG_SHARE));
}

/**
 * The hash tag Redis Cluster hashes for `key`: the text inside the first `{...}` when it is not
 * empty, otherwise the whole key. Two keys share a slot when their tags are equal.
 */
export function hashTagOf(key: string): string {
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) return key.slice(open + 1, close);
  }
  return key;
}

/**
 * A marker key in the same hash slot as `stream`. The stream key the server sees is keyPrefix +
 * stream; the marker is written `{<that key's tag>}:<prefix><id>`, so after ioredis prepends the
 * keyPrefix its first tag is still the stream's: `stream:digests:generate` (no tag, hashed whole)
 * gets `{stream:digests:generate}:idem:<id>`.
 */
export function markerKeyFor(stream: string, id: string, opts: { keyPrefix?: string; markerPrefix?: string } = {}): string {
  const keyPrefix = opts.keyPrefix ?? '';
  const tag = hashTagOf(keyPrefix + stream);
  // A key hashed whole that holds a brace cannot be wrapped in braces and keep its hash.
  if (tag === keyPrefix + stream && /[{}]/.test(tag)) {
    throw badInput(`stream key "${keyPrefix + stream}" has unbalanced braces: pass an explicit marker key in the stream's hash slot`);
  }
  // A key prefix with its own tag decides every key's slot: then tag is the prefix's, as wanted.
  return `{${tag}}:${opts.markerPrefix ?? DEFAULT_MARKER_PREFIX}${id}`;
}

export interface PublishPlan {
  mode: PublishMode;
  stream: string;
  markerKey: string;
  /** The `data` field: the event as the service serialises it. */
  json: string;
  markerTtlMs: number;
  maxlen: number;
  producer: string;
  /** '' for none. */
  group: string;
  /** 0: no pacing. */
  backlogLimit: number;
}

/** Native IDMP from Redis 8.6 on, the script before; asking for IDMP on an older server is bad input. */
export function choosePublishMode(version: readonly [number, number, number], requested: PublishMode | 'auto' = 'auto'): PublishMode {
  const native = versionAtLeast(version, 8, 6);
  if (requested === 'idmp' && !native) throw badInput(`XADD IDMP needs Redis 8.6 or later; this server is ${version.join('.')}: use the script (mode lua)`);
  return requested === 'auto' ? (native ? 'idmp' : 'lua') : requested;
}

/** Pure: what one publish sends, given the server's version. */
export function planPublish(opts: PublishOptions, version: readonly [number, number, number], keyPrefix = ''): PublishPlan {
  const id = opts.idempotencyId ?? opts.event.history_id;
  if (!id && !opts.markerKey) throw badInput('publishIdempotent needs an idempotency id: the event has no history_id and no idempotencyId or markerKey was given');
  const markerTtlMs = opts.markerTtlMs ?? DEFAULT_MARKER_TTL_MS;
  if (!Number.isSafeInteger(markerTtlMs) || markerTtlMs <= 0) throw badInput(`marker TTL ${markerTtlMs} ms must be a positive whole number`);
  const maxlen = opts.maxlen ?? STREAM_MAXLEN;
  if (!Number.isSafeInteger(maxlen) || maxlen <= 0) throw badInput(`MAXLEN ${maxlen} must be a positive whole number`);
  const backlogLimit = opts.backlogLimit ?? backlogLimitFor(maxlen);
  if (!Number.isSafeInteger(backlogLimit) || backlogLimit < 0 || backlogLimit > maxlen) {
    throw badInput(`backlog limit ${backlogLimit} must be a whole number from 0 (no pacing) to MAXLEN ${maxlen}: above MAXLEN, unread entries are trimmed`);
  }
  return {
    mode: choosePublishMode(version, opts.mode),
    stream: opts.stream,
    markerKey: opts.markerKey ?? markerKeyFor(opts.stream, id!, { keyPrefix, markerPrefix: opts.markerPrefix }),
    json: serializeEvent(opts.event),
    markerTtlMs,
    maxlen,
    producer: opts.producer ?? DEFAULT_PRODUCER,
    group: opts.group ?? DIGEST_GROUP,
    backlogLimit,
  };
}

export interface ScriptCall {
  script: 'publishIdempotent' | 'publishIdmp';
  args: Array<string | number>;
}

/**
 * One script call publishing every plan (same stream, mode, TTL, MAXLEN, producer, group and
 * backlog limit): a batch costs one round of script overhead, and each event in it is still
 * checked and added atomically.
 * Script: numkeys, the stream, the markers, then TTL, MAXLEN, group, backlog limit and the JSONs.
 * IDMP (8.6+): the stream, then producer, MAXLEN, group, backlog limit, and iid + JSON per event
 * (XADD key IDMP <producer> <iid> MAXLEN ~ n * data <json>), the marker key as the iid, so both
 * modes dedupe on the same thing.
 */
export function batchCall(plans: readonly PublishPlan[]): ScriptCall {
  const first = plans[0];
  if (!first) throw new Error('batchCall needs at least one publish');
  for (const p of plans) {
    if (!sameTarget(p, first)) throw new Error('a publish batch must share stream, mode, marker TTL, MAXLEN, producer, group and backlog limit');
  }
  if (first.mode === 'idmp') {
    return { script: 'publishIdmp', args: [first.stream, first.producer, first.maxlen, first.group, first.backlogLimit, ...plans.flatMap((p) => [p.markerKey, p.json])] };
  }
  return {
    script: 'publishIdempotent',
    args: [1 + plans.length, first.stream, ...plans.map((p) => p.markerKey), first.markerTtlMs, first.maxlen, first.group, first.backlogLimit, ...plans.map((p) => p.json)],
  };
}

function sameTarget(a: PublishPlan, b: PublishPlan): boolean {
  return a.stream === b.stream && a.mode === b.mode && a.markerTtlMs === b.markerTtlMs && a.maxlen === b.maxlen && a.producer === b.producer && a.group === b.group && a.backlogLimit === b.backlogLimit;
}

/** What a publish script says about the stream after its call. */
export interface BacklogState {
  /** Entries after the group's last-delivered-id (every entry when the group does not exist),
   * counted up to the backlog limit; null when not counted (no limit). */
  unread: number | null;
  groupExists: boolean;
  /** The group's last-delivered-id, null without the group. */
  lastDeliveredId: string | null;
}

export interface BatchReply {
  state: BacklogState;
  /** One per plan; null: not published because the backlog was at the limit (retry later). */
  results: Array<PublishResult | null>;
}

const OUTCOMES: Record<number, PublishOutcome> = {
  [SCRIPT_CODES.ADDED]: 'added',
  [SCRIPT_CODES.ADDED_OVER_STALE_MARKER]: 're-added',
  [SCRIPT_CODES.REPEAT_PRESENT]: 'repeat',
  [SCRIPT_CODES.REPEAT_DELIVERED]: 'repeat-delivered',
};

const HEADER = 3;

/** Reads a batch reply: the stream's backlog state and one result per plan (see the script's
 * header), or the mapped error of a refusal code. */
export function readBatchReply(reply: unknown, plans: readonly PublishPlan[]): BatchReply {
  if (typeof reply === 'number') throw scriptError(reply, plans[0]?.stream ?? '?');
  if (!Array.isArray(reply) || reply.length !== HEADER + plans.length * 2) throw new DoctorError('INTERNAL', `unexpected publish reply ${JSON.stringify(reply).slice(0, 200)}`);
  const unread = Number(reply[0]);
  const state: BacklogState = { unread: unread < 0 ? null : unread, groupExists: Number(reply[1]) === 1, lastDeliveredId: reply[2] ? String(reply[2]) : null };
  const results = plans.map((p, i) => {
    const code = Number(reply[HEADER + 2 * i + 1]);
    if (code === SCRIPT_CODES.NO_ROOM) return null;
    const outcome = OUTCOMES[code];
    if (!outcome) throw scriptError(code, p.markerKey);
    return { id: String(reply[HEADER + 2 * i]), duplicate: outcome === 'repeat' || outcome === 'repeat-delivered', outcome, markerKey: p.markerKey, mode: p.mode };
  });
  return { state, results };
}

const versions = new WeakMap<object, Promise<[number, number, number]>>();

/** The server version, asked once per client. */
export function cachedVersion(client: RedisClient): Promise<[number, number, number]> {
  let v = versions.get(client);
  if (!v) {
    v = serverVersion(client);
    versions.set(client, v);
  }
  return v;
}

export function clientKeyPrefix(client: RedisClient): string {
  return client.options.keyPrefix ?? '';
}

/** One script call for `plans` (see batchCall): the backlog state and a result or null (no room) per plan. */
export async function publishCall(client: RedisClient, plans: readonly PublishPlan[]): Promise<BatchReply> {
  const call = batchCall(plans);
  return readBatchReply(await withScripts(client)[call.script](...call.args), plans);
}

/**
 * The group's backlog on `stream` as the publish script counts it (a script call with no event:
 * nothing is written): unread entries up to `backlogLimit`, whether `group` exists, its
 * last-delivered-id. Cost: XINFO GROUPS plus reading up to backlogLimit entries on the server.
 */
export async function streamBacklog(client: RedisClient, stream: string, opts: { group?: string; backlogLimit: number }): Promise<BacklogState> {
  const reply = await withScripts(client).publishIdempotent(1, stream, 1, 1, opts.group ?? DIGEST_GROUP, opts.backlogLimit);
  return readBatchReply(reply, []).state;
}

/** Events per script call. */
export const SCRIPT_BATCH = 100;
/** Script calls in flight at once. */
const MAX_CALLS_IN_FLIGHT = 32;
/** Script calls in flight at once when each is screened (PaceOptions.screen): the call being run
 * and the next, whose screen overlaps it; a screened call waits in Redis behind one call at most. */
export const SCREENED_CALLS_IN_FLIGHT = 2;
/** Default bound on waiting for the group to read: no progress for this long stops the publish. */
export const DEFAULT_STALL_TIMEOUT_MS = 60_000;

export interface PaceOptions {
  /** Stop (BacklogStallError) when the group reads nothing for this long while the backlog is at
   * the limit; default 60 s. */
  stallTimeoutMs?: number;
  /** Events per second; unset: as fast as the room allows. */
  ratePerSec?: number;
  /** Called while waiting for the group to read (about every poll, 50 ms to 1 s). */
  onWait?(w: { unread: number; backlogLimit: number; published: number; total: number; waitedMs: number }): void;
  /** Called as results arrive: the index given to planAt, and its result. */
  onResult?(index: number, result: PublishResult): void;
  /**
   * Called right before each script call with the indices (as given to planAt) of the events it
   * would publish, retries included; resolves to the indices to leave out: they are not published,
   * not retried and not passed to onResult. Screens run one at a time in call order, and a call is
   * sent the moment its screen resolves; with a screen at most SCREENED_CALLS_IN_FLIGHT calls are
   * in flight, so the screen of one call overlaps the run of the one before, and a call waits in
   * Redis behind that one call at most. The batch after is planned (planAt) while both run, so a
   * screened call costs its screen's round trip, not the planning too. A rejection stops the publish.
   */
  screen?(indices: readonly number[]): Promise<ReadonlySet<number>>;
}

/** The publish stopped because the group read nothing within the stall timeout. */
export class BacklogStallError extends DoctorError {
  constructor(
    message: string,
    readonly published: number,
    readonly remaining: number,
    readonly state: BacklogState,
  ) {
    super('REFUSED', message, { details: { published, remaining, unread: state.unread, lastDeliveredId: state.lastDeliveredId } });
  }
}

/**
 * Publishes `total` events, the i-th planned by `planAt(i)` (null: skip it), all to one target
 * (stream, group, limits), paced to the consumer group: script calls of up to SCRIPT_BATCH events
 * are sent while the room the last reply reported (backlog limit minus unread, minus events in
 * flight) allows; events a call finds no room for are retried; with no room it waits (50 ms,
 * doubling to 1 s) and asks again. With `screen`, each call's events are screened right before it
 * is sent (see PaceOptions.screen). Every result is passed to onResult. Throws BacklogStallError
 * (exit 4) when the group's last-delivered-id does not move for stallTimeoutMs while the backlog
 * is at the limit: what was published has its marker, so publishing the rest again adds only
 * what is missing. Returns the number of events published (added or found).
 */
export async function publishPaced(client: RedisClient, total: number, planAt: (i: number) => PublishPlan | null, opts: PaceOptions = {}): Promise<number> {
  const stallTimeoutMs = opts.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
  /** Planned, not sent: events a call found no room for, and (with a screen) the next batch, planned
   * while the calls in flight run. Sent before any new event is planned. */
  const ready: Array<{ index: number; plan: PublishPlan }> = [];
  let next = 0;
  let target: PublishPlan | undefined;
  let room = Infinity;
  let state: BacklogState | undefined;
  let inFlightEvents = 0;
  let published = 0;
  let lastProgress = Date.now();
  let poll = 50;
  const started = Date.now();
  type Batch = Array<{ index: number; plan: PublishPlan }>;
  /** `size`: the events taken; `done`: those sent (what the screen kept) and the reply (null: none sent). */
  const inFlight: Array<{ size: number; done: Promise<{ batch: Batch; reply: BatchReply | null }> }> = [];
  const maxCalls = opts.screen ? SCREENED_CALLS_IN_FLIGHT : MAX_CALLS_IN_FLIGHT;
  // the screens, one after another in call order; one starts at once (its statement sent before
  // dispatch returns) when none is running
  let screens: Promise<unknown> = Promise.resolve();
  let screening = 0;
  const dispatch = (batch: Batch): Promise<{ batch: Batch; reply: BatchReply | null }> => {
    const screen = opts.screen;
    if (!screen) return publishCall(client, batch.map((b) => b.plan)).then((reply) => ({ batch, reply }));
    const run = async () => {
      try {
        const drop = await screen(batch.map((b) => b.index));
        const kept = drop.size ? batch.filter((b) => !drop.has(b.index)) : batch;
        // sent here, before the next screen starts: nothing runs between this screen and this call
        return { batch: kept, reply: kept.length ? publishCall(client, kept.map((b) => b.plan)) : null };
      } finally {
        screening--;
      }
    };
    const sent = screening++ === 0 ? run() : screens.then(run);
    screens = sent;
    return sent.then(async ({ batch: kept, reply }) => ({ batch: kept, reply: reply && (await reply) }));
  };
  const roomFrom = (s: BacklogState) => (target!.backlogLimit > 0 ? target!.backlogLimit - (s.unread ?? 0) : Infinity);
  const observe = (s: BacklogState) => {
    if (state && s.lastDeliveredId !== state.lastDeliveredId) lastProgress = Date.now();
    state = s;
    room = roomFrom(s);
  };

  const take = (n: number) => {
    const batch: Array<{ index: number; plan: PublishPlan }> = [];
    batch.push(...ready.splice(0, n));
    while (batch.length < n && next < total) {
      const index = next++;
      const plan = planAt(index);
      if (!plan) continue;
      if (!target) target = plan;
      else if (!sameTarget(plan, target)) throw new Error('publishPaced: every plan must share stream, mode, marker TTL, MAXLEN, producer, group and backlog limit');
      batch.push({ index, plan });
    }
    return batch;
  };

  const perCall = opts.ratePerSec ? Math.max(1, Math.min(SCRIPT_BATCH, Math.floor(opts.ratePerSec / 10))) : SCRIPT_BATCH;
  let sent = 0;
  for (;;) {
    // fill the window while there is room
    while (inFlight.length < maxCalls && room - inFlightEvents > 0 && (ready.length || next < total)) {
      const batch = take(Math.min(perCall, room - inFlightEvents));
      if (!batch.length) break;
      if (!state && target!.backlogLimit > 0) {
        // the first call tells us the room; until then send one batch only
        room = batch.length;
      }
      const done = dispatch(batch);
      done.catch(() => undefined); // awaited in order below; this only keeps an early failure from being "unhandled"
      inFlight.push({ size: batch.length, done });
      inFlightEvents += batch.length;
      sent += batch.length;
      if (opts.ratePerSec) {
        const wait = rateDelayMs(sent, Date.now() - started, opts.ratePerSec);
        if (wait > 0) await sleep(wait);
      }
    }
    // With a screen only two calls are in flight: plan the next batch now, while the last one's
    // screen (its statement already sent) and the call before it run
    if (opts.screen && !ready.length && next < total) ready.push(...take(perCall));
    if (inFlight.length) {
      const { size, done } = inFlight.shift()!;
      const { batch, reply: r } = await done;
      inFlightEvents -= size;
      // every event screened out: no call, nothing learnt about the stream
      if (!r) continue;
      observe(r.state);
      let progressed = false;
      r.results.forEach((res, k) => {
        if (res === null) ready.push(batch[k]!);
        else {
          published++;
          progressed = true;
          opts.onResult?.(batch[k]!.index, res);
        }
      });
      if (progressed) {
        lastProgress = Date.now();
        poll = 50;
      }
      continue;
    }
    if (!ready.length && next >= total) return published;
    // no room: wait for the group to read, then ask again
    const waitedMs = Date.now() - lastProgress;
    if (waitedMs >= stallTimeoutMs) {
      const s = state!;
      const remaining = ready.length + (total - next);
      const t = target!;
      throw new BacklogStallError(
        `consumer group "${t.group}" on ${t.stream} read nothing for ${formatDuration(waitedMs)} while its unread backlog stayed at the limit ` +
          `(${s.unread ?? '?'} of ${t.backlogLimit}, MAXLEN ~ ${t.maxlen})${s.groupExists ? '' : ' (the group does not exist: nothing reads the stream)'}: ` +
          `published ${published}, ${remaining} not sent; start the workers, then publish the rest again (markers keep the published ones from being added twice)`,
        published,
        remaining,
        s,
      );
    }
    opts.onWait?.({ unread: state?.unread ?? 0, backlogLimit: target!.backlogLimit, published, total, waitedMs });
    await sleep(Math.min(poll, Math.max(1, stallTimeoutMs - waitedMs)));
    poll = Math.min(1000, poll * 2);
    observe(await streamBacklog(client, target!.stream, { group: target!.group, backlogLimit: target!.backlogLimit }));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Publishes `event` once: a repeat (same idempotency id within the marker TTL, its entry still
 * there or delivered to the group) returns the first id. Paced like publishPaced: at the backlog
 * limit it waits for the group to read, up to `stallTimeoutMs` (default 60 s), then throws
 * BacklogStallError (REFUSED, exit 4). Errors: REFUSED for a stream key or marker of another type.
 */
export async function publishIdempotent(client: RedisClient, opts: PublishOptions & Pick<PaceOptions, 'stallTimeoutMs'>): Promise<PublishResult> {
  const plan = planPublish(opts, await cachedVersion(client), clientKeyPrefix(client));
  return (await publishBatch(client, [plan], { stallTimeoutMs: opts.stallTimeoutMs }))[0]!;
}

/** Publishes plans (one target, see batchCall) in script calls of SCRIPT_BATCH, paced to the group
 * (publishPaced); results in the order of `plans`. */
export async function publishBatch(client: RedisClient, plans: readonly PublishPlan[], opts: PaceOptions = {}): Promise<PublishResult[]> {
  const out: PublishResult[] = new Array(plans.length);
  await publishPaced(client, plans.length, (i) => plans[i]!, {
    ...opts,
    onResult: (i, r) => {
      out[i] = r;
      opts.onResult?.(i, r);
    },
  });
  return out;
}
