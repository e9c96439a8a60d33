-- Who holds the migrate advisory lock for one service schema (two-int form: classid, objid,
-- objsubid 2). $1 service schema. Returns pid, user_name, application_name, client_addr,
-- backend_start, state, query (short).
SELECT l.pid,
       a.usename::text AS user_name,
       a.application_name::text AS application_name,
       a.client_addr::text AS client_addr,
       a.backend_start,
       a.state::text AS state,
       left(a.query, 200) AS query
FROM pg_locks l
LEFT JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory'
  AND l.granted
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid = hashtext('digest-doctor:migrate')::oid
  AND l.objid = hashtext($1::text)::oid
  AND l.objsubid = 2
