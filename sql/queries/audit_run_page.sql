-- The audit rows of one run in write order, a page at a time (keyset on id).
-- $1 run id, $2 last id seen (0 to start), $3 page size. Returns id, row_id, before, after.
SELECT a.id, a.row_id::text AS row_id, a.before, a.after
FROM {{state}}.audit a
WHERE a.run_id = $1::uuid AND a.id > $2
ORDER BY a.id
LIMIT $3
