-- Settings for a run's batches, on the session, for the length of the run (each batch is one
-- statement in its own implicit transaction, or undo's one short transaction): the batches'
-- lock_timeout, and synchronous_commit off (a commit does not wait for its WAL flush; a server crash
-- may lose the last few batches whole, table and audit together, and the run's final record, written
-- after repair_batch_restore, flushes them all). $1 lock_timeout in milliseconds as text.
-- Returns the values before (for repair_batch_restore).
WITH before AS MATERIALIZED (
  SELECT current_setting('lock_timeout') AS lock_timeout, current_setting('synchronous_commit') AS synchronous_commit
)
SELECT b.lock_timeout, b.synchronous_commit, set_config('lock_timeout', $1 || 'ms', false) AS set_lock_timeout, set_config('synchronous_commit', 'off', false) AS set_synchronous_commit
FROM before b
