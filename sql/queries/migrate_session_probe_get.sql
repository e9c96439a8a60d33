-- Reads the probe set by migrate_session_probe_set. No params. Returns value (null if lost), pid.
SELECT current_setting('digest_doctor.session_probe', true) AS value, pg_backend_pid() AS pid
