// Idempotent, atomic publish of a DigestGenerateEvent: one script checks a marker key, XADDs with
// the service's MAXLEN ~, and stores the new entry id in the marker with a TTL. A repeat gets the
// first entry id back and adds nothing. Redis 8.6+ has this natively (XADD ... IDMP): used there.
import type { ChainableCommander } from 'ioredis';
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
  markerKey: string;
  /** The script (method name) and its KEYS then ARGV. */
  script: 'publishIdempotent' | 'publishIdmp';
  args: Array<string | number>;
}

/** Native IDMP from Redis 8.6 on, the script before; asking for IDMP on an older server is bad input. */
export function choosePublishMode(version: readonly [number, number, number], requested: PublishMode | 'auto' = 'auto'): PublishMode {
  const native = versionAtLeast(version, 8, 6);
  if (requested === 'idmp' && !native) throw badInput(`XADD IDMP needs Redis 8.6 or later; this server is ${version.join('.')}: use the script (mode lua)`);
  return requested === 'auto' ? (native ? 'idmp' : 'lua') : requested;
}

/** Pure: what to send for one publish, given the server's version. */
export function planPublish(opts: PublishOptions, version: readonly [number, number, number], keyPrefix = ''): PublishPlan {
  const id = opts.idempotencyId ?? opts.event.history_id;
  if (!id && !opts.markerKey) throw badInput('publishIdempotent needs an idempotency id: the event has no history_id and no idempotencyId or markerKey was given');
  const ttl = opts.markerTtlMs ?? DEFAULT_MARKER_TTL_MS;
  if (!Number.isSafeInteger(ttl) || ttl <= 0) throw badInput(`marker TTL ${ttl} ms must be a positive whole number`);
  const maxlen = opts.maxlen ?? STREAM_MAXLEN;
  const json = serializeEvent(opts.event);
  const markerKey = opts.markerKey ?? markerKeyFor(opts.stream, id!, { keyPrefix, markerPrefix: opts.markerPrefix });
  const mode = choosePublishMode(version, opts.mode);
  if (mode === 'idmp') {
    // IDMP keys on (producer, iid); the marker key names the iid so both modes dedupe on the same thing.
    return { mode, markerKey, script: 'publishIdmp', args: [opts.stream, opts.producer ?? DEFAULT_PRODUCER, markerKey, maxlen, json] };
  }
  return { mode, markerKey, script: 'publishIdempotent', args: [markerKey, opts.stream, ttl, maxlen, json] };
}

/** Reads one script reply: { id, duplicate } or the mapped error of a negative code. */
export function readPublishReply(reply: unknown, plan: PublishPlan): PublishResult {
  if (typeof reply === 'number') throw scriptError(reply, reply === -2 ? plan.markerKey : String(plan.args[plan.mode === 'lua' ? 1 : 0]));
  if (!Array.isArray(reply) || typeof reply[0] !== 'string') throw new DoctorError('INTERNAL', `unexpected publish reply ${JSON.stringify(reply)}`);
  return { id: reply[0], duplicate: Number(reply[1]) === 1, markerKey: plan.markerKey, mode: plan.mode };
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
  const scripted = withScripts(client);
  return readPublishReply(await scripted[plan.script](...plan.args), plan);
}

/** Queues one publish on a pipeline (the script must be registered: withScripts(client) first). */
export function queuePublish(pipeline: ChainableCommander, plan: PublishPlan): void {
  (pipeline as unknown as Record<string, (...a: Array<string | number>) => unknown>)[plan.script]!(...plan.args);
}
