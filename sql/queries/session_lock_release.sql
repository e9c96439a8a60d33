-- Releases a session advisory lock taken with pg_try_advisory_lock(hashtext($1), hashtext($2)).
-- $1 lock key, $2 service schema. Returns released (false: this server process did not hold it).
SELECT pg_advisory_unlock(hashtext($1::text), hashtext($2::text)) AS released
