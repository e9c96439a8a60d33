-- Recent repair runs, newest first. $1 limit, $2 command (or null for all), $3 service schema (or null).
-- Returns the run, and session_alive: whether the session that ran it is still connected.
SELECT r.id::text AS id, r.command, r.table_schema, r.args, r.undoes::text AS undoes, r.status, r.error,
       r.rows_changed, r.started_at, r.finished_at, r.db_user, host(r.client_addr) AS client_addr,
       r.client_host, r.application_name,
       EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = r.backend_pid AND a.backend_start IS NOT DISTINCT FROM r.backend_start) AS session_alive
FROM {{state}}.runs r
WHERE ($2::text IS NULL OR r.command = $2)
  AND ($3::text IS NULL OR r.table_schema = $3)
ORDER BY r.started_at DESC, r.id
LIMIT $1
