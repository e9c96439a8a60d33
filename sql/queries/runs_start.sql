-- Records the start of an applied repair run. $1 id, $2 command, $3 service schema, $4 args jsonb,
-- $5 run undone (uuid or null), $6 client host name. Returns id, started_at.
INSERT INTO {{state}}.runs (id, command, table_schema, args, undoes, client_host, backend_start)
SELECT $1::uuid, $2, $3, $4::jsonb, $5::uuid, $6, a.backend_start
FROM pg_stat_activity a
WHERE a.pid = pg_backend_pid()
RETURNING id::text AS id, started_at
