-- requestDigest: insert a pending row unless (user, day) already has one in flight. Needs the
-- partial unique index ux_digest_history_user_date (else 42P10). created_at is the database's now().
-- $1 id, $2 user_id, $3 tenant_id, $4 digest_date.
-- Returns the new row (id, status, digest_date, created_at, tenant_id), or nothing on a conflict.
INSERT INTO {{schema}}.digest_history (id, user_id, tenant_id, digest_date, content, status)
VALUES ($1::uuid, $2::uuid, $3::uuid, $4::date, '', 'pending')
ON CONFLICT (user_id, digest_date) WHERE status IN ('pending', 'processing') DO NOTHING
RETURNING id::text AS id, status::text AS status, digest_date, created_at, tenant_id::text AS tenant_id
