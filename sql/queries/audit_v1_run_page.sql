-- The audit of a run as an earlier version stored it (the table {{state}}.audit, one row per changed
-- row with whole jsonb images), read as it is, without upgrading it: keyset pages over (at, row_id),
-- the order that version wrote and its upgrade moves them in. $1 run id, $2 last at seen (null to
-- start), $3 last row id seen, $4 rows per page. Returns row_id, before, after, at_key (at as text: microseconds survive the round trip).
SELECT a.row_id::text AS row_id, a.before, a.after, a.at::text AS at_key
FROM {{state}}.audit a
WHERE a.run_id = $1::uuid
  AND ($2::timestamptz IS NULL OR (a.at, a.row_id) > ($2::timestamptz, $3::uuid))
ORDER BY a.at, a.row_id
LIMIT $4
