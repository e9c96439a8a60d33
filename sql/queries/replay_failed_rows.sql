-- replay --failed --date: the rows of one digest_date that are `failed`, oldest first, with the
-- tenant the event needs (the row's, or its user's when the row has none). $1 digest_date.
-- Returns id, user_id, tenant_id, digest_date, status.
SELECT h.id::text AS id, h.user_id::text AS user_id, COALESCE(h.tenant_id, u.tenant_id)::text AS tenant_id,
       h.digest_date, h.status::text AS status
FROM {{schema}}.digest_history h
LEFT JOIN {{schema}}.users u ON u.id = h.user_id
WHERE h.status = 'failed' AND h.digest_date = $1::date
ORDER BY h.created_at, h.id
