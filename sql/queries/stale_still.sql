-- Which of the given rows are still in flight and older than the cut-off (no lock: to tell a row
-- another session held from one that changed). $1 ids uuid[], $2 in-flight statuses text[], $3 cut-off.
-- Returns id, tid (where the row is now, for the retry).
SELECT d.id::text AS id, d.ctid::text AS tid
FROM {{schema}}.digest_history d
WHERE d.id = ANY ($1::uuid[]) AND d.status = ANY ($2::text[]) AND d.created_at < $3::timestamptz
