-- Every row of one (user, day), newest first as the service orders them (created_at, to the
-- microsecond, then id, descending: the keep rule, compareNewestFirst in src/core/decision.ts).
-- $1 user_id, $2 digest_date.
-- Returns id, status, created_at, createdUs (created_at in microseconds since the epoch: inspect
-- --user marks the kept row by classifyGroup over it), sent_at, tenant_id, posts_count, content_length.
SELECT id::text AS id, status::text AS status, created_at,
       (extract(epoch FROM created_at) * 1000000)::int8 AS "createdUs", sent_at, tenant_id::text AS tenant_id,
       posts_count, length(content) AS content_length
FROM {{schema}}.digest_history
WHERE user_id = $1::uuid AND digest_date = $2::date
ORDER BY created_at DESC, id DESC
