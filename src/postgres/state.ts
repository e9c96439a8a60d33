// The tool's own schema (--state-schema, default digest_doctor): created on first use, idempotently.
// Each part keeps its DDL in sql/state/<part>.sql (CREATE ... IF NOT EXISTS only).
import { loadSqlFile, renderSql } from './sql.js';
import type { Db } from './db.js';

const ensured = new WeakMap<Db, Set<string>>();

/**
 * Creates the state schema and the tables of `part` if missing. A transaction-level advisory lock
 * serialises concurrent first runs (CREATE TABLE IF NOT EXISTS alone races on the catalog).
 */
export async function ensureState(db: Db, part: string): Promise<void> {
  const done = ensured.get(db) ?? new Set<string>();
  if (done.has(part)) return;
  const ddl = renderSql(loadSqlFile(`state/${part}.sql`), db.ids);
  await db.transaction(async (tx) => {
    await tx.raw('SELECT pg_advisory_xact_lock(hashtext($1))', [`digest-doctor:state:${db.ids.state}`]);
    await tx.raw(`CREATE SCHEMA IF NOT EXISTS ${renderSql('{{state}}', db.ids)}`);
    await tx.raw(ddl);
  });
  done.add(part);
  ensured.set(db, done);
}
