-- Inside a batch transaction, after fix_lock_groups: marks duplicates with the repair status only
-- while their kept row (locked by this transaction) is still in flight, writes each changed row's
-- before- and after-image to the audit, and counts them on the run, all in one statement.
-- $1 row ids uuid[], $2 kept row ids uuid[] (parallel), $3 new status, $4 in-flight statuses text[],
-- $5 run id, $6 command, $7 service schema name, $8 client host.
-- Returns id of each changed row.
WITH target AS (
  SELECT t.id, t.kept_id FROM unnest($1::uuid[], $2::uuid[]) AS t(id, kept_id)
), changed AS (
  UPDATE {{schema}}.digest_history d
  SET status = $3
  FROM target t, {{schema}}.digest_history old
  WHERE d.id = t.id AND old.id = t.id
    AND d.status = ANY ($4::text[])
    AND EXISTS (
      SELECT 1 FROM {{schema}}.digest_history k
      WHERE k.id = t.kept_id AND k.id <> d.id AND k.user_id = d.user_id AND k.digest_date = d.digest_date
        AND k.status = ANY ($4::text[]))
  RETURNING d.id, to_jsonb(old) AS before, to_jsonb(d) AS after
), audited AS (
  INSERT INTO {{state}}.audit (run_id, command, table_schema, row_id, before, after, client_host)
  SELECT $5::uuid, $6, $7, id, before, after, $8 FROM changed
  RETURNING row_id
), counted AS (
  UPDATE {{state}}.runs SET rows_changed = rows_changed + (SELECT count(*) FROM audited) WHERE id = $5::uuid
)
SELECT row_id::text AS id FROM audited
