-- requestDigest: one row by id. $1 id. Returns id, status, digest_date, created_at, tenant_id.
SELECT id::text AS id, status::text AS status, digest_date, created_at, tenant_id::text AS tenant_id
FROM {{schema}}.digest_history
WHERE id = $1::uuid
