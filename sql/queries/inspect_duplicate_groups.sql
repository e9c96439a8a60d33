-- In-flight duplicate groups: (user, day) with more than one in-flight row, the most rows first.
-- $1 in-flight statuses text[], $2 digest_date = (date or null), $3 digest_date >= (date or null),
-- $4 user_id (uuid or null), $5 limit.
-- Returns user_id, digest_date, row_count, ids (newest first), statuses, created (timestamptz[]),
-- oldest, newest, total_groups, total_rows (over all groups, before the limit).
SELECT user_id::text AS user_id,
       digest_date,
       count(*)::int AS row_count,
       array_agg(id::text ORDER BY created_at DESC, id DESC) AS ids,
       array_agg(status::text ORDER BY created_at DESC, id DESC) AS statuses,
       array_agg(created_at ORDER BY created_at DESC, id DESC) AS created,
       min(created_at) AS oldest,
       max(created_at) AS newest,
       count(*) OVER ()::int AS total_groups,
       (sum(count(*)) OVER ())::int AS total_rows
FROM {{schema}}.digest_history
WHERE status = ANY ($1::text[])
  AND ($2::date IS NULL OR digest_date = $2::date)
  AND ($3::date IS NULL OR digest_date >= $3::date)
  AND ($4::uuid IS NULL OR user_id = $4::uuid)
GROUP BY user_id, digest_date
HAVING count(*) > 1
ORDER BY count(*) DESC, min(created_at) ASC, user_id, digest_date
LIMIT $5
