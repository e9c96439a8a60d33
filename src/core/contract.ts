// The service contract (../shared/docs/service-contract.md) as data. Everything else reads names from here.

export const STREAMS = {
  'digests.generate': 'stream:digests:generate',
  'digests.generate.dlq': 'stream:digests:generate:dlq',
  'digest.context.prepared': 'stream:digests:context:prepared',
  'digest.context.prepared.dlq': 'stream:digests:context:prepared:dlq',
} as const;
export type StreamLogicalName = keyof typeof STREAMS;
export type StreamKey = (typeof STREAMS)[StreamLogicalName];

export const DIGEST_STREAM = STREAMS['digests.generate'];
export const DIGEST_DLQ_STREAM = STREAMS['digests.generate.dlq'];
export const CONTEXT_STREAM = STREAMS['digest.context.prepared'];
/** Streams `streams` reports on when none is named. */
export const DEFAULT_STREAMS: readonly string[] = [DIGEST_STREAM, DIGEST_DLQ_STREAM, CONTEXT_STREAM];

export const DIGEST_GROUP = 'digest-workers';
export const DIGEST_DLQ_GROUP = 'digest-workers-dlq';
/** Consumer names the service uses: `digest-worker-{pid}`. */
export const WORKER_CONSUMER_PATTERN = /^digest-worker-\d+$/;
/** The group each stream is expected to carry. */
export const EXPECTED_GROUPS: Readonly<Record<string, string>> = {
  [DIGEST_STREAM]: DIGEST_GROUP,
  [DIGEST_DLQ_STREAM]: DIGEST_DLQ_GROUP,
};

/** The single field an entry carries. */
export const EVENT_FIELD = 'data';
/** `XADD key MAXLEN ~ 10000 * data <json>` */
export const STREAM_MAXLEN = 10_000;
/** Worker: entries idle this long are reclaimed with XAUTOCLAIM. */
export const RECLAIM_IDLE_MS = 60_000;
/** Worker: after this many deliveries the entry goes to the DLQ. */
export const MAX_DELIVERIES = 3;

export const TABLE = 'digest_history';
export const STATUSES = ['scheduled', 'pending', 'processing', 'sent', 'failed'] as const;
export type DigestStatus = (typeof STATUSES)[number];
/** What the service treats as "in flight". */
export const IN_FLIGHT_STATUSES = ['scheduled', 'pending', 'processing'] as const satisfies readonly DigestStatus[];
/** The statuses covered by the partial unique index (the service's ON CONFLICT predicate). */
export const UNIQUE_INDEX_STATUSES = ['pending', 'processing'] as const satisfies readonly DigestStatus[];
export const UNIQUE_INDEX_NAME = 'ux_digest_history_user_date';

export function isInFlight(status: string): boolean {
  return (IN_FLIGHT_STATUSES as readonly string[]).includes(status);
}

export const TRIGGERS = ['scheduler', 'manual', 'scheduler_retry'] as const;
export type Trigger = (typeof TRIGGERS)[number];

/** Manual requests within this window of the newest in-flight row get it back. */
export const MANUAL_SUPERSEDE_AFTER_MS = 30_000;

export const DEFAULT_TIME_ZONE = 'Europe/Moscow';

export const LOCK_PREFIX = 'digest:lock:';
/** Bot double-click lock: `SET digest:lock:{user} 1 NX EX 300`. */
export const USER_LOCK_TTL_MS = 300_000;
/** Group pipeline lock `digest:lock:{tenant}:{group}:{window}`. */
export const GROUP_LOCK_TTL_MS = 900_000;

/** Columns of digest_history as the service's migration creates them: name -> udt_name. */
export const DIGEST_HISTORY_COLUMNS: Readonly<Record<string, string>> = {
  id: 'uuid',
  user_id: 'uuid',
  digest_date: 'date',
  content: 'text',
  posts_count: 'int4',
  topics: 'jsonb',
  sent_at: 'timestamptz',
  status: 'varchar',
  created_at: 'timestamptz',
  tenant_id: 'uuid',
};

/** Accepts a logical name (`digests.generate`) or a key (`stream:digests:generate`); any other key passes through. */
export function resolveStreamKey(nameOrKey: string): string {
  return (STREAMS as Record<string, string>)[nameOrKey] ?? nameOrKey;
}

export function isDlqStream(key: string): boolean {
  return key.endsWith(':dlq');
}
