-- Sets a session-level (not transaction-local) custom setting, to see whether it survives to the
-- next statement (a transaction pooler loses it). $1 value. Returns value, pid.
SELECT set_config('digest_doctor.session_probe', $1::text, false) AS value, pg_backend_pid() AS pid
