-- Inside an undo batch transaction: locks the audited rows as they are now, skipping rows another
-- session holds. $1 ids uuid[]. Returns id, status.
SELECT d.id::text AS id, d.status::text AS status
FROM {{schema}}.digest_history d
WHERE d.id = ANY ($1::uuid[])
FOR UPDATE SKIP LOCKED
