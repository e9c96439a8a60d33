// Checks that the configured schema holds a digest_history shaped as the contract says, and that
// the role may read it and whatever else the command reads there (from the catalog, before reading).
import { DIGEST_HISTORY_COLUMNS, TABLE } from '../core/contract.js';
import { missingReadPrivileges, readRefusalMessage } from '../core/privileges.js';
import { DoctorError } from '../errors.js';
import { schemaFlag } from '../core/validate.js';
import type { Db } from './db.js';

export interface ColumnProblem {
  column: string;
  expected: string;
  actual: string | null;
}

/** Pure: compares the live columns with the contract. Extra columns are tolerated. */
export function compareColumns(live: ReadonlyArray<{ column_name: string; udt_name: string }>): ColumnProblem[] {
  const byName = new Map(live.map((c) => [c.column_name, c.udt_name]));
  const problems: ColumnProblem[] = [];
  for (const [column, expected] of Object.entries(DIGEST_HISTORY_COLUMNS)) {
    const actual = byName.get(column) ?? null;
    if (actual !== expected) problems.push({ column, expected, actual });
  }
  return problems;
}

/**
 * REFUSED (exit 4) when the role lacks USAGE on the service schema or SELECT on one of `tables`
 * there (has_schema_privilege / has_table_privilege, asked before anything is read), with the GRANTs
 * that fix it; `what` names the command. Tables that do not exist are left to the caller.
 */
export async function assertReadable(db: Db, tables: readonly string[], what: string): Promise<void> {
  const rows = await db.query<{ schema: string; name: string; exists: boolean; schema_usage: boolean; can_select: boolean; role: string }>('relation_access', [
    tables.map(() => db.ids.schema),
    [...tables],
  ]);
  const problems = missingReadPrivileges(
    rows[0]?.role ?? 'current_user',
    rows.map((r) => ({ schema: r.schema, name: r.name, exists: r.exists, schemaUsage: r.schema_usage, select: r.can_select })),
  );
  if (problems.length) throw new DoctorError('REFUSED', readRefusalMessage(rows[0]!.role, what, problems));
}

/**
 * Throws SCHEMA_MISMATCH (exit 2) naming what is wrong and what to pass instead, or REFUSED (exit 4)
 * when the role may not read digest_history (or the other service tables in `alsoReads`).
 */
export async function assertDigestTable(db: Db, opts: { alsoReads?: readonly string[]; what?: string } = {}): Promise<void> {
  const cols = await db.query<{ column_name: string; udt_name: string }>('table_columns', [db.ids.schema, TABLE]);
  if (cols.length === 0) {
    const [hint] = await db.query<{ schemas: string[] | null }>('schemas_with_table', [TABLE]);
    const where = hint?.schemas?.length ? `; it exists in: ${hint.schemas.map((s) => `"${s}"`).join(', ')} (pass ${hint.schemas.map((s) => schemaFlag('--schema', s)).join(' or ')})` : '; is this the service database?';
    throw new DoctorError('SCHEMA_MISMATCH', `schema "${db.ids.schema}" has no table ${TABLE} on ${db.target}${where}`);
  }
  const problems = compareColumns(cols);
  if (problems.length) {
    const list = problems.map((p) => (p.actual ? `${p.column} is ${p.actual}, expected ${p.expected}` : `${p.column} (${p.expected}) is missing`)).join('; ');
    throw new DoctorError('SCHEMA_MISMATCH', `${db.ids.schema}.${TABLE} does not match the service contract: ${list}; point digest-doctor at the service's database and schema`);
  }
  await assertReadable(db, [TABLE, ...(opts.alsoReads ?? [])], opts.what ?? 'digest-doctor');
}
