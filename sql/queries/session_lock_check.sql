-- Which server processes hold a session advisory lock (two-int form: classid, objid, objsubid 2,
-- as pg_try_advisory_lock(hashtext($1), hashtext($2)) takes it), and which process runs this
-- statement. $1 lock key, $2 service schema. Returns pid, holders (int[], empty when nobody holds it).
SELECT pg_backend_pid() AS pid,
       coalesce((SELECT array_agg(l.pid ORDER BY l.pid)
                 FROM pg_locks l
                 WHERE l.locktype = 'advisory'
                   AND l.granted
                   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                   AND l.classid = hashtext($1::text)::oid
                   AND l.objid = hashtext($2::text)::oid
                   AND l.objsubid = 2), '{}') AS holders
