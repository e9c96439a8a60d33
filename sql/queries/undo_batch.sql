-- One undo batch in one statement (as fix_batch and stale_apply): locks the audited rows as they are
-- now (skipping rows another session holds), decides each entry as decideUndo (src/core/repair.ts)
-- does, puts back status and sent_at from the before-image of the rows it restores, audits them (one
-- audit_batches row) and counts them on the run.
-- The decision, in order: the row is gone -> row-deleted; its status is not what the run set ->
-- status-changed; the live CHECK does not allow the old status -> status-not-allowed; the old status
-- is not in flight -> restore. A row going back in flight is restored only when no other row of its
-- (user, day) is in flight now and it is the newest (created_at, then id, descending: the keep rule)
-- of the batch's rows going back for that day; otherwise would-duplicate, naming the other row.
-- A (user, day) with a row another session holds is left whole for the caller's retry (verdict held).
-- $1 row ids uuid[], $2 before-images jsonb[] (parallel), $3 statuses the run set text[] (parallel),
-- $4 in-flight statuses text[], $5 run id, $6 command, $7 service schema name, $8 client host,
-- $9 statuses the CHECK constraints allow text[] (NULL: unknown, left to the database).
-- Returns one row per entry: id, verdict (restore | held | row-deleted | status-changed |
-- status-not-allowed | would-duplicate), status (the row's status now), other (the in-flight row of
-- the same day, for would-duplicate), changed (restored by this statement).
WITH entry AS (
  SELECT t.id, t.before, t.expected,
         (t.before ->> 'user_id')::uuid AS user_id, (t.before ->> 'digest_date')::date AS digest_date,
         t.before ->> 'status' AS to_status, (t.before ->> 'created_at')::timestamptz AS created_at
  FROM unnest($1::uuid[], $2::jsonb[], $3::text[]) AS t(id, before, expected)
), locked AS (
  -- The latest committed version of each row, locked; its ctid is stable while the lock is held.
  SELECT d.ctid AS tid, d.id, d.status::text AS status, row_to_json(d) AS image
  FROM {{schema}}.digest_history d
  WHERE d.id = ANY ($1::uuid[])
  FOR UPDATE OF d SKIP LOCKED
), held AS (
  -- Rows that exist but were not locked: another session holds them; their days wait for the retry.
  SELECT DISTINCT e.user_id, e.digest_date
  FROM entry e JOIN {{schema}}.digest_history d ON d.id = e.id
  WHERE NOT EXISTS (SELECT FROM locked l WHERE l.id = e.id)
), ready AS (
  SELECT e.*, l.tid, l.status AS now_status, l.image
  FROM entry e LEFT JOIN locked l ON l.id = e.id
  WHERE NOT EXISTS (SELECT FROM held h WHERE h.user_id = e.user_id AND h.digest_date = e.digest_date)
), busy AS (
  -- The in-flight rows now of the batch's (user, day) groups: one index scan for the batch.
  SELECT o.user_id, o.digest_date, array_agg(o.id ORDER BY o.id) AS ids
  FROM {{schema}}.digest_history o
  WHERE o.user_id = ANY (ARRAY(SELECT DISTINCT user_id FROM ready))
    AND o.status = ANY ($4::text[])
  GROUP BY o.user_id, o.digest_date
), verdict AS (
  SELECT r.*,
         CASE
           WHEN r.tid IS NULL THEN 'row-deleted'
           WHEN r.now_status IS DISTINCT FROM r.expected THEN 'status-changed'
           WHEN $9::text[] IS NOT NULL AND NOT r.to_status = ANY ($9::text[]) THEN 'status-not-allowed'
           WHEN NOT r.to_status = ANY ($4::text[]) THEN 'restore'
           ELSE 'candidate'
         END AS v
  FROM ready r
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
  SELECT id, tid, before, image, now_status, v AS verdict, NULL::uuid AS other FROM verdict WHERE v <> 'candidate'
  UNION ALL
  SELECT id, tid, before, image, now_status,
         CASE WHEN busy_other IS NOT NULL OR rn > 1 THEN 'would-duplicate' ELSE 'restore' END,
         coalesce(busy_other, CASE WHEN rn > 1 THEN newest END)
  FROM ranked
), changed AS (
  UPDATE {{schema}}.digest_history d
  SET status = t.before ->> 'status', sent_at = (t.before ->> 'sent_at')::timestamptz
  FROM decided t
  WHERE t.verdict = 'restore' AND d.ctid = t.tid AND d.id = t.id
  RETURNING d.id, t.image AS before, json_build_object('status', d.status, 'sent_at', d.sent_at) AS change
), audited AS (
  -- The change is the two columns this UPDATE sets.
  INSERT INTO {{state}}.audit_batches (run_id, command, table_schema, row_ids, befores, changes, client_host)
  SELECT $5::uuid, $6, $7, array_agg(id), array_agg(before), array_agg(change), $8
  FROM changed
  HAVING count(*) > 0
  RETURNING cardinality(row_ids) AS n
), counted AS (
  UPDATE {{state}}.runs SET rows_changed = rows_changed + (SELECT n FROM audited) WHERE id = $5::uuid AND EXISTS (SELECT FROM audited)
)
SELECT e.id::text AS id, coalesce(dc.verdict, 'held') AS verdict, dc.now_status AS status, dc.other::text AS other,
       EXISTS (SELECT FROM changed c WHERE c.id = e.id) AS changed
FROM entry e LEFT JOIN decided dc ON dc.id = e.id
