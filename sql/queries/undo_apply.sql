-- Inside an undo batch transaction, after undo_lock_rows: puts back status and sent_at from each
-- before-image while the row still has the status the undone run set, and never puts a row back in
-- flight while another row of its (user, day) is in flight; audits and counts in the same statement.
-- The rows are reached by the ctid undo_lock_rows locked them at (a locked row does not move; by id,
-- the planner hashed the whole table for a few hundred rows).
-- $1 row ids uuid[], $2 before-images jsonb[] (parallel), $3 statuses the run set text[] (parallel),
-- $4 in-flight statuses text[], $5 run id, $6 command, $7 service schema name, $8 client host,
-- $9 the rows' ctids as locked text[] (parallel).
-- Returns id of each changed row.
WITH target AS (
  SELECT t.id, t.tid, t.before, row_to_json(d) AS image
  FROM unnest($1::uuid[], $9::text[]::tid[], $2::jsonb[], $3::text[]) AS t(id, tid, before, expected)
  JOIN {{schema}}.digest_history d ON d.ctid = t.tid AND d.id = t.id
  LEFT JOIN (
    -- The in-flight rows now of the batch's (user, day) groups: one index scan for the batch.
    SELECT o.user_id, o.digest_date, array_agg(o.id) AS ids
    FROM {{schema}}.digest_history o
    WHERE o.user_id = ANY (ARRAY(SELECT DISTINCT (b ->> 'user_id')::uuid FROM unnest($2::jsonb[]) AS b))
      AND o.status = ANY ($4::text[])
    GROUP BY o.user_id, o.digest_date
  ) busy ON busy.user_id = d.user_id AND busy.digest_date = d.digest_date
  WHERE d.status = t.expected
    -- Back in flight only where no other row of the (user, day) is in flight.
    AND (NOT (t.before ->> 'status') = ANY ($4::text[]) OR busy.ids IS NULL OR busy.ids = ARRAY[d.id])
), changed AS (
  UPDATE {{schema}}.digest_history d
  SET status = t.before ->> 'status', sent_at = (t.before ->> 'sent_at')::timestamptz
  FROM target t
  WHERE d.ctid = t.tid AND d.id = t.id
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
SELECT id::text AS id FROM changed
