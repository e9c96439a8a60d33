-- Settings for the current batch transaction only: its lock_timeout, and synchronous_commit off (the
-- commit does not wait for its WAL flush; a server crash may lose the last few batches whole, table
-- and audit together, and the run's final record, written with the session's own setting, flushes
-- them all). $1 lock_timeout in milliseconds as text. Returns lock_timeout, synchronous_commit.
SELECT set_config('lock_timeout', $1 || 'ms', true) AS lock_timeout, set_config('synchronous_commit', 'off', true) AS synchronous_commit
