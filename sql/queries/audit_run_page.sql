-- The audit rows of one run, a page at a time in row_id order (keyset on the primary key).
-- $1 run id, $2 last row_id seen (the nil uuid to start), $3 page size. Returns row_id, before, after.
SELECT a.row_id::text AS row_id, a.before, a.after
FROM {{state}}.audit a
WHERE a.run_id = $1::uuid AND a.row_id > $2::uuid
ORDER BY a.row_id
LIMIT $3
