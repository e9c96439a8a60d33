// inspect's --json schemaVersion, apart from the schemas (./inspect-schema.ts) so that the operations
// (./inspect.ts) use it without building them.
/** 2: `findings` are Findings (core/finding.ts) instead of strings; summary: `outsideWindow`; user: `rowsOnOtherDays`. */
export const INSPECT_SCHEMA_VERSION = 2 as const;
