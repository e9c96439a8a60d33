-- replay --failed --date: the rows of one digest_date that are `failed`, with the tenant the event
-- needs (the row's, or its user's when the row has none) and another row of the same (user, day)
-- that is sent or in flight, if any (replaying would then send the digest twice). One hash join for
-- the day instead of a lookup per row; in table order (no sort to spill at 100,000 rows).
-- $1 digest_date, $2 statuses that make another row count (sent and in flight, text[]).
-- Returns id, user_id, tenant_id, digest_date, status, other_id (null when none).
SELECT h.id, h.user_id, COALESCE(h.tenant_id, u.tenant_id) AS tenant_id, h.digest_date, h.status, b.id AS other_id
FROM {{schema}}.digest_history h
LEFT JOIN {{schema}}.users u ON u.id = h.user_id
LEFT JOIN (
  SELECT DISTINCT ON (o.user_id) o.user_id, o.id
  FROM {{schema}}.digest_history o
  WHERE o.digest_date = $1::date AND o.status = ANY ($2::text[])
) b ON b.user_id = h.user_id
WHERE h.status = 'failed' AND h.digest_date = $1::date
