-- The ledger rows of one service schema. $1 service schema. Returns version, name, checksum,
-- status, attempts, last_error, last_sqlstate, tool_version, applied_by, started_at, finished_at.
SELECT version, name, checksum, status, attempts, last_error, last_sqlstate, tool_version,
       applied_by, started_at, finished_at
FROM {{state}}.schema_migrations
WHERE target_schema = $1
ORDER BY version
