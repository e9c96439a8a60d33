-- replay: the rows events point at (to skip sent, missing or superseded ones, and to rebuild
-- --history-id events). $1 ids (uuid[]), $2 statuses that make another row of the same (user, day)
-- count (sent and in flight, text[]).
-- Returns id, user_id, tenant_id (the row's, or its user's), digest_date, status, other_id.
SELECT h.id, h.user_id, COALESCE(h.tenant_id, u.tenant_id) AS tenant_id, h.digest_date, h.status,
       (SELECT o.id FROM {{schema}}.digest_history o
        WHERE o.user_id = h.user_id AND o.digest_date = h.digest_date AND o.id <> h.id AND o.status = ANY ($2::text[])
        LIMIT 1) AS other_id
FROM {{schema}}.digest_history h
LEFT JOIN {{schema}}.users u ON u.id = h.user_id
WHERE h.id = ANY ($1::uuid[])
