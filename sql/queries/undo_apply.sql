-- Inside an undo batch transaction, after undo_lock_rows: puts back status and sent_at from each
-- before-image while the row still has the status the undone run set, and never puts a row back in
-- flight while another row of its (user, day) is in flight; audits and counts in the same statement.
-- $1 row ids uuid[], $2 before-images jsonb[] (parallel), $3 statuses the run set text[] (parallel),
-- $4 in-flight statuses text[], $5 run id, $6 command, $7 service schema name, $8 client host.
-- Returns id of each changed row.
WITH target AS (
  SELECT t.id, t.before, t.expected FROM unnest($1::uuid[], $2::jsonb[], $3::text[]) AS t(id, before, expected)
), changed AS (
  UPDATE {{schema}}.digest_history d
  SET status = t.before ->> 'status', sent_at = (t.before ->> 'sent_at')::timestamptz
  FROM target t, {{schema}}.digest_history old
  WHERE d.id = t.id AND old.id = t.id
    AND d.status = t.expected
    AND (NOT (t.before ->> 'status') = ANY ($4::text[])
         OR NOT EXISTS (
           SELECT 1 FROM {{schema}}.digest_history o
           WHERE o.user_id = d.user_id AND o.digest_date = d.digest_date AND o.id <> d.id
             AND o.status = ANY ($4::text[])))
  RETURNING d.id, row_to_json(old) AS before, json_build_object('status', d.status, 'sent_at', d.sent_at) AS change
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
