-- What the session is connected to. No params. Returns in_recovery, transaction_read_only,
-- default_read_only (booleans), current_user, pid, server_port.
SELECT pg_is_in_recovery() AS in_recovery,
       current_setting('transaction_read_only') = 'on' AS transaction_read_only,
       current_setting('default_transaction_read_only') = 'on' AS default_read_only,
       current_user::text AS current_user,
       pg_backend_pid() AS pid,
       inet_server_port() AS server_port
