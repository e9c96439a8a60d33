-- What undo decides from, for every audited row of a run in one statement (state version 4 and
-- later; an older layout is read by readRunAudit): from each audit batch the typed keys (sql/state/0004)
-- or, for batches written before them, the same values out of the images; each row as it is now,
-- reached at the ctid the batch left it at (a heap fetch, no index probe) when it is still there,
-- else by id; and the in-flight rows now of the (user, day) of each row that could go back in
-- flight. Nothing is locked and nothing decided here: src/core (decideUndo) decides the plan, and each
-- batch decides again under its locks (undo_batch.sql). --apply reads no in-flight rows ($3 false):
-- its batches decide alone, with the in-flight rows as they are under their locks.
-- $1 run id, $2 in-flight statuses text[], $3 with the in-flight rows (boolean).
-- Returns one row per audit batch of the run, in the order written: seq, rows (json array, one
-- element per changed row in the order written: [row_id, before status, before sent_at (null),
-- after status, status now (null: the row is gone), tid (where it is now), user_id, digest_date,
-- created_at (ISO, to the microsecond) as it is now, in-flight row ids of its (user, day) now (null
-- unless it could go back in flight, and without $3)]).
WITH audited AS (
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
), joined AS (
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
  WHERE $3::boolean AND o.status = ANY ($2::text[])
), grouped AS (
  SELECT k.*, array_agg(k.busy_id::text) FILTER (WHERE k.busy_id IS NOT NULL) OVER g AS ids
  FROM keyed k
  WINDOW g AS (PARTITION BY k.user_id, k.digest_date ORDER BY k.busy_id ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
)
-- One row per audit batch, its rows as one json array each (parsed natively by the client: 50,000
-- rows as rows of 14 columns took the client longer than the query).
SELECT g.seq::float8 AS seq,
       json_agg(json_build_array(g.row_id, g.before_status, g.before_sent_at, g.after_status, g.now_status, g.now_tid::text,
                                 g.user_id, g.digest_date, g.created_at, CASE WHEN $3::boolean AND g.candidate THEN coalesce(g.ids, '{}') END) ORDER BY g.ord) AS rows
FROM grouped g
WHERE g.row_id IS NOT NULL
GROUP BY g.seq
ORDER BY g.seq
