-- Inside a batch transaction, after stale_lock: marks the locked rows with the repair status and
-- clears sent_at, writes each changed row's before- and after-image to the audit, and counts them on
-- the run, in one statement. $1 locked ids uuid[], $2 new status, $3 in-flight statuses text[],
-- $4 run id, $5 command, $6 service schema name, $7 client host.
-- Returns id of each changed row.
WITH changed AS (
  UPDATE {{schema}}.digest_history d
  SET status = $2, sent_at = NULL
  FROM {{schema}}.digest_history old
  WHERE d.id = ANY ($1::uuid[]) AND old.id = d.id AND d.status = ANY ($3::text[])
  RETURNING d.id, to_jsonb(old) AS before, to_jsonb(d) AS after
), audited AS (
  INSERT INTO {{state}}.audit (run_id, command, table_schema, row_id, before, after, client_host)
  SELECT $4::uuid, $5, $6, id, before, after, $7 FROM changed
  RETURNING row_id
), counted AS (
  UPDATE {{state}}.runs SET rows_changed = rows_changed + (SELECT count(*) FROM audited) WHERE id = $4::uuid
)
SELECT row_id::text AS id FROM audited
