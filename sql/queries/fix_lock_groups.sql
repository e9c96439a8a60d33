-- Inside a batch transaction: locks the in-flight rows of the batch's groups, skipping rows another
-- session holds, and counts each group's in-flight rows without locking (a shortfall means some are
-- held elsewhere). $1 user_ids uuid[], $2 digest_dates date[] (pairs), $3 in-flight statuses text[].
-- Returns id, user_id, digest_date, status, created_at, group_in_flight.
SELECT d.id::text AS id, d.user_id::text AS user_id, d.digest_date, d.status::text AS status, d.created_at,
       (SELECT count(*)::int
        FROM {{schema}}.digest_history o
        WHERE o.user_id = d.user_id AND o.digest_date = d.digest_date AND o.status = ANY ($3::text[])) AS group_in_flight
FROM {{schema}}.digest_history d
WHERE (d.user_id, d.digest_date) IN (SELECT u, dd FROM unnest($1::uuid[], $2::date[]) AS p(u, dd))
  AND d.status = ANY ($3::text[])
ORDER BY d.id
FOR UPDATE OF d SKIP LOCKED
