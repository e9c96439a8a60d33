// DigestGenerateEvent: parsing every shape the service writes, and serialising exactly as it does.
import * as z from 'zod';
import { EVENT_FIELD, TRIGGERS } from './contract.js';
import { isDay, isUuid } from './validate.js';

const uuid = z.string().refine(isUuid, 'expected a UUID');
const day = z.string().refine(isDay, 'expected YYYY-MM-DD');

/** Field order of the service's model; serialisation follows it, unknown fields come after. */
export const EVENT_FIELDS = [
  'schema_version',
  'trace_id',
  'occurred_at',
  'idempotency_key',
  'user_id',
  'tenant_id',
  'digest_date',
  'trigger',
  'history_id',
  'requested_by',
  'context',
  'group_id',
  'group_window_id',
  'window_size_hours',
  'delivery_channel',
  'delivery_format',
] as const;
const EVENT_FIELD_SET: ReadonlySet<string> = new Set(EVENT_FIELDS);

/**
 * The worker requires user_id, tenant_id and digest_date; everything else may be missing.
 * Unknown fields are kept (the worker ignores them, a replay must carry them on).
 */
export const DigestGenerateEventSchema = z
  .object({
    schema_version: z.string().optional(),
    trace_id: z.string().optional(),
    occurred_at: z.string().optional(),
    idempotency_key: z.string().optional(),
    user_id: uuid,
    tenant_id: uuid,
    digest_date: day,
    trigger: z.enum(TRIGGERS).optional(),
    history_id: uuid.optional(),
    requested_by: z.string().optional(),
    context: z.enum(['channels', 'group']).optional(),
    group_id: z.string().optional(),
    group_window_id: z.string().optional(),
    window_size_hours: z.union([z.literal(4), z.literal(6), z.literal(12), z.literal(24)]).optional(),
    delivery_channel: z.string().optional(),
    delivery_format: z.string().optional(),
  })
  .loose();
export type DigestGenerateEvent = z.infer<typeof DigestGenerateEventSchema>;

function dropNulls(value: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  // for-in over own keys: no [k, v] array per field (replay builds 100,000 events in a run)
  for (const k in value) {
    if (!Object.hasOwn(value, k)) continue;
    const v = value[k];
    if (v !== null && v !== undefined) out[k] = v;
  }
  return out;
}

export type EventParseResult =
  | { ok: true; event: DigestGenerateEvent }
  | { ok: false; error: string };

/** Parses the JSON held in an entry's `data` field. Never throws. */
export function parseEventJson(json: string): EventParseResult {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (e) {
    return { ok: false, error: `data is not JSON: ${(e as Error).message}` };
  }
  return parseEventObject(raw);
}

export function parseEventObject(raw: unknown): EventParseResult {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { ok: false, error: 'data is not a JSON object' };
  }
  const result = DigestGenerateEventSchema.safeParse(dropNulls(raw as Record<string, unknown>));
  if (result.success) return { ok: true, event: result.data };
  const issues = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
  return { ok: false, error: `event schema: ${issues.join('; ')}` };
}

/** JSON exactly as the publisher writes it: UTF-8, nulls dropped, the model's field order. */
export function serializeEvent(event: Record<string, unknown>): string {
  // one pass, no intermediate copy: the model's fields in order, then the others, nulls dropped
  const ordered: Record<string, unknown> = {};
  for (const k of EVENT_FIELDS) {
    const v = Object.hasOwn(event, k) ? event[k] : undefined;
    if (v !== null && v !== undefined) ordered[k] = v;
  }
  for (const k in event) {
    if (!Object.hasOwn(event, k) || EVENT_FIELD_SET.has(k)) continue;
    const v = event[k];
    if (v !== null && v !== undefined) ordered[k] = v;
  }
  return JSON.stringify(ordered);
}

/** The field/value list passed to XADD after the `*`. */
export function eventFields(event: Record<string, unknown>): [typeof EVENT_FIELD, string] {
  return [EVENT_FIELD, serializeEvent(event)];
}

/** ISO-8601 UTC with microseconds and `+00:00`, as Python's `datetime.isoformat()` prints it. */
export function isoUtc(at: Date): string {
  // a replay stamps many events with one instant: format it once
  const ms = at.getTime();
  if (ms !== lastIso.ms) lastIso = { ms, text: at.toISOString().replace(/\.(\d{3})Z$/, '.$1000+00:00') };
  return lastIso.text;
}
let lastIso = { ms: NaN, text: '' };

export interface BuildEventInput {
  userId: string;
  tenantId: string;
  digestDate: string;
  trigger: (typeof TRIGGERS)[number];
  historyId?: string;
  requestedBy?: string;
  /** Fields carried over from an earlier copy of the event (a replay keeps them). */
  extra?: Record<string, unknown>;
}

/** A fresh event as the service builds it: new trace_id and occurred_at, the given history_id. */
export function buildEvent(input: BuildEventInput, now: Date, traceId: string): DigestGenerateEvent {
  const own = {
    schema_version: 'v1',
    trace_id: traceId,
    occurred_at: isoUtc(now),
    idempotency_key: `digest:${input.userId.toLowerCase()}:${input.digestDate}`,
    user_id: input.userId.toLowerCase(),
    tenant_id: input.tenantId.toLowerCase(),
    digest_date: input.digestDate,
    trigger: input.trigger,
    history_id: input.historyId?.toLowerCase(),
    requested_by: input.requestedBy,
    context: (input.extra?.context as string | undefined) ?? 'channels',
    delivery_channel: (input.extra?.delivery_channel as string | undefined) ?? 'telegram',
    delivery_format: (input.extra?.delivery_format as string | undefined) ?? 'markdown',
  };
  // carried-over fields first, ours win; no spread when there are none (a spread is slow per event)
  const event = input.extra ? Object.assign({}, input.extra, own) : own;
  const parsed = parseEventObject(event);
  if (!parsed.ok) throw new Error(`built an invalid event: ${parsed.error}`);
  return parsed.event;
}

// ---- DLQ entries -------------------------------------------------------------------------------

export interface DlqEntry {
  shape: 'flat' | 'embedded';
  originalStream?: string;
  originalMessageId?: string;
  error?: string;
  retryCount?: number;
  failedAt?: string;
  event: EventParseResult;
}

const DLQ_META = ['dlq_reason', 'dlq_reason_details', 'dlq_timestamp', 'retry_count', 'origin_stream'];

/**
 * Both DLQ shapes: (a) flat fields original_stream, original_message_id, error, retry_count,
 * failed_at, data; (b) one data field: the event plus dlq_reason, dlq_reason_details,
 * dlq_timestamp, retry_count, origin_stream.
 */
export function parseDlqEntry(fields: Record<string, string>): DlqEntry {
  const data = fields[EVENT_FIELD];
  if ('original_stream' in fields || 'original_message_id' in fields || 'failed_at' in fields) {
    return {
      shape: 'flat',
      originalStream: fields.original_stream,
      originalMessageId: fields.original_message_id,
      error: fields.error,
      retryCount: fields.retry_count === undefined ? undefined : Number(fields.retry_count),
      failedAt: fields.failed_at,
      event: data === undefined ? { ok: false, error: 'DLQ entry has no data field' } : parseEventJson(data),
    };
  }
  if (data === undefined) return { shape: 'embedded', event: { ok: false, error: 'DLQ entry has no data field' } };
  let raw: unknown;
  try {
    raw = JSON.parse(data);
  } catch (e) {
    return { shape: 'embedded', event: { ok: false, error: `data is not JSON: ${(e as Error).message}` } };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { shape: 'embedded', event: { ok: false, error: 'data is not a JSON object' } };
  }
  const obj = { ...(raw as Record<string, unknown>) };
  const meta: Record<string, unknown> = {};
  for (const k of DLQ_META) {
    if (k in obj) {
      meta[k] = obj[k];
      delete obj[k];
    }
  }
  const reason = [meta.dlq_reason, meta.dlq_reason_details].filter((v) => v != null).join(': ');
  return {
    shape: 'embedded',
    originalStream: meta.origin_stream as string | undefined,
    error: reason || undefined,
    retryCount: meta.retry_count == null ? undefined : Number(meta.retry_count),
    failedAt: meta.dlq_timestamp == null ? undefined : String(meta.dlq_timestamp),
    event: parseEventObject(obj),
  };
}

/** Redis returns fields as a flat [k, v, k, v] list. */
export function fieldsToRecord(flat: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]!] = flat[i + 1]!;
  return out;
}
