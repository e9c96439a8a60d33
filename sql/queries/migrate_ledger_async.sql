-- Ledger writes on the control session commit without waiting for the WAL flush: the catalog is
-- the truth, and a ledger row lost to a crash shows as drift that the next --apply records again.
-- No params. Returns synchronous_commit.
SELECT set_config('synchronous_commit', 'off', false) AS synchronous_commit
