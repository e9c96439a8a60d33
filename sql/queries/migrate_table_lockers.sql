-- Open transactions holding a lock on the service table: DROP INDEX CONCURRENTLY (and a concurrent
-- build) waits for each. $1 schema, $2 table, $3 limit. Returns pid, user_name, application_name,
-- state, xact_start, age_ms, query (short), oldest first.
SELECT DISTINCT ON (a.xact_start, a.pid)
       a.pid,
       a.usename::text AS user_name,
       a.application_name::text AS application_name,
       a.state::text AS state,
       a.xact_start,
       (extract(epoch FROM now() - a.xact_start) * 1000)::int8 AS age_ms,
       left(a.query, 200) AS query
FROM pg_locks l
JOIN pg_class c ON c.oid = l.relation
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_stat_activity a ON a.pid = l.pid
WHERE n.nspname = $1 AND c.relname = $2
  AND l.granted
  AND a.pid <> pg_backend_pid()
  AND a.xact_start IS NOT NULL
ORDER BY a.xact_start, a.pid
LIMIT $3
