import { describe, expect, it } from 'vitest';
import { willAsk, describeWriteTarget } from '../../src/cli/confirm.js';
import { missingReadPrivileges, readRefusalMessage, sqlIdent } from '../../src/core/privileges.js';

const rel = (schema: string, name: string, over: Partial<{ exists: boolean; schemaUsage: boolean; select: boolean }> = {}) => ({ schema, name, exists: true, schemaUsage: true, select: true, ...over });

describe('missingReadPrivileges', () => {
  it('nothing missing: no problems', () => {
    expect(missingReadPrivileges('ro', [rel('public', 'digest_history'), rel('public', 'users')])).toEqual([]);
  });

  it('USAGE once per schema, before the SELECTs, in the order given', () => {
    const out = missingReadPrivileges('ro', [
      rel('public', 'digest_history', { schemaUsage: false, select: false }),
      rel('public', 'users', { schemaUsage: false }),
      rel('digest_doctor', 'runs', { select: false }),
    ]);
    expect(out).toEqual([
      { problem: 'no USAGE on schema public', grant: 'GRANT USAGE ON SCHEMA public TO ro;' },
      { problem: 'no SELECT on public.digest_history', grant: 'GRANT SELECT ON public.digest_history TO ro;' },
      { problem: 'no SELECT on digest_doctor.runs', grant: 'GRANT SELECT ON digest_doctor.runs TO ro;' },
    ]);
  });

  it('a relation that does not exist is not a privilege problem', () => {
    expect(missingReadPrivileges('ro', [rel('s', 'gone', { exists: false, schemaUsage: false, select: false })])).toEqual([]);
  });

  it('quotes names that are not plain lower-case identifiers', () => {
    expect(sqlIdent('Reader')).toBe('"Reader"');
    expect(sqlIdent('a"b')).toBe('"a""b"');
    expect(sqlIdent('dd_reader_1')).toBe('dd_reader_1');
    expect(missingReadPrivileges('Reader', [rel('App', 'digest_history', { select: false })])[0]!.grant).toBe('GRANT SELECT ON "App".digest_history TO "Reader";');
  });

  it('one line: the role, what, each problem, the GRANTs', () => {
    const msg = readRefusalMessage('ro', 'runs', missingReadPrivileges('ro', [rel('digest_doctor', 'runs', { schemaUsage: false, select: false })]));
    expect(msg).toBe(
      'role ro may not read what runs needs (no USAGE on schema digest_doctor; no SELECT on digest_doctor.runs): as the owner or a superuser, run: GRANT USAGE ON SCHEMA digest_doctor TO ro; GRANT SELECT ON digest_doctor.runs TO ro;',
    );
    expect(msg).not.toContain('\n');
  });
});

describe('confirmation', () => {
  it('asks only when stdin and stdout are both terminals and --yes is not given', () => {
    expect(willAsk(false, { isTTY: true }, { isTTY: true })).toBe(true);
    expect(willAsk(true, { isTTY: true }, { isTTY: true })).toBe(false);
    expect(willAsk(false, { isTTY: false }, { isTTY: true })).toBe(false);
    expect(willAsk(false, { isTTY: true }, {})).toBe(false);
  });

  it('names the target as user@host:port/db, never the password', () => {
    expect(describeWriteTarget('postgresql://app:S3cret@db.example:6432/prod?sslmode=require')).toBe('app@db.example:6432/prod');
    expect(describeWriteTarget('postgresql://db/prod')).toBe('db:5432/prod');
  });
});
