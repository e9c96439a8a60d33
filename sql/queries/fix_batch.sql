-- One fix-duplicates batch, in one statement inside its transaction: for each (user, day) of the
-- batch, lock its in-flight rows (skipping rows another session holds), keep one by the policy and
-- mark the others with the repair status, write the batch's images to the audit (one audit_batches
-- row) and count them on the run.
-- A group is changed only when it is stable: every in-flight row this statement's snapshot sees is
-- locked by it at that same version (so another session holds none of them, none changed since the
-- snapshot, and the UPDATE below sees exactly the rows decided on). A row that went in flight after
-- the snapshot is not seen, as if it came after the commit. The kept row is one of them,
-- locked and in flight until the commit: a group never loses its kept row, and never keeps two.
-- A group that is not stable is left alone and reported (visible_n > stable_n) for the retry pass.
-- The keep order is the one the plan uses (fix_duplicate_rows): the keep rule (compareNewestFirst /
-- classifyGroup in src/core): newest (created_at to the microsecond, then id, descending, as the
-- service orders rows) or oldest (ascending); test/integration/keep-rule.test.ts holds it equal.
-- $1 user_ids uuid[], $2 digest_dates date[] (pairs), $3 in-flight statuses text[], $4 keep policy
-- ('newest' | 'oldest'), $5 new status, $6 run id, $7 command, $8 service schema name, $9 client host.
-- Returns, per group with an in-flight row: user_id, digest_date, visible_n, stable_n, kept_id
-- (null unless changed), failed (ids changed, null unless changed).
WITH pairs AS (
  SELECT DISTINCT u, dd FROM unnest($1::uuid[], $2::date[]) AS p(u, dd)
), visible AS MATERIALIZED (
  SELECT o.user_id, o.digest_date, o.id, o.ctid AS tid, o.created_at,
         count(*) OVER (PARTITION BY o.user_id, o.digest_date) AS visible_n
  FROM {{schema}}.digest_history o
  WHERE o.user_id = ANY ($1::uuid[]) AND o.status = ANY ($3::text[])
    AND (o.user_id, o.digest_date) IN (SELECT u, dd FROM pairs)
), locked AS MATERIALIZED (
  -- The rows the snapshot sees in flight, reached where it saw them (no second index scan) and
  -- locked. FOR UPDATE goes on to the latest version of a row changed since the snapshot (its ctid
  -- is then not the one seen: not stable) and drops it if no longer in flight.
  SELECT v.user_id, v.digest_date, v.id, v.created_at, v.visible_n, d.ctid AS tid, d.ctid = v.tid AS stable, d AS r
  FROM visible v
  JOIN {{schema}}.digest_history d ON d.ctid = v.tid AND d.id = v.id
  WHERE d.status = ANY ($3::text[])
  FOR UPDATE OF d SKIP LOCKED
), ranked AS (
  -- No joins between these few hundred rows: the planner cannot estimate them, so counts are windows.
  SELECT l.*, count(*) FILTER (WHERE l.stable) OVER g AS stable_n,
         row_number() OVER k AS rn, first_value(l.id) OVER k AS kept_id
  FROM locked l
  WINDOW g AS (PARTITION BY l.user_id, l.digest_date),
         k AS (PARTITION BY l.user_id, l.digest_date
               ORDER BY CASE WHEN $4 = 'oldest' THEN l.created_at END, CASE WHEN $4 = 'oldest' THEN l.id END,
                        l.created_at DESC, l.id DESC)
), changed AS (
  UPDATE {{schema}}.digest_history d
  SET status = $5
  FROM ranked x
  WHERE d.ctid = x.tid AND d.id = x.id AND x.rn > 1 AND x.stable_n = x.visible_n AND x.visible_n > 1
    AND d.status = ANY ($3::text[])
  RETURNING d.id, d.user_id, d.digest_date, x.kept_id, row_to_json(x.r) AS before, d.ctid AS tid, (x.r).status::text AS status_before, (x.r).sent_at AS sent_at_before
), audited AS (
  -- The change is the one column this UPDATE sets; the typed keys are undo's (sql/state/0004).
  INSERT INTO {{state}}.audit_batches (run_id, command, table_schema, row_ids, befores, changes, client_host, tids, statuses_before, sent_ats_before, statuses_after)
  SELECT $6::uuid, $7, $8, array_agg(id), array_agg(before), array_agg(json_build_object('status', $5::text)), $9,
         array_agg(tid), array_agg(status_before), array_agg(sent_at_before), array_agg($5::text)
  FROM changed
  HAVING count(*) > 0
  RETURNING cardinality(row_ids) AS n
), counted AS (
  UPDATE {{state}}.runs SET rows_changed = rows_changed + (SELECT n FROM audited) WHERE id = $6::uuid AND EXISTS (SELECT FROM audited)
)
SELECT x.user_id::text AS user_id, x.digest_date,
       max(x.visible_n)::int AS visible_n, count(*) FILTER (WHERE x.stable)::int AS stable_n,
       max(x.kept_id::text) AS kept_id, array_agg(x.id::text) FILTER (WHERE x.changed) AS failed
FROM (
  SELECT user_id, digest_date, visible_n, false AS stable, NULL::uuid AS kept_id, id, false AS changed FROM visible
  UNION ALL
  SELECT user_id, digest_date, NULL, stable, NULL, id, false FROM locked
  UNION ALL
  SELECT user_id, digest_date, NULL, false, kept_id, id, true FROM changed
) x
GROUP BY x.user_id, x.digest_date
