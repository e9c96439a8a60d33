-- replay --failed --date: the rows of one digest_date that are `failed`, with the tenant the event
-- needs (the row's, or its user's when the row has none) and, for the same (user, day), another row
-- in flight (a replay beside it would be a second digest: never published) and another row `sent`
-- (a replay sends again: --force may ask for it). One hash aggregate for the day instead of a lookup
-- per row. A failed row is neither, so "another" needs no id test. Newest first (the keep rule:
-- created_at, then id, descending): of several failed rows of one (user, day), a replay publishes
-- for the first only (planReplay).
-- $1 digest_date, $2 in-flight statuses (text[]).
-- Returns id, user_id, tenant_id, digest_date, status, in_flight_other_id, sent_other_id (null when none).
SELECT h.id, h.user_id, COALESCE(h.tenant_id, u.tenant_id) AS tenant_id, h.digest_date, h.status,
       b.in_flight_id AS in_flight_other_id, b.sent_id AS sent_other_id
FROM {{schema}}.digest_history h
LEFT JOIN {{schema}}.users u ON u.id = h.user_id
LEFT JOIN (
  SELECT o.user_id,
         (array_agg(o.id) FILTER (WHERE o.status = ANY ($2::text[])))[1] AS in_flight_id,
         (array_agg(o.id) FILTER (WHERE o.status = 'sent'))[1] AS sent_id
  FROM {{schema}}.digest_history o
  WHERE o.digest_date = $1::date AND (o.status = ANY ($2::text[]) OR o.status = 'sent')
  GROUP BY o.user_id
) b ON b.user_id = h.user_id
WHERE h.status = 'failed' AND h.digest_date = $1::date
ORDER BY h.created_at DESC, h.id DESC
