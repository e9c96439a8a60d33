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
export { connectPg, normalizePgUrl, Db, type PgConfig } from './postgres/db.js';
export { connectRedis, type RedisClient, type RedisConfig } from './redis/connect.js';
export { ErrorDocumentSchema, SCHEMA_VERSION } from './cli/output.js';
export { inspectSummary, inspectUser, InspectSummarySchema, InspectUserSchema, type InspectSummary, type InspectUser } from './ops/inspect.js';
export { streamsReport, scanStream, StreamsReportSchema, STREAMS_SCHEMA_VERSION, type StreamsReport, type StreamsInput, type StreamScanResult } from './ops/streams.js';
export * from './core/stream-health.js';
export { ScanAccumulator, RowCheck, U128Index, parseEntryEvent, plainlyValidEvent, type ScanTotals, type ScanLimits } from './core/stream-scan.js';
