-- Inside an undo batch transaction: locks the audited rows as they are now, skipping rows another
-- session holds. $1 ids uuid[]. Returns id, status, tid (the locked version's ctid: it cannot move
-- while this transaction holds the lock, so undo_apply reaches the row there, without an index probe).
SELECT d.id::text AS id, d.status::text AS status, d.ctid::text AS tid
FROM {{schema}}.digest_history d
WHERE d.id = ANY ($1::uuid[])
FOR UPDATE SKIP LOCKED
