-- replay: every in-flight row of the given (user, day)s. At planning, for events with no row to
-- look at (a DLQ event without history_id, or whose row is gone): a replay beside such a row would
-- be a second digest. Right before each publish batch (up to 100 events), for the batch's events:
-- the recheck that finds a row gone in flight since the plan (src/core/replay.ts recheckInFlight).
-- All pairs in one statement: $1 user ids (uuid[]) and $2 digest dates (date[]), taken pairwise
-- (unnest of two arrays), $3 in-flight statuses (text[]). In-flight rows are few: the planner reads
-- them through idx_digest_history_status and hash-joins the pairs (0.1 ms with none in flight, about
-- 3 ms with 10,000, measured on 100 pairs). Not as a prepared statement: its generic plan may probe
-- idx_digest_history_user_id and idx_digest_history_digest_date per pair (150 ms with 10,000 in flight).
-- Returns user_id, digest_date (text), id: one row per in-flight row (none for most pairs).
SELECT p.user_id::text AS user_id, p.digest_date::text AS digest_date, h.id
FROM unnest($1::uuid[], $2::date[]) AS p(user_id, digest_date)
JOIN {{schema}}.digest_history h ON h.user_id = p.user_id AND h.digest_date = p.digest_date
WHERE h.status = ANY ($3::text[])
