-- Records how a migration ended. $1 service schema, $2 version, $3 status (applied, failed,
-- reverted), $4 error text (or null), $5 SQLSTATE (or null). Returns status.
UPDATE {{state}}.schema_migrations
SET status = $3, last_error = coalesce($4, last_error), last_sqlstate = coalesce($5, last_sqlstate),
    applied_by = current_user, finished_at = now()
WHERE target_schema = $1 AND version = $2
RETURNING status
