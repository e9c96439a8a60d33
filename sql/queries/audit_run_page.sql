-- The audit of a run, a page of changed rows at a time in the order they were written (keyset on
-- the batch and the row's place in it; never OFFSET).
-- $1 run id, $2 last batch_seq seen (0 to start), $3 last batch_ord seen (0 to start), $4 page size.
-- Returns row_id, before, after (whole-row jsonb images), batch_seq, batch_ord.
SELECT a.row_id::text AS row_id, a.before, a.after, a.batch_seq, a.batch_ord
FROM {{state}}.audit a
WHERE a.run_id = $1::uuid AND a.batch_seq >= $2::int8 AND (a.batch_seq, a.batch_ord) > ($2::int8, $3::int8)
ORDER BY a.batch_seq, a.batch_ord
LIMIT $4
