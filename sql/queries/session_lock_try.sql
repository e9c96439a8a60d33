-- One run at a time per (what, schema): a session-level advisory lock, tried, never waited for (the
-- caller polls: postgres/session.ts pollAdvisoryLock).
-- $1 what ('digest-doctor:migrate', a repair's command key), $2 service schema. Returns locked boolean.
SELECT pg_try_advisory_lock(hashtext($1::text), hashtext($2::text)) AS locked
