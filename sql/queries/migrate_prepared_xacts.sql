-- Prepared transactions (PREPARE TRANSACTION), every database, oldest first. They are not in
-- pg_stat_activity; their locks show in pg_locks with no pid, under the virtualtransaction of the
-- row that holds their transaction id.
-- $1 schema, $2 table, $3 limit. Returns gid, owner, database, prepared, age_ms, this_db,
-- locks_table (it holds a lock on $1.$2).
SELECT p.gid,
       p.owner::text AS owner,
       p.database::text AS database,
       p.prepared,
       (extract(epoch FROM now() - p.prepared) * 1000)::int8 AS age_ms,
       p.database = current_database() AS this_db,
       EXISTS (
         SELECT 1
         FROM pg_locks x
         JOIN pg_locks l ON l.virtualtransaction = x.virtualtransaction AND l.pid IS NULL
         JOIN pg_class c ON c.oid = l.relation
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE x.locktype = 'transactionid' AND x.pid IS NULL AND x.transactionid = p.transaction
           AND n.nspname = $1 AND c.relname = $2
       ) AS locks_table
FROM pg_prepared_xacts p
ORDER BY p.prepared
LIMIT $3
