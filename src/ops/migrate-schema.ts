// The JSON shapes of `migrate` (MigrateResultSchema) and `migrate status` (MigrateStatusSchema),
// beside the op (src/ops/migrate.ts), which uses them as types only: the CLI loads this module (and
// zod) for --json alone; the package's index exports the schemas.
import * as z from 'zod';
import { FindingSchema } from '../core/finding-schema.js';
import { MIGRATE_SCHEMA_VERSION, MIGRATE_STATUS_SCHEMA_VERSION } from './migrate-version.js';

export { MIGRATE_SCHEMA_VERSION, MIGRATE_STATUS_SCHEMA_VERSION };

const IndexStateSchema = z.object({
  name: z.string(),
  exists: z.boolean(),
  valid: z.boolean(),
  ready: z.boolean(),
  definition: z.string().nullable(),
  matches: z.boolean().nullable(),
  differences: z.array(z.string()),
  building: z.object({ pid: z.number().int(), phase: z.string(), user: z.string().nullable(), application: z.string().nullable() }).nullable(),
});
export type IndexState = z.infer<typeof IndexStateSchema>;

const LockHolderSchema = z.object({
  pid: z.number().int(),
  user: z.string().nullable(),
  application: z.string().nullable(),
  clientAddr: z.string().nullable(),
  since: z.string().nullable(),
  state: z.string().nullable(),
  query: z.string().nullable(),
});

const LongTransactionSchema = z.object({
  pid: z.number().int(),
  user: z.string().nullable(),
  application: z.string().nullable(),
  state: z.string().nullable(),
  xactStart: z.string(),
  ageMs: z.number(),
  query: z.string().nullable(),
});

const PreparedTransactionSchema = z.object({
  gid: z.string(),
  owner: z.string(),
  database: z.string(),
  prepared: z.string(),
  ageMs: z.number(),
  /** In the database migrate is connected to: a concurrent build waits for it. */
  inThisDatabase: z.boolean(),
  /** It holds a lock on digest_history. */
  locksTable: z.boolean(),
});

const DuplicatesSchema = z.object({
  checked: z.boolean(),
  totalGroups: z.number().int(),
  totalRows: z.number().int(),
  groups: z.array(z.object({ userId: z.string(), digestDate: z.string(), rows: z.number().int(), ids: z.array(z.string()), statuses: z.array(z.string()) })),
});

const VerificationSchema = z.object({
  valid: z.boolean(),
  ready: z.boolean(),
  matches: z.boolean(),
  differences: z.array(z.string()),
  /** Arbiter indexes of the service's upsert, from EXPLAIN (FORMAT JSON). */
  arbiterIndexes: z.array(z.string()),
  arbiterProven: z.boolean(),
});

export const MIGRATE_OUTCOMES = ['planned', 'applied', 'noop', 'removed', 'refused', 'busy', 'failed', 'cancelled'] as const;
export type MigrateOutcome = (typeof MIGRATE_OUTCOMES)[number];

const MigrationRunSchema = z.object({
  version: z.number().int(),
  name: z.string(),
  checksum: z.string(),
  before: IndexStateSchema,
  /** Why the runner does (or would do) what it does. */
  plan: z.string(),
  outcome: z.enum(MIGRATE_OUTCOMES),
  /** The SQL run (or, in a dry run, that would run), in order; each statement is its own query(). */
  statements: z.array(z.string()),
  actions: z.array(z.string()),
  attempts: z.number().int(),
  verification: VerificationSchema.nullable(),
});
export type MigrationRun = z.infer<typeof MigrationRunSchema>;

export const MigrateResultSchema = z.object({
  schemaVersion: z.literal(MIGRATE_SCHEMA_VERSION),
  command: z.literal('migrate'),
  mode: z.enum(['plan', 'apply', 'down-plan', 'down']),
  ok: z.boolean(),
  outcome: z.enum(MIGRATE_OUTCOMES),
  message: z.string(),
  target: z.object({ database: z.string(), schema: z.string(), stateSchema: z.string() }),
  /** The preflight: every check run, in order (FindingSchema; `check` names it: session, primary, writable, privileges, ledger, duplicates, long transactions, prepared transactions, lock). */
  checks: z.array(FindingSchema),
  duplicates: DuplicatesSchema,
  longTransactions: z.array(LongTransactionSchema),
  /** pg_prepared_xacts, every database, oldest first (not in pg_stat_activity; a build waits for those of its database). */
  preparedTransactions: z.array(PreparedTransactionSchema),
  lockHolder: LockHolderSchema.nullable(),
  migrations: z.array(MigrationRunSchema),
});
export type MigrateResult = z.infer<typeof MigrateResultSchema>;

const LedgerEntrySchema = z.object({
  version: z.number().int(),
  name: z.string(),
  checksum: z.string(),
  status: z.enum(['running', 'applied', 'failed', 'reverted']),
  attempts: z.number().int(),
  lastError: z.string().nullable(),
  lastSqlstate: z.string().nullable(),
  toolVersion: z.string(),
  appliedBy: z.string(),
  startedAt: z.string(),
  finishedAt: z.string().nullable(),
});

export const MigrateStatusSchema = z.object({
  schemaVersion: z.literal(MIGRATE_STATUS_SCHEMA_VERSION),
  command: z.literal('migrate status'),
  target: z.object({ database: z.string(), schema: z.string(), stateSchema: z.string() }),
  migrations: z.array(
    z.object({
      version: z.number().int(),
      name: z.string(),
      checksum: z.string(),
      state: z.enum(['applied', 'pending', 'drift', 'invalid', 'building']),
      problems: z.array(z.string()),
      index: IndexStateSchema,
      ledger: LedgerEntrySchema.nullable(),
    }),
  ),
  /** Ledger rows for versions with no file. */
  unknownLedgerVersions: z.array(z.number().int()),
  drift: z.boolean(),
  /** A migration's index is being built right now (pg_stat_progress_create_index): exit 4 until it ends. */
  building: z.boolean(),
  findings: z.array(z.string()),
});
export type MigrateStatus = z.infer<typeof MigrateStatusSchema>;

export type Duplicates = z.infer<typeof DuplicatesSchema>;
