-- Marks a run finished. $1 id, $2 status (done | interrupted | failed), $3 error text or null.
-- Returns rows_changed.
UPDATE {{state}}.runs
SET status = $2, error = $3, finished_at = clock_timestamp()
WHERE id = $1::uuid
RETURNING rows_changed
