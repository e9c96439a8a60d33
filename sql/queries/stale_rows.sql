-- In-flight rows created before the cut-off, oldest first, a page at a time (keyset on
-- (created_at, id); never OFFSET). created_at comes back as whole microseconds since the epoch: the
-- exact keyset (a JavaScript Date keeps only milliseconds, and a page boundary inside a millisecond
-- would repeat rows, or never advance) and a plain number to read.
-- $1 in-flight statuses text[], $2 cut-off timestamptz, $3 user_id (or null), $4 digest_date (or
-- null), $5 last createdUs seen (or null to start), $6 last id seen, $7 page size.
-- Returns id, tid (the row version's ctid, for the batches to reach it without an index probe),
-- userId, digestDate, status, createdUs (named as mark-stale's StaleRow: the rows are used as read).
SELECT d.id::text AS id, d.ctid::text AS tid, d.user_id::text AS "userId", d.digest_date AS "digestDate", d.status::text AS status,
       (extract(epoch FROM d.created_at) * 1000000)::int8 AS "createdUs"
FROM {{schema}}.digest_history d
WHERE d.status = ANY ($1::text[])
  AND d.created_at < $2::timestamptz
  AND ($3::uuid IS NULL OR d.user_id = $3::uuid)
  AND ($4::date IS NULL OR d.digest_date = $4::date)
  AND ($5::int8 IS NULL OR (d.created_at, d.id) > (timestamptz 'epoch' + $5::int8 * interval '1 microsecond', $6::uuid))
ORDER BY d.created_at, d.id
LIMIT $7
