// Asking the server what an expression of digest_history (a CHECK constraint, an index predicate)
// says about a row with a given status, instead of parsing the text the catalog prints. The
// expression, as pg_get_expr prints it, is evaluated in a SELECT over a row of the table's own
// column types: `status` set to the candidate, every other column NULL. Read-only transactions
// only, so it works on a read-only session or a standby and can write nothing whatever the
// expression calls.
import { TABLE } from '../core/contract.js';
import { serverMessageOf, sqlstateOf } from '../core/faults.js';
import type { StatusCheckVerdict } from '../core/repair.js';
import type { Db } from './db.js';
import { quoteIdent } from './sql.js';

interface Column {
  name: string;
  type: string;
}

/** `SELECT <expr> FROM (SELECT $1::<status type> AS status, NULL::<type> AS <col>, ...) AS r`. */
function overOneRow(columns: readonly Column[], expr: string, as: 'not-false' | 'true'): string {
  const cols = columns.map((c) => (c.name === 'status' ? `$1::${c.type} AS ${quoteIdent(c.name)}` : `NULL::${c.type} AS ${quoteIdent(c.name)}`));
  return `SELECT ((${expr}) IS ${as === 'true' ? 'TRUE' : 'NOT FALSE'}) AS verdict FROM (SELECT ${cols.join(', ')}) AS r`;
}

/** overOneRow for every candidate of `$1` (text[]) at once: one row (candidate, verdict) per candidate, in order. */
function overRows(columns: readonly Column[], expr: string, as: 'not-false' | 'true'): string {
  const cols = columns.map((c) => (c.name === 'status' ? `s.dd_candidate::${c.type} AS ${quoteIdent(c.name)}` : `NULL::${c.type} AS ${quoteIdent(c.name)}`));
  return `SELECT s.dd_candidate AS candidate, ((${expr}) IS ${as === 'true' ? 'TRUE' : 'NOT FALSE'}) AS verdict ` +
    `FROM unnest($1::text[]) WITH ORDINALITY AS s(dd_candidate, dd_ord) CROSS JOIN LATERAL (SELECT ${cols.join(', ')}) AS r ORDER BY s.dd_ord`;
}

/**
 * For each expression: the candidates for which it holds (`as: 'true'`, an index predicate) or is
 * not false (`'not-false'`, a CHECK constraint: NULL passes), or `{ error }` when the server could
 * not evaluate it. One READ ONLY transaction; each expression is evaluated over every candidate in
 * one statement under a savepoint, and, when that fails (a candidate the status type or a domain
 * rejects, an expression that raises), candidate by candidate under savepoints as before, so the
 * first failing candidate's error is the one reported. Must not be called inside a transaction of
 * the caller.
 */
export async function evaluateOverStatuses(db: Db, exprs: readonly string[], candidates: readonly string[], as: 'not-false' | 'true'): Promise<Array<string[] | { error: string }>> {
  if (!exprs.length) return [];
  const columns = await db.query<Column>('table_row_types', [db.ids.schema, TABLE]);
  return db.transaction(async (tx) => {
    const out: Array<string[] | { error: string }> = [];
    for (const expr of exprs) {
      await tx.raw('SAVEPOINT dd_eval');
      try {
        const rows = await tx.raw<{ candidate: string; verdict: boolean }>(overRows(columns, expr, as), [candidates]);
        await tx.raw('RELEASE SAVEPOINT dd_eval');
        out.push(rows.filter((r) => r.verdict).map((r) => r.candidate));
        continue;
      } catch {
        await tx.raw('ROLLBACK TO SAVEPOINT dd_eval');
      }
      const text = overOneRow(columns, expr, as);
      const holds: string[] = [];
      let error: string | undefined;
      for (const c of candidates) {
        await tx.raw('SAVEPOINT dd_eval');
        try {
          const [row] = await tx.raw<{ verdict: boolean }>(text, [c]);
          if (row?.verdict) holds.push(c);
          await tx.raw('RELEASE SAVEPOINT dd_eval');
        } catch (err) {
          await tx.raw('ROLLBACK TO SAVEPOINT dd_eval');
          error = `${sqlstateOf(err) ?? ''} ${serverMessageOf(err)}`.trim();
          break;
        }
      }
      out.push(error ? { error } : holds);
    }
    return out;
  }, 'BEGIN READ ONLY');
}

/** Every CHECK on digest_history.status, judged by the server over `candidates`. */
export async function judgeStatusChecks(db: Db, candidates: readonly string[]): Promise<StatusCheckVerdict[]> {
  const checks = await db.query<{ name: string; expr: string }>('repair_status_checks', [db.ids.schema, TABLE]);
  const verdicts = await evaluateOverStatuses(db, checks.map((c) => c.expr), candidates, 'not-false');
  return checks.map((c, i) => {
    const v = verdicts[i]!;
    return Array.isArray(v) ? { name: c.name, accepts: v } : { name: c.name, accepts: null, error: v.error };
  });
}
