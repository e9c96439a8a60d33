-- requestDigest: the in-flight row of (user, day) that won a conflict, oldest first (the one kept).
-- $1 user_id, $2 digest_date, $3 in-flight statuses (text[]).
-- Returns id, status, digest_date, created_at, tenant_id.
SELECT id::text AS id, status::text AS status, digest_date, created_at, tenant_id::text AS tenant_id
FROM {{schema}}.digest_history
WHERE user_id = $1::uuid AND digest_date = $2::date AND status = ANY ($3::text[])
ORDER BY created_at, id
LIMIT 1
