-- Cancels the running statement of one backend (the build), from another session. $1 pid.
-- Returns cancelled.
SELECT pg_cancel_backend($1::int) AS cancelled
