// A replay scene: failed, sent and pending rows, and DLQ entries of both shapes pointing at them.
import { randomUUID } from 'node:crypto';
import { DIGEST_DLQ_STREAM, DIGEST_STREAM } from '../../src/core/contract.js';
import { serializeEvent } from '../../src/core/event.js';
import type { RedisClient } from '../../src/redis/connect.js';
import { insertRows, TENANT, type TestSchema } from './pg.js';

export const DAY = '2025-11-25';
export const USERS = [
  '6af5e7d3-e736-46da-bfc1-42786f2ab1c0',
  '1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f',
  '9e8d7c6b-5a49-4382-a1b0-c9d8e7f6a5b4',
  '3d3d3d3d-aaaa-4bbb-8ccc-dddddddddddd',
  '4e4e4e4e-aaaa-4bbb-8ccc-eeeeeeeeeeee',
] as const;
export const OTHER_TENANT = '5f5f5f5f-1111-4222-8333-444444444444';

export interface ReplayScene {
  failed: string[];
  /** A failed row with tenant_id NULL: the event takes the user's tenant. */
  failedNoTenant: string;
  sent: string;
  pending: string;
  missing: string;
  dlqIds: { flat: string; embedded: string; sent: string; missing: string; malformed: string };
}

/** An event as the service published it (a DLQ copy's `data`); no history_id when `historyId` is undefined. */
export function originalEvent(userId: string, historyId: string | undefined, tenantId = TENANT, day = DAY) {
  return {
    schema_version: 'v1',
    trace_id: randomUUID(),
    occurred_at: `${day}T15:36:57.291000+00:00`,
    idempotency_key: `digest:${userId}:${day}`,
    user_id: userId,
    tenant_id: tenantId,
    digest_date: day,
    trigger: 'manual',
    history_id: historyId,
    requested_by: '10.0.0.7',
    context: 'channels',
    delivery_channel: 'telegram',
    delivery_format: 'markdown',
  };
}

export async function seedReplayScene(t: TestSchema, redis: RedisClient): Promise<ReplayScene> {
  const [f1, f2, noTenant, sent, pending] = await insertRows(t, [
    { userId: USERS[0], digestDate: DAY, status: 'failed', createdAt: '2025-11-25T15:36:57Z' },
    { userId: USERS[1], digestDate: DAY, status: 'failed', createdAt: '2025-11-25T06:00:00Z' },
    { userId: USERS[2], digestDate: DAY, status: 'failed', createdAt: '2025-11-25T07:00:00Z', tenantId: null },
    { userId: USERS[3], digestDate: DAY, status: 'sent', createdAt: '2025-11-25T08:00:00Z', sentAt: '2025-11-25T08:01:00Z' },
    { userId: USERS[4], digestDate: DAY, status: 'pending', createdAt: '2025-11-25T09:00:00Z' },
    // another day: --failed --date must not pick it up
    { userId: USERS[0], digestDate: '2025-11-24', status: 'failed', createdAt: '2025-11-24T09:00:00Z' },
  ]);
  const missing = randomUUID();
  const flat = (await redis.xadd(DIGEST_DLQ_STREAM, '*', 'original_stream', DIGEST_STREAM, 'original_message_id', '1764085017291-0', 'error', 'LLM timeout',
    'retry_count', '3', 'failed_at', '2025-11-25T15:40:00+00:00', 'data', serializeEvent(originalEvent(USERS[4], pending!))))!;
  const embedded = (await redis.xadd(DIGEST_DLQ_STREAM, '*', 'data',
    JSON.stringify({ ...originalEvent(USERS[0], f1!), dlq_reason: 'max_retries', dlq_reason_details: 'boom', dlq_timestamp: '2025-11-25T15:41:00+00:00', retry_count: 3, origin_stream: DIGEST_STREAM })))!;
  const sentDlq = (await redis.xadd(DIGEST_DLQ_STREAM, '*', 'data', serializeEvent(originalEvent(USERS[3], sent!))))!;
  const missingDlq = (await redis.xadd(DIGEST_DLQ_STREAM, '*', 'data', serializeEvent(originalEvent(USERS[0], missing))))!;
  const malformed = (await redis.xadd(DIGEST_DLQ_STREAM, '*', 'data', '{"user_id": "not json'))!;
  return {
    failed: [f1!, f2!, noTenant!],
    failedNoTenant: noTenant!,
    sent: sent!,
    pending: pending!,
    missing,
    dlqIds: { flat, embedded, sent: sentDlq, missing: missingDlq, malformed },
  };
}
