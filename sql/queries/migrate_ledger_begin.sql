-- Records that a migration (up or down) starts: status running, who (current_user) and when.
-- $1 service schema, $2 version, $3 name, $4 checksum, $5 tool version. Returns attempts.
INSERT INTO {{state}}.schema_migrations AS m (target_schema, version, name, checksum, status, tool_version)
VALUES ($1, $2, $3, $4, 'running', $5)
ON CONFLICT (target_schema, version) DO UPDATE
SET name = EXCLUDED.name, checksum = EXCLUDED.checksum, status = 'running', tool_version = EXCLUDED.tool_version,
    applied_by = current_user, started_at = now(), finished_at = NULL, last_error = NULL, last_sqlstate = NULL
RETURNING attempts
