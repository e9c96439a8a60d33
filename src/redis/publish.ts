// Idempotent, atomic publish of a DigestGenerateEvent: one script checks a marker key, XADDs with
// the service's MAXLEN ~, and stores the new entry id in the marker with a TTL. A repeat gets the
// first entry id back and adds nothing. Redis 8.6+ has this natively (XADD ... IDMP): used there.
import { STREAM_MAXLEN } from '../core/contract.js';
import { serializeEvent, type DigestGenerateEvent } from '../core/event.js';
import { DoctorError, badInput } from '../errors.js';
import { serverVersion, versionAtLeast, type RedisClient } from './connect.js';
import { scriptError, withScripts } from './scripts.js';

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
}

export interface PublishResult {
  /** The new entry's id, or the first entry's id for a repeat. */
  id: string;
  duplicate: boolean;
  markerKey: string;
  mode: PublishMode;
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
  return {
    mode: choosePublishMode(version, opts.mode),
    stream: opts.stream,
    markerKey: opts.markerKey ?? markerKeyFor(opts.stream, id!, { keyPrefix, markerPrefix: opts.markerPrefix }),
    json: serializeEvent(opts.event),
    markerTtlMs,
    maxlen: opts.maxlen ?? STREAM_MAXLEN,
    producer: opts.producer ?? DEFAULT_PRODUCER,
  };
}

export interface ScriptCall {
  script: 'publishIdempotent' | 'publishIdmp';
  args: Array<string | number>;
}

/**
 * One script call publishing every plan (same stream, mode, TTL, MAXLEN and producer): a batch
 * costs one round of script overhead, and each event in it is still checked and added atomically.
 * Script: numkeys, the stream, the markers, then TTL, MAXLEN and the JSONs.
 * IDMP (8.6+): XADD key IDMP <producer> <iid> MAXLEN ~ n * data <json> per event, the marker key
 * as the iid, so both modes dedupe on the same thing.
 */
export function batchCall(plans: readonly PublishPlan[]): ScriptCall {
  const first = plans[0];
  if (!first) throw new Error('batchCall needs at least one publish');
  for (const p of plans) {
    if (p.stream !== first.stream || p.mode !== first.mode || p.markerTtlMs !== first.markerTtlMs || p.maxlen !== first.maxlen || p.producer !== first.producer) {
      throw new Error('a publish batch must share stream, mode, marker TTL, MAXLEN and producer');
    }
  }
  if (first.mode === 'idmp') {
    return { script: 'publishIdmp', args: [first.stream, first.producer, first.maxlen, ...plans.flatMap((p) => [p.markerKey, p.json])] };
  }
  return { script: 'publishIdempotent', args: [1 + plans.length, first.stream, ...plans.map((p) => p.markerKey), first.markerTtlMs, first.maxlen, ...plans.map((p) => p.json)] };
}

/** Reads a batch reply: one result per plan, or the mapped error of a negative code. */
export function readBatchReply(reply: unknown, plans: readonly PublishPlan[]): PublishResult[] {
  if (typeof reply === 'number') throw scriptError(reply, plans[0]!.stream);
  if (!Array.isArray(reply) || reply.length !== plans.length * 2) throw new DoctorError('INTERNAL', `unexpected publish reply ${JSON.stringify(reply).slice(0, 200)}`);
  return plans.map((p, i) => {
    const code = Number(reply[2 * i + 1]);
    if (code < 0) throw scriptError(code, p.markerKey);
    return { id: String(reply[2 * i]), duplicate: code === 1, markerKey: p.markerKey, mode: p.mode };
  });
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

/** Publishes `event` once: a repeat (same idempotency id within the marker TTL) returns the first id. */
export async function publishIdempotent(client: RedisClient, opts: PublishOptions): Promise<PublishResult> {
  const plan = planPublish(opts, await cachedVersion(client), clientKeyPrefix(client));
  return (await publishBatch(client, [plan]))[0]!;
}

/** Publishes a batch of plans in one script call (see batchCall). */
export async function publishBatch(client: RedisClient, plans: readonly PublishPlan[]): Promise<PublishResult[]> {
  const call = batchCall(plans);
  return readBatchReply(await withScripts(client)[call.script](...call.args), plans);
}
