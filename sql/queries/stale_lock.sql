-- Inside a batch transaction: locks those of the given rows that are still in flight and older than
-- the cut-off, skipping rows another session holds. $1 ids uuid[], $2 in-flight statuses text[],
-- $3 cut-off. Returns id.
SELECT d.id::text AS id
FROM {{schema}}.digest_history d
WHERE d.id = ANY ($1::uuid[]) AND d.status = ANY ($2::text[]) AND d.created_at < $3::timestamptz
ORDER BY d.id
FOR UPDATE SKIP LOCKED
