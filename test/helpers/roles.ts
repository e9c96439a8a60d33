// Roles for the permission tests, made from README's own GRANT blocks (so the README stays true):
// unique names, created on the test's own database, dropped after.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pg from 'pg';

const README = new URL('../../README.md', import.meta.url);

/** The ```sql block of README.md whose first line is `-- digest-doctor: <title>`. */
export function readmeSqlBlock(title: string): string {
  const text = readFileSync(README, 'utf8');
  for (const m of text.matchAll(/```sql\n([\s\S]*?)```/g)) {
    const body = m[1]!;
    if (body.split('\n')[0]!.trim() === `-- digest-doctor: ${title}`) return body;
  }
  throw new Error(`README.md has no sql block titled "${title}"`);
}

export interface RoleNames {
  reader: string;
  repairer: string;
  database: string;
  schema: string;
  state: string;
}

/** README's names (digest_reader, digest_repairer, app, public, digest_doctor) replaced by the test's. */
export function renderReadmeSql(block: string, n: RoleNames): string {
  return block
    .replace(/\bdigest_reader\b/g, n.reader)
    .replace(/\bdigest_repairer\b/g, n.repairer)
    .replace(/\bDATABASE app\b/g, `DATABASE ${n.database}`)
    .replace(/\bdigest_doctor\b/g, n.state)
    .replace(/\bpublic\b/g, n.schema);
}

export function uniqueRole(kind: string): string {
  return `dd_${kind}_${randomBytes(4).toString('hex')}`;
}

/** The URL `url` with another user (and a password the server ignores under trust, or checks). */
export function urlAs(url: string, user: string, password = 'change-me'): string {
  const u = new URL(url);
  u.username = user;
  u.password = password;
  return u.toString();
}

/** Drops roles with everything they own or were granted in this database (DROP OWNED), then the roles. */
export async function dropRoles(client: pg.Client, roles: readonly string[]): Promise<void> {
  for (const r of roles) {
    const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [r]);
    if (!exists.rowCount) continue;
    await client.query(`DROP OWNED BY ${r} CASCADE`);
    await client.query(`DROP ROLE ${r}`);
  }
}
