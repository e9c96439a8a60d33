-- Inside a batch transaction: locks the in-flight rows of the batch's groups, skipping rows another
-- session holds, and counts each group's in-flight rows without locking (a shortfall means some are
-- held elsewhere).
-- $1 user_ids uuid[], $2 digest_dates date[] (pairs), $3 in-flight statuses text[].
-- Returns id, tid (the row's ctid, stable while locked), user_id, digest_date, status, created_at, group_in_flight.
WITH pairs AS (
  SELECT DISTINCT u, dd FROM unnest($1::uuid[], $2::date[]) AS p(u, dd)
), visible AS MATERIALIZED (
  SELECT o.user_id AS u, o.digest_date AS dd, count(*)::int AS n
  FROM {{schema}}.digest_history o
  WHERE o.user_id = ANY ($1::uuid[]) AND o.status = ANY ($3::text[])
    AND (o.user_id, o.digest_date) IN (SELECT u, dd FROM pairs)
  GROUP BY o.user_id, o.digest_date
), locked AS (
  SELECT d.id, d.ctid AS tid, d.user_id, d.digest_date, d.status, d.created_at
  FROM {{schema}}.digest_history d
  WHERE d.user_id = ANY ($1::uuid[]) AND d.status = ANY ($3::text[])
    AND (d.user_id, d.digest_date) IN (SELECT u, dd FROM pairs)
  FOR UPDATE SKIP LOCKED
)
SELECT l.id::text AS id, l.tid::text AS tid, l.user_id::text AS user_id, l.digest_date, l.status::text AS status, l.created_at, v.n AS group_in_flight
FROM locked l
JOIN visible v ON v.u = l.user_id AND v.dd = l.digest_date
