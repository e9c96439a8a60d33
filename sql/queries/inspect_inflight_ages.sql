-- In-flight rows by age against the database clock, and how many are older than the stuck threshold.
-- $1 in-flight statuses text[], $2 date =, $3 date >=, $4 stuck threshold in ms.
-- Returns lt_1h, h1_d1, d1_d7, gt_7d, stuck, oldest.
SELECT count(*) FILTER (WHERE created_at > now() - interval '1 hour')::int AS lt_1h,
       count(*) FILTER (WHERE created_at <= now() - interval '1 hour' AND created_at > now() - interval '1 day')::int AS h1_d1,
       count(*) FILTER (WHERE created_at <= now() - interval '1 day' AND created_at > now() - interval '7 days')::int AS d1_d7,
       count(*) FILTER (WHERE created_at <= now() - interval '7 days')::int AS gt_7d,
       count(*) FILTER (WHERE created_at < now() - make_interval(secs => $4::bigint / 1000.0))::int AS stuck,
       min(created_at) AS oldest
FROM {{schema}}.digest_history
WHERE status = ANY ($1::text[])
  AND ($2::date IS NULL OR digest_date = $2::date)
  AND ($3::date IS NULL OR digest_date >= $3::date)
