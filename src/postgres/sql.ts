// Statements live in sql/queries/<name>.sql, one per file, with $n parameters. Identifiers that
// cannot be parameters ({{schema}}: the service's schema, {{state}}: the tool's own schema) are
// substituted here, quoted as identifiers; {{schema_lit}} / {{state_lit}} are the same names as
// string literals (for to_regclass and the like inside DO blocks, which take no parameters).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** <package root>/sql, both from src/ (tests) and dist/ (the built CLI). */
export const SQL_DIR = fileURLToPath(new URL('../../sql/', import.meta.url));

const cache = new Map<string, string>();

export function loadSqlFile(relativePath: string): string {
  let text = cache.get(relativePath);
  if (text === undefined) {
    text = readFileSync(SQL_DIR + relativePath, 'utf8');
    cache.set(relativePath, text);
  }
  return text;
}

/** A double-quoted SQL identifier: any name Postgres accepts (no NUL), quotes doubled. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * A SQL string literal whatever standard_conforming_strings is: an E'' literal (backslashes
 * doubled) when the text has a backslash, quotes doubled.
 */
export function quoteLiteral(text: string): string {
  const body = text.replace(/'/g, "''");
  return text.includes('\\') ? `E'${body.replace(/\\/g, '\\\\')}'` : `'${body}'`;
}

export interface SqlIdentifiers {
  schema: string;
  state: string;
}

export function renderSql(text: string, ids: SqlIdentifiers): string {
  return text.replace(/\{\{(schema|state)(_lit)?\}\}/g, (_m, which: 'schema' | 'state', lit?: string) => (lit ? quoteLiteral(ids[which]) : quoteIdent(ids[which])));
}

/** The text of query `name` with identifiers substituted. */
export function sql(name: string, ids: SqlIdentifiers): string {
  return renderSql(loadSqlFile(`queries/${name}.sql`), ids);
}
