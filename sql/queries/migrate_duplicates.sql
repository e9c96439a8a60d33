-- (user, day) groups holding more than one row the unique index covers: the build would fail on
-- them. Keys first (one hash aggregate over the covered rows, materialised so the LIMIT cannot
-- turn it into a walk of another index), details only for the groups listed.
-- $1 covered statuses text[], $2 limit. Returns user_id, digest_date, row_count, ids (newest
-- first), statuses, total_groups, total_rows (over all groups).
WITH covered AS (
  SELECT user_id, digest_date FROM {{schema}}.digest_history WHERE status = ANY ($1::text[])
), dup AS MATERIALIZED (
  SELECT user_id, digest_date, count(*)::int AS row_count FROM covered GROUP BY user_id, digest_date HAVING count(*) > 1
)
SELECT d.user_id::text AS user_id,
       d.digest_date,
       d.row_count,
       ARRAY(SELECT h.id::text FROM {{schema}}.digest_history h
             WHERE h.user_id = d.user_id AND h.digest_date = d.digest_date AND h.status = ANY ($1::text[])
             ORDER BY h.created_at DESC, h.id DESC) AS ids,
       ARRAY(SELECT h.status::text FROM {{schema}}.digest_history h
             WHERE h.user_id = d.user_id AND h.digest_date = d.digest_date AND h.status = ANY ($1::text[])
             ORDER BY h.created_at DESC, h.id DESC) AS statuses,
       (SELECT count(*) FROM dup)::int AS total_groups,
       (SELECT coalesce(sum(row_count), 0) FROM dup)::int AS total_rows
FROM dup d
ORDER BY d.row_count DESC, d.user_id, d.digest_date
LIMIT $2
