-- The given rows as they are now (no lock), for an undo planned from an audit written before state
-- version 4 and read in that layout (a dry run does not upgrade it; undo_plan.sql reads the later
-- layout). $1 ids uuid[]. Returns id, status, tid (ctid, text), user_id, digest_date, created_at
-- (text to the microsecond).
SELECT d.id::text AS id, d.status::text AS status, d.ctid::text AS tid, d.user_id::text AS user_id, d.digest_date::text AS digest_date,
       d.created_at::text AS created_at
FROM {{schema}}.digest_history d
WHERE d.id = ANY ($1::uuid[])
