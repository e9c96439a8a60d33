-- Every row of one (user, day), newest first as the service orders them (created_at, to the
-- microsecond, then id, descending; inspect --user marks the kept row by this order).
-- $1 user_id, $2 digest_date.
-- Returns id, status, created_at, sent_at, tenant_id, posts_count, content_length.
SELECT id::text AS id, status::text AS status, created_at, sent_at, tenant_id::text AS tenant_id,
       posts_count, length(content) AS content_length
FROM {{schema}}.digest_history
WHERE user_id = $1::uuid AND digest_date = $2::date
ORDER BY created_at DESC, id DESC
