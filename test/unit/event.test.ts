import { describe, expect, it } from 'vitest';
import { buildEvent, eventFields, isoUtc, parseDlqEntry, parseEventJson, serializeEvent, fieldsToRecord } from '../../src/core/event.js';

const USER = '6af5e7d3-e736-46da-bfc1-42786f2ab1c0';
const TENANT = '0b7a43c2-9d4e-4b8a-9f1e-2c3d4e5f6a7b';
const HISTORY = 'dac58a5d-522f-4e94-b803-caee803b53c6';

const full = {
  schema_version: 'v1',
  trace_id: '3f1e7d6c-1111-4222-8333-444455556666',
  occurred_at: '2025-11-25T15:36:57.291323+00:00',
  idempotency_key: `digest:${USER}:2025-11-25`,
  user_id: USER,
  tenant_id: TENANT,
  digest_date: '2025-11-25',
  trigger: 'manual',
  history_id: HISTORY,
  requested_by: '6af5e7d3',
  context: 'channels',
  delivery_channel: 'telegram',
  delivery_format: 'markdown',
};

describe('DigestGenerateEvent parsing', () => {
  it('parses the full event the service writes', () => {
    const r = parseEventJson(JSON.stringify(full));
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.event).toEqual(full);
  });

  it('accepts an event with only the required fields', () => {
    const r = parseEventJson(JSON.stringify({ user_id: USER, tenant_id: TENANT, digest_date: '2025-11-25' }));
    expect(r.ok).toBe(true);
  });

  it('keeps unknown extra fields', () => {
    const r = parseEventJson(JSON.stringify({ ...full, shard: 7, experiment: { a: 1 } }));
    expect(r.ok && r.event).toMatchObject({ shard: 7, experiment: { a: 1 } });
  });

  it('treats null as missing', () => {
    const r = parseEventJson(JSON.stringify({ ...full, history_id: null, requested_by: null }));
    expect(r.ok).toBe(true);
    if (r.ok) expect('history_id' in r.event).toBe(false);
  });

  it('parses a group digest event', () => {
    const g = { ...full, idempotency_key: 'group-digest:g-1:w-9', context: 'group', group_id: 'g-1', group_window_id: 'w-9', window_size_hours: 12, delivery_format: 'telegram_html' };
    expect(parseEventJson(JSON.stringify(g)).ok).toBe(true);
    expect(parseEventJson(JSON.stringify({ ...g, window_size_hours: 5 })).ok).toBe(false);
  });

  it('reports, without throwing, every way data can be bad', () => {
    expect(parseEventJson('{not json')).toMatchObject({ ok: false, error: expect.stringMatching(/not JSON/) });
    expect(parseEventJson('[1,2]')).toMatchObject({ ok: false, error: 'data is not a JSON object' });
    expect(parseEventJson('null')).toMatchObject({ ok: false });
    const missing = parseEventJson(JSON.stringify({ user_id: USER }));
    expect(missing).toMatchObject({ ok: false, error: expect.stringMatching(/tenant_id/) });
    expect(parseEventJson(JSON.stringify({ ...full, user_id: 'bob' }))).toMatchObject({ ok: false, error: expect.stringMatching(/user_id: expected a UUID/) });
    expect(parseEventJson(JSON.stringify({ ...full, trigger: 'cron' }))).toMatchObject({ ok: false, error: expect.stringMatching(/trigger/) });
    expect(parseEventJson(JSON.stringify({ ...full, digest_date: '2025-02-30' }))).toMatchObject({ ok: false });
  });
});

describe('serialisation as the service writes it', () => {
  it('drops nulls and keeps the model field order, unknown fields last', () => {
    const json = serializeEvent({ extra: 1, user_id: USER, schema_version: 'v1', history_id: null, tenant_id: TENANT, digest_date: '2025-11-25' });
    expect(json).toBe(`{"schema_version":"v1","user_id":"${USER}","tenant_id":"${TENANT}","digest_date":"2025-11-25","extra":1}`);
  });

  it('round-trips the full event byte for byte', () => {
    const json = serializeEvent(full);
    expect(json).toBe(JSON.stringify(full));
    const r = parseEventJson(json);
    expect(r.ok && serializeEvent(r.event)).toBe(json);
  });

  it('writes one data field and UTF-8 as is', () => {
    const [field, value] = eventFields({ ...full, requested_by: 'Пётр' });
    expect(field).toBe('data');
    expect(value).toContain('Пётр');
  });

  it('formats occurred_at like Python isoformat', () => {
    expect(isoUtc(new Date('2025-11-25T15:36:57.291Z'))).toBe('2025-11-25T15:36:57.291000+00:00');
  });

  it('builds a fresh event carrying the original history_id', () => {
    const e = buildEvent({ userId: USER, tenantId: TENANT, digestDate: '2025-11-25', trigger: 'scheduler_retry', historyId: HISTORY, extra: { shard: 3 } }, new Date('2025-11-26T08:00:00Z'), 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee');
    expect(e).toMatchObject({
      schema_version: 'v1',
      trace_id: 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee',
      occurred_at: '2025-11-26T08:00:00.000000+00:00',
      idempotency_key: `digest:${USER}:2025-11-25`,
      history_id: HISTORY,
      trigger: 'scheduler_retry',
      context: 'channels',
      delivery_channel: 'telegram',
      delivery_format: 'markdown',
      shard: 3,
    });
    expect('requested_by' in e).toBe(false);
  });
});

describe('DLQ entries', () => {
  it('reads the flat shape', () => {
    const d = parseDlqEntry({
      original_stream: 'stream:digests:generate',
      original_message_id: '1764085017291-0',
      error: 'TimeoutError: llm',
      retry_count: '3',
      failed_at: '2025-11-25T15:40:00+00:00',
      data: JSON.stringify(full),
    });
    expect(d).toMatchObject({ shape: 'flat', originalStream: 'stream:digests:generate', originalMessageId: '1764085017291-0', error: 'TimeoutError: llm', retryCount: 3 });
    expect(d.event.ok && d.event.event.history_id).toBe(HISTORY);
  });

  it('reads the embedded shape and strips the DLQ fields from the event', () => {
    const d = parseDlqEntry({
      data: JSON.stringify({ ...full, dlq_reason: 'max_retries', dlq_reason_details: 'boom', dlq_timestamp: '2025-11-25T15:41:00Z', retry_count: 3, origin_stream: 'stream:digests:generate' }),
    });
    expect(d).toMatchObject({ shape: 'embedded', error: 'max_retries: boom', retryCount: 3, originalStream: 'stream:digests:generate', failedAt: '2025-11-25T15:41:00Z' });
    expect(d.event.ok && d.event.event).toEqual(full);
  });

  it('reports a DLQ entry without usable data', () => {
    expect(parseDlqEntry({ original_stream: 's', error: 'x' }).event).toMatchObject({ ok: false });
    expect(parseDlqEntry({ data: 'zzz' }).event).toMatchObject({ ok: false });
    expect(parseDlqEntry({}).event).toMatchObject({ ok: false });
  });

  it('turns a flat field list into a record', () => {
    expect(fieldsToRecord(['a', '1', 'b', '2'])).toEqual({ a: '1', b: '2' });
  });
});
