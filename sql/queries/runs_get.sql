-- One run. $1 id. Returns the same columns as runs_list.
SELECT r.id::text AS id, r.command, r.table_schema, r.args, r.undoes::text AS undoes, r.status, r.error,
       r.rows_changed, r.started_at, r.finished_at, r.db_user, host(r.client_addr) AS client_addr,
       r.client_host, r.application_name,
       EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = r.backend_pid AND a.backend_start IS NOT DISTINCT FROM r.backend_start) AS session_alive
FROM {{state}}.runs r
WHERE r.id = $1::uuid
