-- One undo batch in one statement (as fix_batch and stale_apply): locks the audited rows as they are
-- now (skipping rows another session holds), decides each entry as decideUndo (src/core/repair.ts)
-- does, puts back status and sent_at as the run found them on the rows it restores, audits them (one
-- audit_batches row) and counts them on the run.
-- Each row is reached at the ctid the plan found it at (a heap fetch, no index probe; undo_plan.sql)
-- and, when it is not there any more (changed since) or no ctid is given, by primary key. FOR UPDATE
-- locks the latest committed version; a version committed after this statement's snapshot is locked
-- but not updated (the UPDATE's snapshot cannot see it there), and its day waits for the retry.
-- The decision, in order: the row is gone -> row-deleted; its status is not what the run set ->
-- status-changed; the live CHECK does not allow the old status -> status-not-allowed; the old status
-- is not in flight -> restore. A row going back in flight is restored only when no other row of its
-- (user, day) as it is now is in flight now and it is the newest (created_at, then id, descending:
-- the keep rule) of the batch's rows going back for that day; otherwise would-duplicate, naming the
-- other row. A (user, day) with a row another session holds is left whole for the caller's retry
-- (verdict held).
-- $1 row ids uuid[], $2 their ctids as planned text[] (parallel; null: by id), $3 statuses the run
-- set text[], $4 statuses to put back text[], $5 sent_at to put back text[] (timestamptz), $6
-- in-flight statuses text[], $7 run id, $8 command, $9 service schema name, $10 client host, $11
-- statuses the CHECK constraints allow text[] (NULL: unknown, left to the database).
-- Returns one row per entry: id, verdict (restore | held | row-deleted | status-changed |
-- status-not-allowed | would-duplicate), status (the row's status now), other (the in-flight row of
-- the same day, for would-duplicate), changed (restored by this statement).
WITH entry AS MATERIALIZED (
  SELECT t.id, t.tid, t.expected, t.to_status, t.to_sent_at
  FROM unnest($1::uuid[], $2::text[]::tid[], $3::text[], $4::text[], $5::text[]::timestamptz[]) AS t(id, tid, expected, to_status, to_sent_at)
), at_tid AS MATERIALIZED (
  SELECT d.ctid AS tid, d.id, d.status::text AS status, d.sent_at, d.user_id, d.digest_date, d.created_at, row_to_json(d) AS image
  FROM entry e
  JOIN {{schema}}.digest_history d ON d.ctid = e.tid AND d.id = e.id
  FOR UPDATE OF d SKIP LOCKED
), by_id AS MATERIALIZED (
  -- Normally none: rows not at their planned ctid (changed since the plan, or held: skipped again).
  SELECT d.ctid AS tid, d.id, d.status::text AS status, d.sent_at, d.user_id, d.digest_date, d.created_at, row_to_json(d) AS image
  FROM {{schema}}.digest_history d
  WHERE d.id = ANY (ARRAY(SELECT e.id FROM entry e WHERE NOT EXISTS (SELECT FROM at_tid l WHERE l.id = e.id)))
  FOR UPDATE OF d SKIP LOCKED
), locked AS (
  SELECT * FROM at_tid
  UNION ALL
  SELECT * FROM by_id
), held AS MATERIALIZED (
  -- Rows that exist but were not locked: another session holds them; they and their days (as this
  -- statement's snapshot sees them) wait for the retry.
  SELECT d.id, d.user_id, d.digest_date
  FROM {{schema}}.digest_history d
  WHERE d.id = ANY (ARRAY(SELECT e.id FROM entry e WHERE NOT EXISTS (SELECT FROM locked l WHERE l.id = e.id)))
), verdict AS (
  SELECT e.id, e.expected, e.to_status, e.to_sent_at, l.tid, l.status AS now_status, l.sent_at AS now_sent_at, l.image, l.user_id, l.digest_date, l.created_at,
         CASE
           WHEN l.tid IS NULL THEN 'row-deleted'
           WHEN l.status IS DISTINCT FROM e.expected THEN 'status-changed'
           WHEN $11::text[] IS NOT NULL AND NOT e.to_status = ANY ($11::text[]) THEN 'status-not-allowed'
           WHEN NOT e.to_status = ANY ($6::text[]) THEN 'restore'
           ELSE 'candidate'
         END AS v
  FROM entry e
  LEFT JOIN locked l ON l.id = e.id
  WHERE NOT EXISTS (SELECT FROM held h WHERE h.id = e.id OR (h.user_id = l.user_id AND h.digest_date = l.digest_date))
), busy AS (
  -- The in-flight rows now of the candidates' (user, day) groups: one index scan for the batch.
  SELECT o.user_id, o.digest_date, array_agg(o.id ORDER BY o.id) AS ids
  FROM {{schema}}.digest_history o
  WHERE o.user_id = ANY (ARRAY(SELECT DISTINCT user_id FROM verdict WHERE v = 'candidate'))
    AND o.status = ANY ($6::text[])
  GROUP BY o.user_id, o.digest_date
), ranked AS (
  SELECT v.*,
         (SELECT x FROM unnest(b.ids) AS x WHERE x <> v.id LIMIT 1) AS busy_other,
         first_value(v.id) OVER w AS newest,
         row_number() OVER w AS rn
  FROM verdict v
  LEFT JOIN busy b ON b.user_id = v.user_id AND b.digest_date = v.digest_date
  WHERE v.v = 'candidate'
  WINDOW w AS (PARTITION BY v.user_id, v.digest_date ORDER BY v.created_at DESC, v.id DESC)
), decided AS (
  SELECT id, tid, to_status, to_sent_at, image, now_status, now_sent_at, v AS verdict, NULL::uuid AS other FROM verdict WHERE v <> 'candidate'
  UNION ALL
  SELECT id, tid, to_status, to_sent_at, image, now_status, now_sent_at,
         CASE WHEN busy_other IS NOT NULL OR rn > 1 THEN 'would-duplicate' ELSE 'restore' END,
         coalesce(busy_other, CASE WHEN rn > 1 THEN newest END)
  FROM ranked
), changed AS (
  UPDATE {{schema}}.digest_history d
  SET status = t.to_status, sent_at = t.to_sent_at
  FROM decided t
  WHERE t.verdict = 'restore' AND d.ctid = t.tid AND d.id = t.id
  RETURNING d.id, t.image AS before, json_build_object('status', d.status, 'sent_at', d.sent_at) AS change,
            d.ctid AS tid, t.now_status AS status_before, t.now_sent_at AS sent_at_before, d.status::text AS status_after
), audited AS (
  -- The change is the two columns this UPDATE sets; the typed keys are undo's (sql/state/0004).
  INSERT INTO {{state}}.audit_batches (run_id, command, table_schema, row_ids, befores, changes, client_host, tids, statuses_before, sent_ats_before, statuses_after)
  SELECT $7::uuid, $8, $9, array_agg(id), array_agg(before), array_agg(change), $10,
         array_agg(tid), array_agg(status_before), array_agg(sent_at_before), array_agg(status_after)
  FROM changed
  HAVING count(*) > 0
  RETURNING cardinality(row_ids) AS n
), counted AS (
  UPDATE {{state}}.runs SET rows_changed = rows_changed + (SELECT n FROM audited) WHERE id = $7::uuid AND EXISTS (SELECT FROM audited)
)
SELECT e.id::text AS id, coalesce(dc.verdict, 'held') AS verdict, dc.now_status AS status, dc.other::text AS other,
       EXISTS (SELECT FROM changed c WHERE c.id = e.id) AS changed
FROM entry e LEFT JOIN decided dc ON dc.id = e.id
