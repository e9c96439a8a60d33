// A schema per test in the run's database, built as the service builds it, and fixture data.
import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { connectPg, type Db } from '../../src/postgres/db.js';
import { connectEmbedded } from '../../src/postgres/embedded.js';
import { loadSqlFile, renderSql } from '../../src/postgres/sql.js';
import { embeddedClient, embeddedDataDir, type QueryClient, type TestEngine } from './engine.js';

export { ENGINES, type TestEngine } from './engine.js';

export interface TestSchema {
  /** What runs the SQL (test/helpers/engine.ts). */
  engine: TestEngine;
  /** The server's URL; for the embedded engine `embedded:<data dir>` (no server to connect to). */
  url: string;
  /** The embedded engine's data directory (null on the server). */
  dataDir: string | null;
  schema: string;
  /** The tool's own schema for this test (ledger, audit). */
  stateSchema: string;
  client: QueryClient;
  /** Global CLI flags that point digest-doctor at this schema. */
  cliArgs: string[];
  cleanup(): Promise<void>;
}

export function databaseUrl(): string {
  return inject('databaseUrl');
}

/**
 * Creates schema t_<random> holding tenants, users and digest_history exactly as the service has
 * them, on the run's server database or (engine 'embedded') in this test file's embedded data directory.
 */
export async function createTestSchema(opts: { withTables?: boolean; engine?: TestEngine } = {}): Promise<TestSchema> {
  const schema = `t_${randomBytes(5).toString('hex')}`;
  const stateSchema = `${schema}_dd`;
  if (opts.engine === 'embedded') {
    const dataDir = embeddedDataDir();
    const client = embeddedClient();
    await client.query(`CREATE SCHEMA ${schema}`);
    if (opts.withTables !== false) await client.query(renderSql(loadSqlFile('fixtures/service_schema.sql'), { schema, state: stateSchema }));
    return {
      engine: 'embedded',
      url: `embedded:${dataDir}`,
      dataDir,
      schema,
      stateSchema,
      client,
      cliArgs: ['--data-dir', dataDir, '--schema', schema, '--state-schema', stateSchema],
      // the data directory goes with the file (engine.ts); the handle stays open for the next test
      async cleanup() {},
    };
  }
  const url = databaseUrl();
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  await client.query(`CREATE SCHEMA ${schema}`);
  if (opts.withTables !== false) {
    await client.query(renderSql(loadSqlFile('fixtures/service_schema.sql'), { schema, state: stateSchema }));
  }
  return {
    engine: 'server',
    url,
    dataDir: null,
    schema,
    stateSchema,
    client,
    cliArgs: ['--database-url', url, '--schema', schema, '--state-schema', stateSchema],
    async cleanup() {
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
      await client.query(`DROP SCHEMA IF EXISTS ${stateSchema} CASCADE`).catch(() => undefined);
      await client.end().catch(() => undefined);
    },
  };
}

/** A Db of the library on the test schema: connectPg on the server, connectEmbedded on the data directory. */
export async function openTestDb(t: TestSchema, statementTimeoutMs = 30_000): Promise<Db> {
  const ids = { schema: t.schema, stateSchema: t.stateSchema, statementTimeoutMs };
  return t.dataDir ? connectEmbedded(t.dataDir, ids) : connectPg({ url: t.url, ...ids });
}

export interface RowSpec {
  id?: string;
  userId: string;
  tenantId?: string | null;
  digestDate: string;
  status: string;
  createdAt: string | Date;
  sentAt?: string | Date | null;
  content?: string;
}

export async function ensureUser(t: TestSchema, userId: string, tenantId: string): Promise<void> {
  await t.client.query(`INSERT INTO ${t.schema}.tenants (id) VALUES ($1) ON CONFLICT DO NOTHING`, [tenantId]);
  await t.client.query(`INSERT INTO ${t.schema}.users (id, tenant_id, telegram_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, [
    userId,
    tenantId,
    Math.floor(Math.random() * 1e9),
  ]);
}

export const TENANT = '0b7a43c2-9d4e-4b8a-9f1e-2c3d4e5f6a7b';

/** Inserts rows, creating their users and tenants first. Returns the ids. */
export async function insertRows(t: TestSchema, rows: RowSpec[]): Promise<string[]> {
  const ids: string[] = [];
  for (const r of rows) {
    const tenant = r.tenantId === undefined ? TENANT : r.tenantId;
    await ensureUser(t, r.userId, tenant ?? TENANT);
    const id = r.id ?? randomUUID();
    await t.client.query(
      `INSERT INTO ${t.schema}.digest_history (id, user_id, tenant_id, digest_date, content, status, created_at, sent_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [id, r.userId, tenant, r.digestDate, r.content ?? '', r.status, r.createdAt, r.sentAt ?? null],
    );
    ids.push(id);
  }
  return ids;
}

/** The incident of 2025-11-25 (sql/fixtures/incident.sql, which the README's first look loads too). */
export const INCIDENT = {
  user: '6af5e7d3-e736-46da-bfc1-42786f2ab1c0',
  digestId: 'dac58a5d-522f-4e94-b803-caee803b53c6',
  day: '2025-11-25',
  stuckUser: '1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f',
  cleanUser: '9e8d7c6b-5a49-4382-a1b0-c9d8e7f6a5b4',
} as const;

export async function seedIncident(t: TestSchema): Promise<{ failed: string; pendingOld: string; pendingNew: string; stuck: string; sent: string }> {
  await t.client.query(renderSql(loadSqlFile('fixtures/incident.sql'), { schema: t.schema, state: t.stateSchema }));
  return {
    failed: INCIDENT.digestId,
    pendingOld: 'a1111111-1111-4111-8111-111111111111',
    pendingNew: 'a2222222-2222-4222-8222-222222222222',
    stuck: 'b3333333-3333-4333-8333-333333333333',
    sent: 'c4444444-4444-4444-8444-444444444444',
  };
}
