-- replay: for events with no row to look at (a DLQ event without history_id, or whose row is gone),
-- an in-flight row of the event's own (user, day), if any: a replay beside it would be a second
-- digest. All pairs in one statement: $1 user ids (uuid[]) and $2 digest dates (date[]), taken
-- pairwise (unnest of two arrays), $3 in-flight statuses (text[]).
-- Returns user_id, digest_date (text), id: one row per pair that has an in-flight row.
SELECT DISTINCT ON (p.user_id, p.digest_date) p.user_id::text AS user_id, p.digest_date::text AS digest_date, h.id
FROM unnest($1::uuid[], $2::date[]) AS p(user_id, digest_date)
JOIN {{schema}}.digest_history h ON h.user_id = p.user_id AND h.digest_date = p.digest_date
WHERE h.status = ANY ($3::text[])
