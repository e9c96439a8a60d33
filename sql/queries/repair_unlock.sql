-- Releases the repair lock taken by repair_try_lock. $1 command key, $2 schema. Returns unlocked boolean.
SELECT pg_advisory_unlock(hashtext($1), hashtext($2)) AS unlocked
