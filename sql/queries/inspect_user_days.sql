-- How many digest_history rows one user has on any day, and the latest of those days: what inspect
-- --user says when the day asked for has no row (a wrong user id or day, not "nothing wrong").
-- $1 user_id. Returns row_count, latest_date (YYYY-MM-DD text or null).
SELECT count(*)::int AS row_count, max(digest_date)::text AS latest_date
FROM {{schema}}.digest_history
WHERE user_id = $1::uuid
