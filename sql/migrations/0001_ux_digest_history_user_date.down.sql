-- 0001 down: remove the guard. On Postgres the runner adds CONCURRENTLY (no lock that blocks writers).
-- digest-doctor: concurrently
DROP INDEX {{schema}}.ux_digest_history_user_date;
