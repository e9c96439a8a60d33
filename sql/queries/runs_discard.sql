-- Removes the record of a finished run that changed nothing and audited nothing (an undo that found
-- nothing to put back keeps no run, as one that stops before its first batch). $1 id.
-- Returns id when the record was removed (none: it changed or audited something, and stays).
DELETE FROM {{state}}.runs r
WHERE r.id = $1::uuid
  AND r.rows_changed = 0
  AND NOT EXISTS (SELECT FROM {{state}}.audit_batches b WHERE b.run_id = r.id)
RETURNING r.id::text AS id
