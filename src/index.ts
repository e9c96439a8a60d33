// The library surface: what a service imports to get the same dedup logic the CLI uses.
export * from './core/contract.js';
export * from './core/event.js';
export * from './core/keys.js';
export * from './core/decision.js';
export * from './core/duplicates.js';
export * from './core/stream-id.js';
export * from './core/validate.js';
export { redactUrl, redactText } from './core/redact.js';
export { DoctorError, ExitCode, type ErrorCode, type ExitCodeValue } from './errors.js';
export { connectPg, normalizePgUrl, Db, fixSessionSettings, SESSION_SETTINGS, type PgConfig, type SqlSession } from './postgres/db.js';
export { connectRedis, type RedisClient, type RedisConfig } from './redis/connect.js';
export { SCHEMA_VERSION } from './cli/output.js';
export { ErrorDocumentSchema } from './cli/error-document.js';
export { FindingSchema } from './core/finding-schema.js';
export type { Finding } from './core/finding.js';
export { inspectSummary, inspectUser, type InspectSummary, type InspectUser } from './ops/inspect.js';
export { InspectSummarySchema, InspectUserSchema } from './ops/inspect-schema.js';
export { streamsReport, scanStream, StreamsReportSchema, STREAMS_SCHEMA_VERSION, type StreamsReport, type StreamsInput, type StreamScanResult } from './ops/streams.js';
export * from './core/stream-health.js';
export { ScanAccumulator, RowCheck, U128Index, parseEntryEvent, plainlyValidEvent, type ScanTotals, type ScanLimits } from './core/stream-scan/index.js';
export { acquireLock, releaseLock, extendLock, newLockToken, findStaleLocks, lockKind, type Lock, type LockOutcome, type LockResult, type StaleLock, type StaleLockOptions } from './redis/locks.js';
export { publishIdempotent, publishBatch, publishPaced, streamBacklog, backlogLimitFor, BacklogStallError, planPublish, batchCall, choosePublishMode, markerKeyFor, hashTagOf, DEFAULT_MARKER_PREFIX, DEFAULT_MARKER_TTL_MS, DEFAULT_PRODUCER, DEFAULT_STALL_TIMEOUT_MS, type PublishOptions, type PublishResult, type PublishOutcome, type PublishMode, type PublishPlan, type BacklogState, type PaceOptions } from './redis/publish.js';
export { SCRIPT_CODES } from './redis/scripts.js';
export { requestDigest, type RequestDigestInput, type RequestDigestResult, type RequestDb, type DigestRow } from './service/request-digest.js';
export { replay, ReplayResultSchema, REPLAY_SCHEMA_VERSION, DEFAULT_REPLAY_MARKER_PREFIX, type ReplayResult, type ReplayOptions, type ReplayEvent } from './ops/replay.js';
export { planReplay, replayIdempotencyId, type ReplayCandidate, type PlannedEvent, type ReplaySource, type SkipReason } from './core/replay.js';
export * from './core/repair.js';
export { fixDuplicates, FixDuplicatesResultSchema, FIX_DUPLICATES_SCHEMA_VERSION, type FixDuplicatesResult, type FixDuplicatesInput } from './ops/fix-duplicates.js';
export { markStale, MarkStaleResultSchema, MARK_STALE_SCHEMA_VERSION, type MarkStaleResult, type MarkStaleInput, type RedisForRepair } from './ops/mark-stale.js';
export { undoRun, UndoResultSchema, UNDO_SCHEMA_VERSION, type UndoResult, type UndoInput } from './ops/undo.js';
export { recentRuns, RunsResultSchema, RunSummarySchema, RUNS_SCHEMA_VERSION, type RunsResult, type RunSummary } from './ops/runs.js';
export { type BatchOptions } from './ops/repair.js';
export {
  migratePlan,
  migrateApply,
  migrateDown,
  migrateStatus,
  DEFAULT_MIGRATE_OPTIONS,
  type MigrateResult,
  type MigrateStatus,
  type MigrateOptions,
  type MigrateHooks,
} from './ops/migrate.js';
export { MigrateResultSchema, MigrateStatusSchema, MIGRATE_SCHEMA_VERSION, MIGRATE_STATUS_SCHEMA_VERSION } from './ops/migrate-schema.js';
export {
  parseIndexDef,
  canonicalPredicate,
  compareIndexShapes,
  expectedUniqueIndex,
  planUp,
  migrationStatus,
  migrationChecksum,
  runnableStatement,
  withConcurrently,
  decideRetry,
  RETRYABLE_SQLSTATES,
  type Migration,
  type IndexShape,
  type CatalogIndex,
  type LedgerEntry,
} from './core/migration.js';
export { loadMigrations } from './postgres/migrator.js';
