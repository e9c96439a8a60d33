-- The in-flight rows of (user, day) groups with more than one in-flight row, a page of groups at a
-- time in (user_id, digest_date) order (keyset: groups after $5/$6; never OFFSET).
-- $1 in-flight statuses text[], $2 user_id (or null), $3 digest_date = (or null), $4 digest_date >= (or null),
-- $5 last user_id seen (or null to start), $6 last digest_date seen, $7 groups per page, $8 keep policy
-- ('newest' | 'oldest').
-- Returns id, userId, digestDate, status, createdUs (created_at in microseconds since the epoch),
-- keepRank (1 for the row to keep, then 2, 3.. in keep order: the keep rule, compareNewestFirst /
-- classifyGroup in src/core: newest: created_at, then id, descending, as the service orders rows, to
-- the microsecond; oldest: ascending; fix_batch ranks the same way; test/integration/keep-rule.test.ts
-- holds both equal to the core), named as the core's RepairRow (the rows are used as read), in
-- (user, day, rank) order.
WITH groups AS (
  SELECT user_id, digest_date
  FROM {{schema}}.digest_history
  WHERE status = ANY ($1::text[])
    AND ($2::uuid IS NULL OR user_id = $2::uuid)
    AND ($3::date IS NULL OR digest_date = $3::date)
    AND ($4::date IS NULL OR digest_date >= $4::date)
    AND ($5::uuid IS NULL OR (user_id, digest_date) > ($5::uuid, $6::date))
  GROUP BY user_id, digest_date
  HAVING count(*) > 1
  ORDER BY user_id, digest_date
  LIMIT $7
)
SELECT d.id::text AS id, d.user_id::text AS "userId", d.digest_date AS "digestDate", d.status::text AS status,
       (extract(epoch FROM d.created_at) * 1000000)::int8 AS "createdUs",
       row_number() OVER (PARTITION BY d.user_id, d.digest_date
                          ORDER BY CASE WHEN $8 = 'oldest' THEN d.created_at END, CASE WHEN $8 = 'oldest' THEN d.id END,
                                   d.created_at DESC, d.id DESC)::int AS "keepRank"
FROM {{schema}}.digest_history d
JOIN groups g ON g.user_id = d.user_id AND g.digest_date = d.digest_date
WHERE d.status = ANY ($1::text[])
ORDER BY d.user_id, d.digest_date, "keepRank"
