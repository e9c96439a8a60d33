// The tool's own schema (--state-schema, default digest_doctor). Created or upgraded only by an
// applying command (ensureState); everything that only reads takes it as it is (readState): absent
// means nothing recorded yet, an earlier layout is read in that layout, and a privilege the role
// lacks is a refusal naming the GRANT, checked in the catalog before any read.
// Each part keeps its DDL in sql/state/<part>.sql (CREATE ... IF NOT EXISTS only).
import { missingReadPrivileges, readRefusalMessage } from '../core/privileges.js';
import { DoctorError } from '../errors.js';
import { loadSqlFile, renderSql } from './sql.js';
import type { Db } from './db.js';

const ensured = new WeakMap<Db, Set<string>>();

/** The relations each part's DDL leaves behind, with their kind (pg_class.relkind). */
const PART_RELATIONS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  audit: { runs: 'r', audit_batches: 'r', audit: 'v' },
  ledger: { schema_migrations: 'r' },
};

export interface StateRelation {
  /** pg_class.relkind: r a table, v a view. */
  kind: string;
  select: boolean;
}

export interface StateFacts {
  role: string;
  /** The state schema's relations by name (the catalog lists them whatever the privileges). */
  relations: Map<string, StateRelation>;
}

async function stateFacts(db: Db): Promise<{ exists: boolean; usage: boolean; role: string; relations: Map<string, StateRelation> }> {
  const [row] = await db.query<{ schema_exists: boolean; schema_usage: boolean; role: string; relations: Array<{ name: string; kind: string; select: boolean }> }>('state_relations', [db.ids.state]);
  return {
    exists: row!.schema_exists,
    usage: row!.schema_usage,
    role: row!.role,
    relations: new Map(row!.relations.map((r) => [r.name, { kind: r.kind, select: r.select }])),
  };
}

/**
 * The state schema as it is, for a command that only reads `needs` (relation names in it). Writes
 * nothing. Returns null when the schema does not exist (nothing recorded yet); a needed relation
 * that does not exist is simply absent from `relations` (the caller reads it as empty). Throws
 * REFUSED (exit 4) when the schema exists but the role lacks USAGE on it, or SELECT on a needed
 * relation that exists, with the GRANTs that fix it; `what` names the command in that message.
 */
export async function readState(db: Db, needs: readonly string[], what: string): Promise<StateFacts | null> {
  const f = await stateFacts(db);
  if (!f.exists) return null;
  const problems = missingReadPrivileges(
    f.role,
    needs.map((name) => {
      const rel = f.relations.get(name);
      return { schema: db.ids.state, name, exists: rel !== undefined, schemaUsage: f.usage, select: rel?.select ?? false };
    }),
  );
  if (problems.length) throw new DoctorError('REFUSED', readRefusalMessage(f.role, what, problems));
  return { role: f.role, relations: f.relations };
}

/** Whether the state relations of `part` are all there in their current layout (nothing to create or upgrade). */
function upToDate(part: string, relations: Map<string, StateRelation>): boolean {
  const want = PART_RELATIONS[part];
  if (!want) return false;
  return Object.entries(want).every(([name, kind]) => relations.get(name)?.kind === kind);
}

/**
 * Creates the state schema and the relations of `part` if missing, and upgrades an earlier layout
 * (sql/state/<part>.sql). Only applying commands call this: a dry run never does. Nothing is run
 * when the catalog shows everything in place (so a role that may not CREATE in the schema, or on
 * the database, can still apply once an owner has created it: see README, Permissions). A
 * transaction-level advisory lock serialises concurrent first runs (CREATE TABLE IF NOT EXISTS
 * alone races on the catalog).
 */
export async function ensureState(db: Db, part: string): Promise<void> {
  const done = ensured.get(db) ?? new Set<string>();
  if (done.has(part)) return;
  const f = await stateFacts(db);
  if (!(f.exists && f.usage && upToDate(part, f.relations))) {
    const ddl = renderSql(loadSqlFile(`state/${part}.sql`), db.ids);
    await db.transaction(async (tx) => {
      await tx.raw('SELECT pg_advisory_xact_lock(hashtext($1))', [`digest-doctor:state:${db.ids.state}`]);
      // CREATE SCHEMA checks CREATE on the database before IF NOT EXISTS: only when it is missing.
      if (!f.exists) await tx.raw(`CREATE SCHEMA IF NOT EXISTS ${renderSql('{{state}}', db.ids)}`);
      await tx.raw(ddl);
    });
  }
  done.add(part);
  ensured.set(db, done);
}
