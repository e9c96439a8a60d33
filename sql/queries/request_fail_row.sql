-- requestDigest: the publish of a new row failed: mark it failed so it does not sit `pending` with
-- no event (the scheduler skips pending rows). Conditional: only while still pending.
-- $1 id. Returns id when the row was changed.
UPDATE {{schema}}.digest_history SET status = 'failed'
WHERE id = $1::uuid AND status = 'pending'
RETURNING id
