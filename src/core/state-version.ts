// The versions of the tool's own schema (--state-schema): sql/state/NNNN_<name>.sql, applied in order,
// each once, recorded in the state schema's table state_migrations (src/postgres/state.ts). A state
// schema made by an earlier release (its DDL upgraded in place, nothing recorded) is adopted: the
// version its layout shows is recorded without running anything, and only the later files run.

/** A state version file: sql/state/<4-digit version>_<name>.sql. */
export interface StateVersionFile {
  version: number;
  name: string;
  file: string;
}

const FILE_NAME = /^(\d{4})_([a-z0-9_]+)\.sql$/;

/**
 * The state version files among `names` (a directory listing), by version. Throws on two files of one
 * version or a gap (1, 2, 4): a packaging bug, not something to apply around.
 */
export function stateVersionFiles(names: readonly string[]): StateVersionFile[] {
  const files = names.flatMap((file) => {
    const m = FILE_NAME.exec(file);
    return m ? [{ version: Number(m[1]), name: m[2]!, file }] : [];
  });
  files.sort((a, b) => a.version - b.version);
  files.forEach((f, i) => {
    if (f.version !== i + 1) throw new Error(`sql/state: expected version ${i + 1}, found ${f.file}`);
  });
  return files;
}

/**
 * The version an unrecorded state schema is at, from its relations' kinds (pg_class.relkind: r a
 * table, v a view) as the earlier releases left them:
 * - 0: nothing of the audit (empty, or only the ledger an earlier `migrate --apply` made);
 * - 1: runs and the per-row table audit (sql/state/0001), no audit_batches;
 * - 2: runs, audit_batches and the view audit (0002);
 * - 3: that and the ledger schema_migrations (0003);
 * - 4: that, with undo's typed keys in audit_batches (`auditBatchColumns` has tids: 0004; no release
 *   before the versions had them, but an owner may have run it for a role that cannot record it).
 * Any other mix is adopted at the highest of these it contains in full; the files above it create
 * with IF NOT EXISTS where an earlier release could have left the relation on its own (the ledger).
 */
export function adoptedStateVersion(kinds: ReadonlyMap<string, string>, auditBatchColumns: readonly string[] = []): number {
  const is = (name: string, kind: string) => kinds.get(name) === kind;
  if (is('runs', 'r') && is('audit_batches', 'r') && is('audit', 'v')) return !is('schema_migrations', 'r') ? 2 : auditBatchColumns.includes('tids') ? 4 : 3;
  if (is('runs', 'r') && is('audit', 'r') && !kinds.has('audit_batches')) return 1;
  return 0;
}
