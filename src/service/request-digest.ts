// The corrected digest request: the flow the service should have had. The user's lock keeps double
// clicks apart, the partial unique index makes the insert atomic even without the lock, and the
// idempotent publish makes a repeated publish of one row add one entry.
import { randomUUID } from 'node:crypto';
import { DEFAULT_TIME_ZONE, DIGEST_STREAM, IN_FLIGHT_STATUSES, UNIQUE_INDEX_NAME, USER_LOCK_TTL_MS, type Trigger } from '../core/contract.js';
import { correctedDecision, type DecisionAction } from '../core/decision.js';
import { buildEvent } from '../core/event.js';
import { serviceDay, userLockKey } from '../core/keys.js';
import { assertUuid } from '../core/validate.js';
import { DoctorError } from '../errors.js';
import type { Db } from '../postgres/db.js';
import type { RedisClient } from '../redis/connect.js';
import { acquireLock, releaseLock, type Lock } from '../redis/locks.js';
import { publishIdempotent, type PublishOptions, type PublishResult } from '../redis/publish.js';

export interface RequestDigestInput {
  userId: string;
  tenantId: string;
  trigger: Trigger;
  /** The instant that decides the service day; default the database's now(). */
  now?: Date;
  /** Default Europe/Moscow. */
  timeZone?: string;
  requestedBy?: string;
  /** How long to wait for the user's lock while another request holds it (default 5 s). */
  lockWaitMs?: number;
  lockTtlMs?: number;
  /** Default `stream:digests:generate`. */
  stream?: string;
  /** Marker options passed to publishIdempotent. */
  publish?: Pick<PublishOptions, 'markerPrefix' | 'markerTtlMs' | 'maxlen' | 'mode' | 'producer'>;
}

export interface DigestRow {
  id: string;
  status: string;
  digestDate: string;
  createdAt: string;
  tenantId: string | null;
}

export interface RequestDigestResult {
  /** `insert`: a new pending row; `return`: an existing row came back (in flight, or sent). */
  action: Extract<DecisionAction, 'insert' | 'return'>;
  row: DigestRow;
  /** The stream entry of the new row; null when nothing was published. */
  published: PublishResult | null;
  reason: string;
  /** false when the lock had expired (or was taken over) before we released it. */
  lockReleasedCleanly: boolean;
}

/** The subset of Db requestDigest uses: a service may pass anything that runs our named queries. */
export type RequestDb = Pick<Db, 'query' | 'ids'>;

interface RowRecord {
  id: string;
  status: string;
  digest_date: string;
  created_at: Date;
  tenant_id: string | null;
}

function toRow(r: RowRecord): DigestRow {
  return { id: r.id, status: r.status, digestDate: r.digest_date, createdAt: r.created_at.toISOString(), tenantId: r.tenant_id };
}

/** Takes the user's lock, polling while another request holds it; BUSY after `waitMs`. */
async function takeLock(redis: RedisClient, key: string, ttlMs: number, waitMs: number): Promise<Lock> {
  const until = Date.now() + waitMs;
  for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
    const lock = await acquireLock(redis, key, ttlMs);
    if (lock) return lock;
    if (Date.now() >= until) throw new DoctorError('BUSY', `another request holds ${key}: try again shortly`);
    await new Promise((r) => setTimeout(r, delay));
  }
}

/** 42P10: ON CONFLICT names no matching unique index: the migration has not run. */
function missingIndex(err: unknown, db: RequestDb): unknown {
  if ((err as { code?: string })?.code !== '42P10') return err;
  return new DoctorError(
    'REFUSED',
    `the partial unique index ${UNIQUE_INDEX_NAME} on ${db.ids.schema}.digest_history is missing, so an insert cannot be made atomic: run digest-doctor migrate --apply first`,
    { cause: err },
  );
}

/** Inserts the row, or returns the in-flight row that won the race. */
async function insertOrExisting(db: RequestDb, input: RequestDigestInput, day: string): Promise<{ row: DigestRow; inserted: boolean }> {
  let inserted: RowRecord[];
  try {
    inserted = await db.query<RowRecord>('request_insert', [randomUUID(), input.userId, input.tenantId, day]);
  } catch (err) {
    throw missingIndex(err, db);
  }
  if (inserted[0]) return { row: toRow(inserted[0]), inserted: true };
  const [existing] = await db.query<RowRecord>('request_inflight_row', [input.userId, day, [...IN_FLIGHT_STATUSES]]);
  if (!existing) throw new DoctorError('INTERNAL', `insert for user ${input.userId} on ${day} conflicted but no in-flight row is there`);
  return { row: toRow(existing), inserted: false };
}

/**
 * One digest request for (user, today): at most one in-flight row and one stream entry however many
 * requests race. Needs the partial unique index ux_digest_history_user_date. When the publish of a
 * new row fails, the row is marked failed (it would otherwise sit pending with no event) and the
 * error is rethrown.
 */
export async function requestDigest(db: RequestDb, redis: RedisClient, input: RequestDigestInput): Promise<RequestDigestResult> {
  const userId = assertUuid(input.userId, 'user id');
  const tenantId = assertUuid(input.tenantId, 'tenant id');
  const lock = await takeLock(redis, userLockKey(userId), input.lockTtlMs ?? USER_LOCK_TTL_MS, input.lockWaitMs ?? 5_000);
  let result: Omit<RequestDigestResult, 'lockReleasedCleanly'>;
  try {
    result = await decideAndWrite(db, redis, { ...input, userId, tenantId });
  } catch (err) {
    await releaseLock(redis, lock).catch(() => undefined);
    throw err;
  }
  // owner-checked: a lock that expired and was taken by another request is left to its owner
  const released = await releaseLock(redis, lock);
  return { ...result, lockReleasedCleanly: released.ok };
}

async function decideAndWrite(db: RequestDb, redis: RedisClient, input: RequestDigestInput): Promise<Omit<RequestDigestResult, 'lockReleasedCleanly'>> {
  const now = input.now ?? (await db.query<{ now: Date }>('db_now'))[0]!.now;
  const day = serviceDay(now, input.timeZone ?? DEFAULT_TIME_ZONE);
  // created_at to the microsecond: rows of one double click are often inside one millisecond.
  const rows = await db.query<{ id: string; status: string; createdUs: number }>('request_day_rows', [input.userId, day]);
  const decision = correctedDecision(rows, input.trigger);
  if (decision.action === 'return') {
    const [row] = await db.query<RowRecord>('request_row', [decision.rowId]);
    return { action: 'return', row: toRow(row!), published: null, reason: decision.reason };
  }
  const { row, inserted } = await insertOrExisting(db, input, day);
  if (!inserted) return { action: 'return', row, published: null, reason: 'another request inserted the in-flight row first: returned, nothing published' };
  const event = buildEvent(
    { userId: input.userId, tenantId: input.tenantId, digestDate: day, trigger: input.trigger, historyId: row.id, requestedBy: input.requestedBy },
    new Date(row.createdAt),
    randomUUID(),
  );
  let published: PublishResult;
  try {
    published = await publishIdempotent(redis, { ...input.publish, stream: input.stream ?? DIGEST_STREAM, event });
  } catch (err) {
    // a pending row with no event is stuck (the scheduler skips pending rows): fail it, so the next request starts afresh
    await db.query('request_fail_row', [row.id]).catch(() => undefined);
    throw err;
  }
  return { action: 'insert', row, published, reason: decision.reason };
}
