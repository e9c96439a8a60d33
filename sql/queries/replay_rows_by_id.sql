-- replay: the rows events point at (to skip sent, missing or superseded ones, and to rebuild
-- --history-id events), each with another row of the same (user, day) in flight, and another that
-- is `sent`, if any. $1 ids (uuid[]), $2 in-flight statuses (text[]).
-- Returns id, user_id, tenant_id (the row's, or its user's), digest_date, status, in_flight_other_id,
-- sent_other_id.
SELECT h.id, h.user_id, COALESCE(h.tenant_id, u.tenant_id) AS tenant_id, h.digest_date, h.status,
       (SELECT o.id FROM {{schema}}.digest_history o
        WHERE o.user_id = h.user_id AND o.digest_date = h.digest_date AND o.id <> h.id AND o.status = ANY ($2::text[])
        LIMIT 1) AS in_flight_other_id,
       (SELECT o.id FROM {{schema}}.digest_history o
        WHERE o.user_id = h.user_id AND o.digest_date = h.digest_date AND o.id <> h.id AND o.status = 'sent'
        LIMIT 1) AS sent_other_id
FROM {{schema}}.digest_history h
LEFT JOIN {{schema}}.users u ON u.id = h.user_id
WHERE h.id = ANY ($1::uuid[])
