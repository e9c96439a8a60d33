-- Transactions in this database open longer than a threshold: a concurrent build waits for every
-- one of them. $1 threshold ms, $2 limit. Returns pid, user_name, application_name, state,
-- xact_start, age_ms, query (short).
SELECT pid,
       usename::text AS user_name,
       application_name::text AS application_name,
       state::text AS state,
       xact_start,
       (extract(epoch FROM now() - xact_start) * 1000)::int8 AS age_ms,
       left(query, 200) AS query
FROM pg_stat_activity
WHERE datname = current_database()
  AND pid <> pg_backend_pid()
  AND backend_type = 'client backend'
  AND xact_start IS NOT NULL
  AND xact_start < now() - make_interval(secs => $1::int8 / 1000.0)
ORDER BY xact_start
LIMIT $2
