-- lock_timeout for the current transaction only. $1 milliseconds as text. Returns lock_timeout.
SELECT set_config('lock_timeout', $1 || 'ms', true) AS lock_timeout
