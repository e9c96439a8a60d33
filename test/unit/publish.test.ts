import { describe, expect, it } from 'vitest';
import { buildEvent } from '../../src/core/event.js';
import { backlogLimitFor, batchCall, choosePublishMode, hashTagOf, markerKeyFor, planPublish, readBatchReply } from '../../src/redis/publish.js';
import { lockOutcome } from '../../src/redis/locks.js';
import { readdirSync } from 'node:fs';
import { keyCount, LUA_CODE_TABLE, LUA_DIR, preludeFile, preludesOf, SCRIPT_CODES, scriptError, scriptFile, scriptSource, SCRIPTS } from '../../src/redis/scripts.js';

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
  it('uses the script before Redis 8.6: numkeys, stream and markers as KEYS; TTL, MAXLEN, group, backlog limit and the JSONs as ARGV', () => {
    const plan = planPublish({ stream: 'stream:digests:generate', event }, [7, 0, 15]);
    // the service's MAXLEN ~ 10000 and group; 90% of MAXLEN may be unread, 10% is left for the service's own publishes
    expect(plan).toMatchObject({ mode: 'lua', stream: 'stream:digests:generate', markerKey: `{stream:digests:generate}:idem:${HISTORY}`, markerTtlMs: 86_400_000, maxlen: 10_000, group: 'digest-workers', backlogLimit: 9_000 });
    expect(JSON.parse(plan.json)).toMatchObject({ history_id: HISTORY, schema_version: 'v1' });
    const other = planPublish({ stream: 'stream:digests:generate', event, idempotencyId: 'other' }, [7, 0, 15]);
    expect(batchCall([plan, other])).toEqual({
      script: 'publishIdempotent',
      args: [3, 'stream:digests:generate', plan.markerKey, '{stream:digests:generate}:idem:other', 86_400_000, 10_000, 'digest-workers', 9_000, plan.json, other.json],
    });
  });

  it('the backlog limit is 90% of MAXLEN (at least 1), may be 0 (no pacing), never above MAXLEN', () => {
    expect(backlogLimitFor(10_000)).toBe(9_000);
    expect(backlogLimitFor(50)).toBe(45);
    expect(backlogLimitFor(1)).toBe(1);
    expect(planPublish({ stream: 's', event, maxlen: 50, group: 'g', backlogLimit: 0 }, [7, 0, 0])).toMatchObject({ maxlen: 50, group: 'g', backlogLimit: 0 });
    expect(() => planPublish({ stream: 's', event, maxlen: 50, backlogLimit: 51 }, [7, 0, 0])).toThrow(/backlog limit 51/);
    expect(() => planPublish({ stream: 's', event, maxlen: 0 }, [7, 0, 0])).toThrow(/MAXLEN 0/);
  });

  it('uses native XADD IDMP on Redis 8.6 and later: producer, MAXLEN, group, limit, then iid and JSON per event', () => {
    const plan = planPublish({ stream: 'stream:digests:generate', event, producer: 'svc' }, [8, 6, 0]);
    expect(plan.mode).toBe('idmp');
    expect(batchCall([plan])).toEqual({ script: 'publishIdmp', args: ['stream:digests:generate', 'svc', 10_000, 'digest-workers', 9_000, `{stream:digests:generate}:idem:${HISTORY}`, plan.json] });
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
    expect(scriptSource(SCRIPTS.publishIdmp)).toContain("redis.call('XADD', s.key, 'IDMP', ARGV[1], iid, 'MAXLEN', '~', ARGV[2], '*', 'data', ARGV[i + 1])");
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

  it('reads the header and one outcome per event, and maps refusal codes to named errors', () => {
    const plan = planPublish({ stream: 's', event }, [7, 0, 0]);
    const C = SCRIPT_CODES;
    const head = [3, 1, '5-0'];
    expect(readBatchReply([...head, '1-0', C.ADDED], [plan])).toEqual({
      state: { unread: 3, groupExists: true, lastDeliveredId: '5-0' },
      results: [{ id: '1-0', duplicate: false, outcome: 'added', markerKey: plan.markerKey, mode: 'lua' }],
    });
    expect(readBatchReply([-1, 0, '', '1-0', C.REPEAT_PRESENT], [plan])).toMatchObject({ state: { unread: null, groupExists: false, lastDeliveredId: null }, results: [{ duplicate: true, outcome: 'repeat' }] });
    expect(readBatchReply([...head, '1-0', C.REPEAT_DELIVERED], [plan]).results[0]).toMatchObject({ duplicate: true, outcome: 'repeat-delivered' });
    expect(readBatchReply([...head, '7-0', C.ADDED_OVER_STALE_MARKER], [plan]).results[0]).toMatchObject({ duplicate: false, outcome: 're-added' });
    expect(readBatchReply([...head, '', C.NO_ROOM], [plan]).results).toEqual([null]);
    expect(() => readBatchReply(C.NOT_A_STREAM, [plan])).toThrow(/s is not a stream/);
    expect(() => readBatchReply([...head, '', C.MARKER_WRONG_TYPE], [plan])).toThrow(/marker .* not a string/);
    expect(() => readBatchReply([...head, '', C.MARKER_NOT_AN_ID], [plan])).toThrow(/not a stream entry id/);
    expect(() => readBatchReply([...head, '', -9], [plan])).toThrow(/unknown code -9/);
    expect(() => readBatchReply([...head, '1-0'], [plan])).toThrow(/unexpected publish reply/);
  });
});

describe('one table of script return codes (issue 14)', () => {
  it('every code is distinct: one number, one meaning', () => {
    const values = Object.values(SCRIPT_CODES);
    expect(new Set(values).size).toBe(values.length);
  });

  it('every script returns only codes from the table (by name, never a number of its own), and uses names the table has', () => {
    for (const file of Object.values(SCRIPTS)) {
      const text = scriptFile(file);
      // the script's own results: comments and helper functions (whose returns are counts and
      // comparisons, not results) left out
      const body = text
        .split('\n')
        .filter((l) => !l.trimStart().startsWith('--'))
        .join('\n')
        .replace(/^local function[\s\S]*?^end$/gm, '');
      // a return is a code by name or the script's list of results
      for (const m of body.matchAll(/\breturn\s+([^\n]+)/g)) {
        const what = m[1]!.trim();
        if (/^-?\d/.test(what)) throw new Error(`${file}: returns a bare number: ${what}`);
      }
      // no numeric result code written into the result list either
      expect(body, file).not.toMatch(/out\[#out \+ 1\] = -?\d/);
      // every name used anywhere in what is sent, the preludes' functions included
      for (const [, name] of code(scriptSource(file)).matchAll(/\bC\.([A-Z_]+)/g)) expect(Object.keys(SCRIPT_CODES), `${file}: C.${name}`).toContain(name);
      expect(scriptSource(file).startsWith(LUA_CODE_TABLE)).toBe(true);
    }
  });

  it('the lock callers and the publish callers read the same table: a lock code is never a publish error, nor the reverse', () => {
    expect(lockOutcome(SCRIPT_CODES.LOCK_DONE)).toEqual({ ok: true, outcome: 'ok' });
    expect(lockOutcome(SCRIPT_CODES.LOCK_NOT_HELD)).toEqual({ ok: false, outcome: 'not-held' });
    expect(lockOutcome(SCRIPT_CODES.LOCK_NOT_OWNER)).toEqual({ ok: false, outcome: 'not-owner' });
    // a publish refusal reaching the lock reader is a bug of ours, not "not held"
    expect(() => lockOutcome(SCRIPT_CODES.NOT_A_STREAM)).toThrow(/unknown code/);
    // "not owner" is no publish error: it is reported as an unknown code, never as "not a stream"
    expect(scriptError(SCRIPT_CODES.LOCK_NOT_OWNER, 'k').message).toMatch(/unknown code/);
    expect(scriptError(SCRIPT_CODES.NOT_A_STREAM, 'k').message).toMatch(/k is not a stream/);
  });
});

/** Lua text without its comment lines. */
function code(text: string): string {
  return text
    .split('\n')
    .filter((l) => !l.trimStart().startsWith('--'))
    .join('\n');
}

/** The names of the `local function`s a Lua text defines. */
function definedFunctions(text: string): string[] {
  return [...code(text).matchAll(/^local function ([A-Za-z_]\w*)\(/gm)].map((m) => m[1]!);
}

const PRELUDES = readdirSync(`${LUA_DIR}prelude`)
  .filter((f) => f.endsWith('.lua'))
  .map((f) => f.slice(0, -'.lua'.length));

// Lua 5.1 keywords and the globals Redis gives a script (the only ones the scripts may call unqualified)
const LUA_WORDS = new Set(['and', 'or', 'not', 'if', 'then', 'elseif', 'else', 'end', 'for', 'in', 'do', 'while', 'repeat', 'until', 'return', 'local', 'function', 'nil', 'true', 'false', 'break']);
const LUA_GLOBALS = new Set(['type', 'tonumber', 'tostring', 'ipairs', 'pairs', 'unpack', 'select', 'error', 'assert', 'pcall']);

describe('shared Lua preludes (issue 14)', () => {
  it('there are preludes, and each script names only preludes that exist', () => {
    expect(PRELUDES.sort()).toEqual(['lock', 'publish']);
    for (const file of Object.values(SCRIPTS)) for (const name of preludesOf(scriptFile(file))) expect(PRELUDES, `${file}: ${name}`).toContain(name);
    expect(() => preludesOf('-- Prelude: no-such-prelude\nreturn 1\n', 'lua/x-1.lua')).toThrow(/^lua\/x-1\.lua names prelude no-such-prelude: .*ENOENT/);
    expect(() => preludeFile('../publish-idmp-1')).toThrow(/not <lowercase-name>/);
  });

  it('what is sent is the code table, the named preludes, then the script; a script gets no prelude it does not name', () => {
    for (const file of Object.values(SCRIPTS)) {
      const names = preludesOf(scriptFile(file));
      expect(scriptSource(file)).toBe(LUA_CODE_TABLE + names.map((n) => `-- lua/prelude/${n}.lua\n${preludeFile(n)}`).join('') + `-- lua/${file}.lua\n` + scriptFile(file));
    }
    expect(preludesOf(scriptFile(SCRIPTS.releaseLock))).toEqual(['lock']);
    expect(preludesOf(scriptFile(SCRIPTS.extendLock))).toEqual(['lock']);
    expect(preludesOf(scriptFile(SCRIPTS.publishIdempotent))).toEqual(['publish']);
    expect(preludesOf(scriptFile(SCRIPTS.publishIdmp))).toEqual(['publish']);
    expect(scriptSource(SCRIPTS.releaseLock)).not.toContain('cmpId');
    expect(scriptSource(SCRIPTS.publishIdmp)).not.toContain('lockRefusal');
  });

  it('a function is written once: no script or prelude defines one another file defines', () => {
    const where = new Map<string, string[]>();
    const files = [...Object.values(SCRIPTS).map((f) => [`lua/${f}.lua`, scriptFile(f)] as const), ...PRELUDES.map((n) => [`lua/prelude/${n}.lua`, preludeFile(n)] as const)];
    for (const [path, text] of files) for (const fn of definedFunctions(text)) where.set(fn, [...(where.get(fn) ?? []), path]);
    expect([...where].filter(([, paths]) => paths.length > 1)).toEqual([]);
    // the lock scripts' owner check and the publish scripts' id comparison and backlog count live in the preludes
    expect(where.get('lockRefusal')).toEqual(['lua/prelude/lock.lua']);
    for (const fn of ['cmpId', 'openStream', 'countUnread', 'atLimit']) expect(where.get(fn), fn).toEqual(['lua/prelude/publish.lua']);
  });

  it('a prelude defines functions only (nothing runs at load) and its header names each one', () => {
    for (const name of PRELUDES) {
      const text = preludeFile(name);
      expect(text.startsWith('-- '), name).toBe(true);
      expect(preludesOf(text), name).toEqual([]);
      // outside its functions, nothing but blank lines
      expect(code(text).replace(/^local function[\s\S]*?^end$/gm, '').trim(), name).toBe('');
      const fns = definedFunctions(text);
      expect(fns.length, name).toBeGreaterThan(0);
      // the helper of a helper (cmpNum, countUnread) is documented beside its code; the ones scripts call, in the header
      const header = text.slice(0, text.search(/^[^-\n]/m));
      const called = fns.filter((fn) => Object.values(SCRIPTS).some((f) => new RegExp(`\\b${fn}\\(`).test(code(scriptFile(f)))));
      for (const fn of called) expect(header, `${name}: ${fn}`).toMatch(new RegExp(`^-- ${fn}\\(`, 'm'));
    }
  });

  it('every function a script calls is defined in what is sent (SCRIPT LOAD does not catch a missing one; the IDMP script cannot run here)', () => {
    for (const file of Object.values(SCRIPTS)) {
      const sent = code(scriptSource(file));
      const defined = new Set(definedFunctions(sent));
      // unqualified calls: a name then `(`, not after `.` or `:` (redis.call, string.match)
      for (const m of sent.matchAll(/(?<![.:\w])([A-Za-z_]\w*)\s*\(/g)) {
        const fn = m[1]!;
        if (LUA_WORDS.has(fn)) continue;
        expect(defined.has(fn) || LUA_GLOBALS.has(fn), `${file} calls ${fn}`).toBe(true);
      }
    }
  });
});
