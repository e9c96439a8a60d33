-- One repair per command and schema: a session-level advisory lock, tried (the caller polls).
-- $1 command key, $2 schema. Returns locked boolean.
SELECT pg_try_advisory_lock(hashtext($1), hashtext($2)) AS locked
