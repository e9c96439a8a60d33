-- The in-flight rows now of the given (user, day) groups. $1 user_ids uuid[], $2 digest_dates date[]
-- (pairs), $3 in-flight statuses text[]. Returns id, user_id, digest_date.
SELECT d.id::text AS id, d.user_id::text AS user_id, d.digest_date::text AS digest_date
FROM {{schema}}.digest_history d
WHERE d.user_id = ANY ($1::uuid[])
  AND (d.user_id, d.digest_date) IN (SELECT u, dd FROM unnest($1::uuid[], $2::date[]) AS p(u, dd))
  AND d.status = ANY ($3::text[])
