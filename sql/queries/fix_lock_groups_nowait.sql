-- Inside a batch transaction, the fast path of fix_lock_groups: locks every in-flight row of the
-- batch's groups, failing at once (55P03) if another session holds any of them; then the caller falls
-- back to fix_lock_groups (SKIP LOCKED plus an unlocked count). When it succeeds nothing was skipped,
-- so no count is needed. $1 user_ids uuid[], $2 digest_dates date[] (pairs), $3 in-flight statuses text[].
-- Returns id, tid (the row's ctid, stable while locked), user_id, digest_date, status, created_at.
SELECT d.id::text AS id, d.ctid::text AS tid, d.user_id::text AS user_id, d.digest_date, d.status::text AS status, d.created_at
FROM {{schema}}.digest_history d
WHERE d.user_id = ANY ($1::uuid[]) AND d.status = ANY ($3::text[])
  AND (d.user_id, d.digest_date) IN (SELECT u, dd FROM unnest($1::uuid[], $2::date[]) AS p(u, dd))
FOR UPDATE NOWAIT
