import { describe, expect, it } from 'vitest';
import { colorEnabled } from '../../src/cli/options.js';
import { loadColor, makeStyle } from '../../src/cli/render.js';
import { redactText, redactUrl, secretsOf } from '../../src/core/redact.js';
import { normalizePgUrl } from '../../src/postgres/db.js';
import { quoteIdent, quoteLiteral, renderSql } from '../../src/postgres/sql.js';
import { assertSchemaName, schemaFlag, shellQuote } from '../../src/core/validate.js';
import { compareColumns } from '../../src/postgres/table.js';
import { parseRedisUrls } from '../../src/redis/connect.js';
import { DIGEST_HISTORY_COLUMNS } from '../../src/core/contract.js';

describe('secrets', () => {
  it('masks URL passwords anywhere in a text', () => {
    expect(redactUrl('postgresql://app:s3cr%40t@db:5432/x')).toBe('postgresql://app:***@db:5432/x');
    expect(redactText('failed: redis://:pw123@h:6379 and postgres://u:hunter2@h/db')).toBe('failed: redis://:***@h:6379 and postgres://u:***@h/db');
  });

  it('masks a known secret even where a driver printed it bare', () => {
    const secrets = secretsOf(['postgresql://u:hunter2@h/db', 'redis://:p%40ss@h']);
    expect(secrets).toEqual(expect.arrayContaining(['hunter2', 'p%40ss', 'p@ss']));
    expect(redactText('password authentication failed (hunter2) / p@ss', secrets)).toBe('password authentication failed (***) / ***');
  });
});

describe('Postgres URL', () => {
  it('strips a SQLAlchemy driver suffix', () => {
    expect(normalizePgUrl('postgresql+asyncpg://postgres:pw@db:5432/app')).toBe('postgresql://postgres:pw@db:5432/app');
    expect(normalizePgUrl('postgres+psycopg2://u@h/d')).toBe('postgresql://u@h/d');
  });

  it('rejects what does not parse, without echoing the password', () => {
    expect(() => normalizePgUrl('mysql://u:pw@h/d')).toThrow(/scheme "mysql:" is not postgres/);
    try {
      normalizePgUrl('postgresql://u:topsecret@[bad');
      expect.unreachable();
    } catch (e) {
      expect((e as Error).message).toMatch(/does not parse/);
      expect((e as Error).message).not.toContain('topsecret');
    }
  });

  it('quotes identifiers it substitutes', () => {
    expect(renderSql('SELECT * FROM {{schema}}.t, {{state}}.u', { schema: 'a"b', state: 'dd' })).toBe('SELECT * FROM "a""b".t, "dd".u');
  });
});

describe('Redis URL', () => {
  it('parses one node or a cluster list', () => {
    expect(parseRedisUrls('redis://:pw@127.0.0.1:6380/2')).toEqual([{ host: '127.0.0.1', port: 6380, username: undefined, password: 'pw', db: 2, tls: false }]);
    expect(parseRedisUrls('redis://a:7000, redis://b:7001').map((n) => `${n.host}:${n.port}`)).toEqual(['a:7000', 'b:7001']);
    expect(() => parseRedisUrls('http://x')).toThrow(/not redis/);
    expect(() => parseRedisUrls('')).toThrow(/empty/);
  });
});

describe('table shape check', () => {
  const live = Object.entries(DIGEST_HISTORY_COLUMNS).map(([column_name, udt_name]) => ({ column_name, udt_name }));

  it('accepts the contract, and extra columns', () => {
    expect(compareColumns(live)).toEqual([]);
    expect(compareColumns([...live, { column_name: 'updated_at', udt_name: 'timestamptz' }])).toEqual([]);
  });

  it('names a missing or retyped column', () => {
    const broken = live.filter((c) => c.column_name !== 'sent_at').map((c) => (c.column_name === 'status' ? { ...c, udt_name: 'text' } : c));
    expect(compareColumns(broken)).toEqual([
      { column: 'sent_at', expected: 'timestamptz', actual: null },
      { column: 'status', expected: 'varchar', actual: 'text' },
    ]);
  });
});

describe('colour', () => {
  it('follows NO_COLOR, --no-color, FORCE_COLOR and the TTY', () => {
    expect(colorEnabled(true, {}, true)).toBe(true);
    expect(colorEnabled(true, {}, false)).toBe(false);
    expect(colorEnabled(true, { NO_COLOR: '1' }, true)).toBe(false);
    expect(colorEnabled(false, {}, true)).toBe(false);
    expect(colorEnabled(true, { FORCE_COLOR: '1' }, false)).toBe(true);
    expect(colorEnabled(true, { TERM: 'dumb' }, true)).toBe(false);
  });

  it('renders tables and verdicts without escape codes when colour is off', async () => {
    const s = makeStyle(false);
    const out = s.table(['a', 'b'], [[1, null]]) + s.verdict('fail') + s.ok('x');
    expect(out).not.toMatch(/\x1b\[/);
    expect(out).toContain('[FAIL]');
    await loadColor();
    expect(makeStyle(true).verdict('fail')).toMatch(/\x1b\[/);
  });
});

describe('lazy command loading', () => {
  it('finds the command operand, skipping the values of the global options', async () => {
    const { buildProgram } = await import('../../src/cli/main.js');
    const { commandOperand } = await import('../../src/cli/commands/index.js');
    const program = await buildProgram(['--version']);
    expect(commandOperand(program, ['--schema', 'runs', 'inspect', '--user', 'x'])).toBe('inspect');
    expect(commandOperand(program, ['--schema=runs', '--json', 'migrate', 'status'])).toBe('migrate');
    expect(commandOperand(program, ['--tz', 'UTC', '--no-color'])).toBeUndefined();
    expect(commandOperand(program, ['--', 'undo'])).toBe('undo');
  });

  it('registers only the command being run, and every command for help', async () => {
    const { buildProgram } = await import('../../src/cli/main.js');
    const names = async (args: string[]) => (await buildProgram(args)).commands.map((c) => c.name());
    expect(await names(['--schema', 'x', 'streams', '--scan'])).toEqual(['streams']);
    expect(await names(['--help'])).toEqual(['inspect', 'streams', 'migrate', 'fix-duplicates', 'mark-stale', 'undo', 'runs', 'replay', 'check', 'demo']);
    expect(await names(['inpsect'])).toHaveLength(10);
    expect(await names(['--version'])).toEqual([]);
  });
});

describe('schema names and shell hints (issue 10, identifiers)', () => {
  it('accepts any name Postgres accepts as a quoted identifier', () => {
    for (const name of ['public', 'my-schema', 'Upper', 'with space', `it's "quoted"`, 'схема', 'a$b', '-dash', 'x'.repeat(63), 'é'.repeat(31)]) {
      expect(assertSchemaName(name, '--schema')).toBe(name);
    }
  });
  it('refuses what no identifier can be: empty, NUL, more than 63 bytes (Postgres would truncate it)', () => {
    expect(() => assertSchemaName('', '--schema')).toThrow(/--schema is empty/);
    expect(() => assertSchemaName('a\0b', '--schema')).toThrow(/NUL/);
    expect(() => assertSchemaName('x'.repeat(64), '--state-schema')).toThrow(/64 bytes long.*at most 63/);
    expect(() => assertSchemaName('é'.repeat(32), '--schema')).toThrow(/64 bytes/);
  });
  it('quotes for a POSIX shell only what needs it', () => {
    expect(shellQuote('public')).toBe('public');
    expect(shellQuote('my-schema')).toBe('my-schema');
    expect(shellQuote('with space')).toBe(`'with space'`);
    expect(shellQuote(`it's`)).toBe(`'it'\\''s'`);
    expect(shellQuote('a$b`c\\d"e')).toBe(`'a$b\`c\\d"e'`);
    expect(shellQuote('')).toBe(`''`);
    expect(schemaFlag('--schema', 'Upper Case')).toBe(`--schema 'Upper Case'`);
    expect(schemaFlag('--schema', '-dash')).toBe('--schema=-dash');
  });
  it('quotes identifiers and literals for SQL', () => {
    expect(quoteIdent('a"b')).toBe('"a""b"');
    expect(quoteLiteral(`it's`)).toBe(`'it''s'`);
    expect(quoteLiteral('a\\b')).toBe(`E'a\\\\b'`);
    expect(renderSql('{{schema}}.t {{state_lit}}', { schema: 'My "S"', state: `o'k` })).toBe(`"My ""S""".t 'o''k'`);
  });
});
