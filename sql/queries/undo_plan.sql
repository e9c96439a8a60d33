-- What undo decides from, for every audited row of a run in one statement (state version 4 and
-- later; an older layout is read by readRunAudit): from each audit batch the typed keys (sql/state/0004)
-- or, for batches written before them, the same values out of the images; each row as it is now,
-- reached at the ctid the batch left it at (a heap fetch, no index probe) when it is still there,
-- else by id; and the in-flight rows now of the (user, day) of each row that could go back in
-- flight. Nothing is locked and nothing decided here: src/core (decideUndo) decides the plan, and each
-- batch decides again under its locks (undo_batch.sql).
-- $1 run id, $2 in-flight statuses text[].
-- Returns, in the order written: row_id, before_status, before_sent_at (text, null), after_status,
-- now_status (null: the row is gone), tid (where it is now, text), user_id, digest_date, created_at
-- (ISO text to the microsecond) as it is now, in_flight (ids of the in-flight rows of its (user, day)
-- now; null unless it could go back in flight).
WITH audited AS MATERIALIZED (
  SELECT b.seq, i.ord, i.row_id, i.tid, i.before_status, i.before_sent_at, i.after_status
  FROM {{state}}.audit_batches b
  CROSS JOIN LATERAL unnest(b.row_ids, b.tids, b.statuses_before, b.sent_ats_before, b.statuses_after)
    WITH ORDINALITY AS i(row_id, tid, before_status, before_sent_at, after_status, ord)
  WHERE b.run_id = $1::uuid AND b.tids IS NOT NULL
  UNION ALL
  -- Only these batches' images are read (and parsed): the typed keys need neither.
  SELECT b.seq, i.ord, i.row_id, NULL::tid, i.before ->> 'status', (i.before ->> 'sent_at')::timestamptz,
         coalesce(i.change ->> 'status', i.before ->> 'status')
  FROM {{state}}.audit_batches b
  CROSS JOIN LATERAL unnest(b.row_ids, b.befores, b.changes) WITH ORDINALITY AS i(row_id, before, change, ord)
  WHERE b.run_id = $1::uuid AND b.tids IS NULL
), joined AS MATERIALIZED (
  -- Each row where the batch left it (ctid and id), else (changed since, or no tids) by primary key:
  -- the second probe has a NULL key, and finds nothing at once, when the first found the row.
  SELECT a.*, coalesce(t.ctid, i.ctid) AS now_tid, coalesce(t.status, i.status)::text AS now_status,
         coalesce(t.user_id, i.user_id) AS user_id, coalesce(t.digest_date, i.digest_date) AS digest_date,
         coalesce(t.created_at, i.created_at) AS created_at,
         coalesce(t.status, i.status) = a.after_status AND a.before_status = ANY ($2::text[]) AS candidate
  FROM audited a
  LEFT JOIN {{schema}}.digest_history t ON t.ctid = a.tid AND t.id = a.row_id
  LEFT JOIN {{schema}}.digest_history i ON i.id = (CASE WHEN t.ctid IS NULL THEN a.row_id END)
), keyed AS (
  -- The audited rows and the in-flight rows now, in one stream partitioned by (user, day) below: no
  -- join between them (the planner cannot estimate the audited rows and would probe the table once
  -- per row; the in-flight rows are few, one index scan).
  SELECT j.seq, j.ord, j.row_id, j.before_status, j.before_sent_at, j.after_status, j.now_status, j.now_tid,
         j.user_id, j.digest_date, j.created_at, j.candidate, NULL::uuid AS busy_id
  FROM joined j
  UNION ALL
  SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, o.user_id, o.digest_date, NULL, NULL, o.id
  FROM {{schema}}.digest_history o
  WHERE o.status = ANY ($2::text[])
), grouped AS (
  SELECT k.*, array_agg(k.busy_id::text) FILTER (WHERE k.busy_id IS NOT NULL) OVER g AS ids
  FROM keyed k
  WINDOW g AS (PARTITION BY k.user_id, k.digest_date ORDER BY k.busy_id ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
)
SELECT g.row_id::text AS row_id, g.before_status, g.before_sent_at::text AS before_sent_at, g.after_status, g.now_status,
       g.now_tid::text AS tid, g.user_id::text AS user_id, g.digest_date::text AS digest_date, to_json(g.created_at) #>> '{}' AS created_at,
       CASE WHEN g.candidate THEN coalesce(g.ids, '{}') END AS in_flight
FROM grouped g
WHERE g.row_id IS NOT NULL
ORDER BY g.seq, g.ord
