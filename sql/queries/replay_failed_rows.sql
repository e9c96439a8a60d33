-- replay --failed --date: the rows of one digest_date that are `failed`, with the tenant the event
-- needs (the row's, or its user's when the row has none), in table order (no sort: a replay of
-- 100,000 rows should not spill a sort to disk). $1 digest_date.
-- Returns id, user_id, tenant_id, digest_date, status.
SELECT h.id, h.user_id, COALESCE(h.tenant_id, u.tenant_id) AS tenant_id, h.digest_date, h.status
FROM {{schema}}.digest_history h
LEFT JOIN {{schema}}.users u ON u.id = h.user_id
WHERE h.status = 'failed' AND h.digest_date = $1::date
