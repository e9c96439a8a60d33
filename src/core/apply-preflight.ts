// The applying preflight every writing command runs before it writes anything (migrate --apply and
// --down --apply, fix-duplicates / mark-stale / undo --apply): a primary, a writable session, and a
// real session (advisory locks and SET need one; a transaction pooler does not give one). Pure:
// facts in, Findings (core/finding.ts) and the one-line refusal out. The facts are gathered by
// postgres/session.ts.
import { finding, findingsInline, type Finding } from './finding.js';

/** Supabase's transaction pooler (Supavisor) listens on 6543; its session pooler and the database itself on 5432. */
export const SUPABASE_TRANSACTION_POOLER_PORT = 6543;
export const SUPABASE_DIRECT_PORT = 5432;

export interface SessionEvidence {
  /** The port of the configured URL (null when it cannot be told). */
  port: number | null;
  /** Every session test passed: the backend stayed, a session setting survived, a second client got another backend. */
  kept: boolean;
  /** What failed, in words, when `kept` is false. */
  problem: string | null;
}

export interface WriteFacts {
  /** pg_is_in_recovery(): a hot standby or a replica. */
  inRecovery: boolean;
  /** transaction_read_only of the session (on for every transaction of a standby). */
  transactionReadOnly: boolean;
  /** default_transaction_read_only (ALTER DATABASE / ROLE ... SET default_transaction_read_only = on). */
  defaultReadOnly: boolean;
}

/**
 * The advice for a connection that is not one session: names the pooler kinds and the direct port.
 * Supabase: the direct database and the session pooler listen on 5432, the transaction pooler on
 * 6543 (https://supabase.com/docs/guides/database/connecting-to-postgres).
 */
export function poolerFix(port: number | null): string {
  const where = port === SUPABASE_TRANSACTION_POOLER_PORT ? 'port 6543 is Supabase\'s transaction pooler: use port 5432 (the direct connection or the session pooler)' : `connect to the database directly, not through a transaction pooler${port ? ` (this URL uses port ${port})` : ''}; on Supabase use port ${SUPABASE_DIRECT_PORT} (direct or session pooler), not ${SUPABASE_TRANSACTION_POOLER_PORT}`;
  return `${where}; a session-mode pooler (pgbouncer pool_mode = session) works too`;
}

export function sessionCheck(e: SessionEvidence): Finding {
  if (e.port === SUPABASE_TRANSACTION_POOLER_PORT) {
    return finding('session', 'fail', 'port 6543 is the Supabase transaction pooler: advisory locks and SET do not hold across statements there', poolerFix(e.port));
  }
  if (!e.kept) {
    return finding(
      'session',
      'fail',
      `the connection does not keep one session (${e.problem ?? 'the server process or a setting changed between statements'}): a transaction pooler such as pgbouncer pool_mode = transaction or Supabase's pooler on port 6543; advisory locks and SET need one session`,
      poolerFix(e.port),
    );
  }
  return finding('session', 'ok', 'one session: the server process and a session setting stay between statements, and a second client gets a process of its own');
}

export function primaryCheck(f: WriteFacts): Finding {
  return f.inRecovery
    ? finding('primary', 'fail', 'connected to a hot standby or replica (pg_is_in_recovery() is true): it cannot be written', 'point --database-url at the primary')
    : finding('primary', 'ok', 'connected to the primary');
}

export function writableCheck(f: WriteFacts): Finding {
  if (!(f.transactionReadOnly || f.defaultReadOnly)) return finding('writable', 'ok', 'the session may write');
  const why = f.defaultReadOnly
    ? 'default_transaction_read_only is on (set for the database, the role or the server)'
    : 'transaction_read_only is on';
  return finding(
    'writable',
    'fail',
    `the session is read-only: ${why}`,
    f.inRecovery ? 'point --database-url at the primary' : 'use a read-write database or role (ALTER DATABASE <db> SET default_transaction_read_only = off, or another role), or target_session_attrs=read-write',
  );
}

/** The three applying checks, in the order they are shown: session, primary, writable. */
export function applyChecks(session: SessionEvidence, f: WriteFacts): Finding[] {
  return [sessionCheck(session), primaryCheck(f), writableCheck(f)];
}

/**
 * The refusal line of `command` for the failing checks (null when none fails): each problem and its
 * fix, nothing written. E.g. `refused: fix-duplicates --apply: primary: connected to a hot standby
 * ... (fix: point --database-url at the primary); nothing was written`.
 */
export function applyRefusal(command: string, checks: readonly Finding[]): string | null {
  const failing = checks.filter((c) => c.verdict === 'fail');
  if (!failing.length) return null;
  // A standby is also read-only: one reason is enough.
  const shown = failing.some((c) => c.check === 'primary') ? failing.filter((c) => c.check !== 'writable') : failing;
  return `refused: ${command}: ${findingsInline(shown)}; nothing was written`;
}

/** The message when the advisory lock turns out not to be held by the backend running a statement. */
export function lostSessionMessage(command: string, detail: string, port: number | null): string {
  return `refused: ${command}: the connection changed server process mid-run (${detail}): a transaction pooler; stopped before the next statement (fix: ${poolerFix(port)})`;
}

/** The port a postgres URL names (5432 when it names none; PGPORT when the URL leaves it to libpq). */
export function urlPort(url: string, env: Record<string, string | undefined> = {}): number | null {
  try {
    const u = new URL(url);
    const p = u.port || new URLSearchParams(u.search).get('port') || env.PGPORT || '5432';
    const n = Number(p);
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}
