-- The audit of a run, whole batches at a time in the order they were written (keyset on the batch;
-- never OFFSET): the batches after $2, as many as start within $3 rows (at least one). Read from
-- audit_batches, not the audit view: only the page's batches are unpacked, and the images come as
-- stored (json), with the change each batch made (the caller applies it for the after-image).
-- $1 run id, $2 last batch seq seen (0 to start), $3 rows per page.
-- Returns row_id, before (whole-row image), change (the columns the batch set), batch_seq.
WITH next AS (
  SELECT b.seq
  FROM (
    SELECT seq, sum(cardinality(row_ids)) OVER (ORDER BY seq) - cardinality(row_ids) AS rows_before
    FROM {{state}}.audit_batches
    WHERE run_id = $1::uuid AND seq > $2::int8
  ) b
  WHERE b.rows_before < $3
)
SELECT i.row_id::text AS row_id, i.before, i.change, b.seq AS batch_seq
FROM {{state}}.audit_batches b
CROSS JOIN LATERAL unnest(b.row_ids, b.befores, b.changes) WITH ORDINALITY AS i(row_id, before, change, ord)
WHERE b.run_id = $1::uuid AND b.seq IN (SELECT seq FROM next)
ORDER BY b.seq, i.ord
