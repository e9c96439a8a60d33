// Checks that the configured schema holds a digest_history shaped as the contract says.
import { DIGEST_HISTORY_COLUMNS, TABLE } from '../core/contract.js';
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

/** Throws SCHEMA_MISMATCH (exit 2) naming what is wrong and what to pass instead. */
export async function assertDigestTable(db: Db): Promise<void> {
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
}
