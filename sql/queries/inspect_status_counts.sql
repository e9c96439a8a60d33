-- Row counts by status. $1 date =, $2 date >=. Returns status, row_count.
SELECT status::text AS status, count(*)::int AS row_count
FROM {{schema}}.digest_history
WHERE ($1::date IS NULL OR digest_date = $1::date)
  AND ($2::date IS NULL OR digest_date >= $2::date)
GROUP BY status
ORDER BY count(*) DESC, status
