// What the connected role may read, and the GRANTs that would let it: pure, from catalog facts the
// caller read (has_schema_privilege / has_table_privilege, which answer for any role without
// touching the objects). A command checks before it reads, so a missing privilege is a sentence
// naming the object and the GRANT, not a driver error (42501) halfway through.

/** One relation a command reads, as the catalog describes it for the current role. */
export interface RelationAccess {
  schema: string;
  name: string;
  /** The relation exists (pg_class; visible whatever the privileges). */
  exists: boolean;
  /** has_schema_privilege(schema, 'USAGE'). */
  schemaUsage: boolean;
  /** has_table_privilege(relation, 'SELECT'); false when it does not exist. */
  select: boolean;
}

/** A Postgres identifier as SQL text: bare when it is a plain lower-case name, else double-quoted. */
export function sqlIdent(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

export interface ReadProblem {
  /** e.g. `no USAGE on schema digest_doctor`, `no SELECT on public.users`. */
  problem: string;
  /** The statement that fixes it, for `role`. */
  grant: string;
}

/**
 * The privileges missing for `role` to read every existing relation of `access`: USAGE on each
 * schema once, then SELECT on each relation. Relations that do not exist are not the caller's
 * privilege problem (each command decides what absence means) and are ignored. Ordered as given.
 */
export function missingReadPrivileges(role: string, access: readonly RelationAccess[]): ReadProblem[] {
  const out: ReadProblem[] = [];
  const schemasSeen = new Set<string>();
  const r = sqlIdent(role);
  for (const a of access) {
    if (!a.exists) continue;
    if (!a.schemaUsage && !schemasSeen.has(a.schema)) {
      schemasSeen.add(a.schema);
      out.push({ problem: `no USAGE on schema ${sqlIdent(a.schema)}`, grant: `GRANT USAGE ON SCHEMA ${sqlIdent(a.schema)} TO ${r};` });
    }
  }
  for (const a of access) {
    if (!a.exists || a.select) continue;
    const rel = `${sqlIdent(a.schema)}.${sqlIdent(a.name)}`;
    out.push({ problem: `no SELECT on ${rel}`, grant: `GRANT SELECT ON ${rel} TO ${r};` });
  }
  return out;
}

/** One line: what `role` could not read for `what`, and the GRANTs (run by the objects' owner or a superuser). */
export function readRefusalMessage(role: string, what: string, problems: readonly ReadProblem[]): string {
  return `role ${sqlIdent(role)} may not read what ${what} needs (${problems.map((p) => p.problem).join('; ')}): as the owner or a superuser, run: ${problems.map((p) => p.grant).join(' ')}`;
}
