-- replay: the rows events point at (to skip sent or missing ones, and to rebuild --history-id
-- events). $1 ids (uuid[]). Returns id, user_id, tenant_id (the row's, or its user's), digest_date, status.
SELECT h.id, h.user_id, COALESCE(h.tenant_id, u.tenant_id) AS tenant_id, h.digest_date, h.status
FROM {{schema}}.digest_history h
LEFT JOIN {{schema}}.users u ON u.id = h.user_id
WHERE h.id = ANY ($1::uuid[])
