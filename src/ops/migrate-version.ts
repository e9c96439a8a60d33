// migrate's --json schemaVersions, apart from the schemas (./migrate-schema.ts) so that the operations
// (./migrate.ts) use them without building them (a migrate --apply without --json loads no zod).
/** 2: the preflight's `checks` are Findings ({ verdict, check, message, fix, items }); in 1 they were { name, verdict, detail, fix }. */
export const MIGRATE_SCHEMA_VERSION = 2 as const;
/** `migrate status` kept its shape: still version 1. */
export const MIGRATE_STATUS_SCHEMA_VERSION = 1 as const;
