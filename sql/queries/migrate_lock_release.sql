-- Releases the lock taken by migrate_lock_try. $1 service schema. Returns released.
SELECT pg_advisory_unlock(hashtext('digest-doctor:migrate'), hashtext($1::text)) AS released
