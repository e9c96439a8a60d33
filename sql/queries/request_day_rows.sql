-- requestDigest: the database clock and every row of one (user, day), newest first.
-- $1 user_id, $2 digest_date. Returns id, status, created_at (none when the day has no rows).
SELECT id::text AS id, status::text AS status, created_at
FROM {{schema}}.digest_history
WHERE user_id = $1::uuid AND digest_date = $2::date
ORDER BY created_at DESC, id DESC
