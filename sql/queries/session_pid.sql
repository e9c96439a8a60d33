-- The server process running this statement. No params. Returns pid.
SELECT pg_backend_pid() AS pid
