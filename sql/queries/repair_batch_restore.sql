-- Puts back the session's settings as repair_batch_settings found them, once a run's batches are
-- done. $1 lock_timeout, $2 synchronous_commit (as current_setting gave them).
SELECT set_config('lock_timeout', $1, false) AS lock_timeout, set_config('synchronous_commit', $2, false) AS synchronous_commit
