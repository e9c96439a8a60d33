import { describe, expect, it } from 'vitest';
import { applyChecks, applyRefusal, poolerFix, urlPort } from '../../src/core/apply-preflight.js';

const direct = { port: 5432, kept: true, problem: null };
const writable = { inRecovery: false, transactionReadOnly: false, defaultReadOnly: false };
const failing = (checks: ReturnType<typeof applyChecks>) => checks.filter((c) => c.verdict === 'fail').map((c) => c.check);

describe('the applying preflight (session, primary, writable)', () => {
  it('passes a direct session on a writable primary, and refuses nothing', () => {
    const checks = applyChecks(direct, writable);
    expect(checks.map((c) => c.check)).toEqual(['session', 'primary', 'writable']);
    expect(failing(checks)).toEqual([]);
    expect(applyRefusal('fix-duplicates --apply', checks)).toBeNull();
  });

  it('refuses port 6543 even when the session tests pass, and tells to use 5432', () => {
    const checks = applyChecks({ ...direct, port: 6543 }, writable);
    expect(failing(checks)).toEqual(['session']);
    expect(checks[0]!.fix).toMatch(/port 6543 is Supabase's transaction pooler: use port 5432/);
  });

  it('refuses a connection that does not keep a session, naming the evidence, the pooler and the direct port', () => {
    const msg = applyRefusal('mark-stale --apply', applyChecks({ port: 6432, kept: false, problem: 'a second client was given this connection\'s server process (pid 7) while it was idle' }, writable))!;
    expect(msg).toMatch(/^refused: mark-stale --apply: session: /);
    expect(msg).toContain('pid 7');
    expect(msg).toMatch(/pgbouncer pool_mode = transaction/);
    expect(msg).toMatch(/this URL uses port 6432/);
    expect(msg).toMatch(/on Supabase use port 5432/);
    expect(msg).toMatch(/nothing was written$/);
  });

  it('a standby is named once (its read-only state follows from it); a read-only database names the setting', () => {
    const standby = applyRefusal('undo --apply', applyChecks(direct, { inRecovery: true, transactionReadOnly: true, defaultReadOnly: false }))!;
    expect(standby).toMatch(/primary: connected to a hot standby or replica \(pg_is_in_recovery\(\) is true\)/);
    expect(standby).not.toMatch(/writable:/);
    const ro = applyRefusal('undo --apply', applyChecks(direct, { ...writable, defaultReadOnly: true }))!;
    expect(ro).toMatch(/writable: the session is read-only: default_transaction_read_only is on/);
    expect(ro).toMatch(/ALTER DATABASE <db> SET default_transaction_read_only = off/);
  });

  it('poolerFix always names the direct port', () => {
    for (const p of [null, 5432, 6432, 6543]) expect(poolerFix(p)).toMatch(/5432/);
  });

  it('urlPort: the URL, then ?port=, then PGPORT, then 5432', () => {
    expect(urlPort('postgresql://u@h:6543/db')).toBe(6543);
    expect(urlPort('postgresql://u@h/db?port=6432')).toBe(6432);
    expect(urlPort('postgresql://u@h/db', { PGPORT: '7000' })).toBe(7000);
    expect(urlPort('postgresql://u@h/db')).toBe(5432);
    expect(urlPort('not a url')).toBeNull();
  });
});
