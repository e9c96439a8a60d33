-- Session-level advisory lock for migrations on one service schema; never waits.
-- $1 service schema. Returns locked.
SELECT pg_try_advisory_lock(hashtext('digest-doctor:migrate'), hashtext($1::text)) AS locked
