-- requestDigest: every row of one (user, day), newest first (created_at, to the microsecond, then
-- id, descending: the keep rule, compareNewestFirst in src/core/decision.ts).
-- $1 user_id, $2 digest_date. Returns id, status, createdUs (created_at in microseconds since the
-- epoch: correctedDecision orders by it) (none when the day has no rows).
SELECT id::text AS id, status::text AS status, (extract(epoch FROM created_at) * 1000000)::int8 AS "createdUs"
FROM {{schema}}.digest_history
WHERE user_id = $1::uuid AND digest_date = $2::date
ORDER BY created_at DESC, id DESC
