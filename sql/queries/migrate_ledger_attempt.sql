-- Counts one build attempt and its error, if any. $1 service schema, $2 version, $3 error text
-- (or null), $4 SQLSTATE (or null). Returns attempts.
UPDATE {{state}}.schema_migrations
SET attempts = attempts + 1, last_error = coalesce($3, last_error), last_sqlstate = coalesce($4, last_sqlstate)
WHERE target_schema = $1 AND version = $2
RETURNING attempts
