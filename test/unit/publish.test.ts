import { describe, expect, it } from 'vitest';
import { buildEvent } from '../../src/core/event.js';
import { batchCall, choosePublishMode, hashTagOf, markerKeyFor, planPublish, readBatchReply } from '../../src/redis/publish.js';
import { keyCount, scriptSource, SCRIPTS } from '../../src/redis/scripts.js';

const HISTORY = 'dac58a5d-522f-4e94-b803-caee803b53c6';
const event = buildEvent(
  { userId: '6af5e7d3-e736-46da-bfc1-42786f2ab1c0', tenantId: '0b7a43c2-9d4e-4b8a-9f1e-2c3d4e5f6a7b', digestDate: '2025-11-25', trigger: 'manual', historyId: HISTORY },
  new Date('2025-11-25T15:36:57.291Z'),
  '11111111-2222-4333-8444-555555555555',
);

describe('hash tags and marker keys', () => {
  it('hashes what Redis Cluster hashes', () => {
    expect(hashTagOf('stream:digests:generate')).toBe('stream:digests:generate');
    expect(hashTagOf('{user1000}.following')).toBe('user1000');
    expect(hashTagOf('foo{}{bar}')).toBe('foo{}{bar}');
    expect(hashTagOf('foo{{bar}}zap')).toBe('{bar');
    expect(hashTagOf('foo{bar}{zap}')).toBe('bar');
  });

  it('puts the marker in the stream slot, with or without a key prefix', () => {
    expect(markerKeyFor('stream:digests:generate', HISTORY)).toBe(`{stream:digests:generate}:idem:${HISTORY}`);
    expect(markerKeyFor('stream:digests:generate', HISTORY, { keyPrefix: 'p:' })).toBe(`{p:stream:digests:generate}:idem:${HISTORY}`);
    expect(markerKeyFor('{digests}:generate', 'x', { keyPrefix: 'p:' })).toBe('{digests}:idem:x');
    expect(markerKeyFor('stream:digests:generate', 'x', { keyPrefix: 'app{t7}:', markerPrefix: 'replay:' })).toBe('{t7}:replay:x');
  });

  it('refuses a key hashed whole that holds braces', () => {
    expect(() => markerKeyFor('a{}b', 'x')).toThrow(/unbalanced braces/);
  });
});

describe('planPublish and batchCall', () => {
  it('uses the script before Redis 8.6: numkeys, stream and markers as KEYS; TTL, MAXLEN and the JSONs as ARGV', () => {
    const plan = planPublish({ stream: 'stream:digests:generate', event }, [7, 0, 15]);
    expect(plan).toMatchObject({ mode: 'lua', stream: 'stream:digests:generate', markerKey: `{stream:digests:generate}:idem:${HISTORY}`, markerTtlMs: 86_400_000, maxlen: 10_000 });
    expect(JSON.parse(plan.json)).toMatchObject({ history_id: HISTORY, schema_version: 'v1' });
    const other = planPublish({ stream: 'stream:digests:generate', event, idempotencyId: 'other' }, [7, 0, 15]);
    expect(batchCall([plan, other])).toEqual({
      script: 'publishIdempotent',
      args: [3, 'stream:digests:generate', plan.markerKey, '{stream:digests:generate}:idem:other', 86_400_000, 10_000, plan.json, other.json],
    });
  });

  it('uses native XADD IDMP on Redis 8.6 and later: producer, MAXLEN, then iid and JSON per event', () => {
    const plan = planPublish({ stream: 'stream:digests:generate', event, producer: 'svc' }, [8, 6, 0]);
    expect(plan.mode).toBe('idmp');
    expect(batchCall([plan])).toEqual({ script: 'publishIdmp', args: ['stream:digests:generate', 'svc', 10_000, `{stream:digests:generate}:idem:${HISTORY}`, plan.json] });
    expect(planPublish({ stream: 's', event }, [9, 0, 0]).mode).toBe('idmp');
    expect(planPublish({ stream: 's', event, mode: 'lua' }, [8, 6, 1]).mode).toBe('lua');
    expect(choosePublishMode([8, 5, 9])).toBe('lua');
  });

  it('gates IDMP on the version and needs an idempotency id', () => {
    expect(() => planPublish({ stream: 's', event, mode: 'idmp' }, [8, 4, 0])).toThrow(/8\.6/);
    const { history_id: _h, ...noHistory } = event;
    expect(() => planPublish({ stream: 's', event: noHistory }, [7, 0, 0])).toThrow(/idempotency id/);
    expect(planPublish({ stream: 's', event: noHistory, idempotencyId: 'dlq:1-0' }, [7, 0, 0]).markerKey).toBe('{s}:idem:dlq:1-0');
    expect(() => planPublish({ stream: 's', event, markerTtlMs: 0 }, [7, 0, 0])).toThrow(/TTL/);
  });

  it('a batch shares one stream and one set of options', () => {
    const a = planPublish({ stream: 's', event }, [7, 0, 0]);
    const b = planPublish({ stream: 't', event }, [7, 0, 0]);
    expect(() => batchCall([a, b])).toThrow(/share stream/);
    expect(() => batchCall([])).toThrow(/at least one/);
  });

  it('the IDMP script sends XADD key IDMP <producer> <iid> MAXLEN ~ n * data json', () => {
    expect(scriptSource(SCRIPTS.publishIdmp)).toContain("redis.call('XADD', KEYS[1], 'IDMP', ARGV[1], ARGV[i], 'MAXLEN', '~', ARGV[2], '*', 'data', ARGV[i + 1])");
  });
});

describe('script files and replies', () => {
  it('every script names its key count (or -n) and documents KEYS, ARGV and returns', () => {
    for (const file of Object.values(SCRIPTS)) {
      const text = scriptSource(file);
      expect(text).toMatch(/-- KEYS\[1\]/);
      expect(text).toMatch(/-- Returns/);
      const n = keyCount(file);
      if (n !== undefined) expect((text.match(/-- KEYS\[\d\]/g) ?? []).length).toBe(n);
      else expect(text).toMatch(/-- KEYS\[2\.\.\]/);
      // every key through KEYS: no key is built inside a script
      expect(text).not.toMatch(/\.\.\s*['"]:/);
    }
  });

  it('maps negative codes to named errors', () => {
    const plan = planPublish({ stream: 's', event }, [7, 0, 0]);
    expect(readBatchReply(['1-0', 0], [plan])).toEqual([{ id: '1-0', duplicate: false, markerKey: plan.markerKey, mode: 'lua' }]);
    expect(readBatchReply(['1-0', 1], [plan])[0]!.duplicate).toBe(true);
    expect(() => readBatchReply(-1, [plan])).toThrow(/s is not a stream/);
    expect(() => readBatchReply(['', -2], [plan])).toThrow(/marker .* not a string/);
    expect(() => readBatchReply(['', -9], [plan])).toThrow(/unknown code -9/);
    expect(() => readBatchReply(['1-0'], [plan])).toThrow(/unexpected publish reply/);
  });
});
