// The tool's own schema (--state-schema, default digest_doctor). Versioned like the service's
// migrations: sql/state/NNNN_<name>.sql, applied in order, each once, recorded in state_migrations,
// by an applying command only (ensureState); everything that only reads takes it as it is
// (readState): absent means nothing recorded yet, an earlier layout is read in that layout, and a
// privilege the role lacks is a refusal naming the GRANT, checked in the catalog before any read.
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { missingReadPrivileges, readRefusalMessage } from '../core/privileges.js';
import { adoptedStateVersion, stateVersionFiles, type StateVersionFile } from '../core/state-version.js';
import { DoctorError } from '../errors.js';
import { SQL_DIR, loadSqlFile, renderSql } from './sql.js';
import type { Db } from './db.js';

/** The Db handles whose state schema is known to be at the latest version (checked once per process). */
const ensured = new WeakSet<Db>();

let files: StateVersionFile[] | undefined;
/** sql/state's version files, in order (read once). */
export function stateVersions(): StateVersionFile[] {
  files ??= stateVersionFiles(readdirSync(SQL_DIR + 'state'));
  return files;
}

export interface StateRelation {
  /** pg_class.relkind: r a table, v a view. */
  kind: string;
  select: boolean;
  /** Its column names (two layouts of audit_batches differ only in them). */
  columns: string[];
}

export interface StateFacts {
  role: string;
  /** The state schema's relations by name (the catalog lists them whatever the privileges). */
  relations: Map<string, StateRelation>;
}

async function stateFacts(db: Db): Promise<{ exists: boolean; usage: boolean; create: boolean; role: string; relations: Map<string, StateRelation> }> {
  const [row] = await db.query<{ schema_exists: boolean; schema_usage: boolean; schema_create: boolean; role: string; relations: Array<{ name: string; kind: string; select: boolean; columns: string[] }> }>('state_relations', [db.ids.state]);
  return {
    exists: row!.schema_exists,
    usage: row!.schema_usage,
    create: row!.schema_create,
    role: row!.role,
    relations: new Map(row!.relations.map((r) => [r.name, { kind: r.kind, select: r.select, columns: r.columns }])),
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

const kinds = (relations: Map<string, StateRelation>) => new Map([...relations].map(([name, r]) => [name, r.kind]));
const auditColumns = (relations: Map<string, StateRelation>) => relations.get('audit_batches')?.columns ?? [];

/**
 * Brings the state schema to the latest version (sql/state/NNNN_*.sql), creating it if missing. Only
 * applying commands call this: a dry run never does. Under a transaction-level advisory lock on the
 * state schema's name (concurrent first runs wait; the second finds the versions recorded), in one
 * transaction: creates state_migrations if missing; when it records nothing, adopts the layout an
 * earlier release left (adoptedStateVersion: recorded as `adopted`, nothing run); then runs each
 * later file in order and records it (`applied`, with the file's sha256). Nothing is written when the
 * latest version is recorded, nor when the role may not CREATE in the schema and the catalog shows
 * the latest layout in place (an owner created it: see README, Permissions; recording waits for a
 * run that may). `caller` is unused: every part is brought up to date at once.
 */
export async function ensureState(db: Db, _caller?: string): Promise<void> {
  if (ensured.has(db)) return;
  const latest = stateVersions().length;
  const f = await stateFacts(db);
  const record = f.relations.get('state_migrations');
  let upToDate = false;
  if (f.exists && f.usage && record?.select) {
    const [row] = await db.query<{ version: number | null }>('state_versions_max');
    upToDate = (row?.version ?? 0) >= latest;
  } else if (f.exists && f.usage && !f.create) {
    upToDate = adoptedStateVersion(kinds(f.relations), auditColumns(f.relations)) >= latest;
  }
  if (!upToDate) {
    await db.transaction(async (tx) => {
      await tx.raw('SELECT pg_advisory_xact_lock(hashtext($1))', [`digest-doctor:state:${db.ids.state}`]);
      // CREATE SCHEMA checks CREATE on the database before IF NOT EXISTS: only when it is missing.
      if (!f.exists) await tx.raw(`CREATE SCHEMA IF NOT EXISTS ${renderSql('{{state}}', db.ids)}`);
      await tx.query('state_versions_create');
      const [row] = await tx.query<{ version: number | null }>('state_versions_max');
      let at = row?.version ?? null;
      if (at === null) {
        // Nothing recorded: the layout as it is now, under the lock, is what an earlier release left.
        const now = (await stateFacts(tx)).relations;
        at = adoptedStateVersion(kinds(now), auditColumns(now));
        for (const v of stateVersions().slice(0, at)) await tx.query('state_versions_record', [v.version, v.name, checksum(v), 'adopted']);
      }
      for (const v of stateVersions().slice(at)) {
        await tx.raw(renderSql(loadSqlFile(`state/${v.file}`), db.ids));
        await tx.query('state_versions_record', [v.version, v.name, checksum(v), 'applied']);
      }
    });
  }
  ensured.add(db);
}

function checksum(v: StateVersionFile): string {
  return createHash('sha256').update(loadSqlFile(`state/${v.file}`)).digest('hex');
}
