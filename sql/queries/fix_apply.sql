-- Inside a batch transaction, after fix_lock_groups: marks duplicates with the repair status only
-- while their kept row (locked by this transaction) is still in flight in the same (user, day),
-- writes each changed row's before- and after-image to the audit, and counts them on the run, all
-- in one statement. The guard (EXISTS on the kept row) is written as a join on the kept row,
-- materialised first. Rows are reached by the ctid the lock returned (stable while this transaction
-- holds the lock; the id is checked too), so no index is probed again. The before-image is the
-- after-image with the status the lock read back: this transaction has held the row since, and the
-- UPDATE sets only status, so it is exactly the row as it was, without a second conversion.
-- $1 row ids uuid[], $2 their ctids text[], $3 their statuses as locked text[], $4 kept row ids
-- uuid[], $5 their ctids text[] (all parallel), $6 new status, $7 in-flight statuses text[], $8 run
-- id, $9 command, $10 service schema name, $11 client host.
-- Returns id of each changed row.
WITH guarded AS MATERIALIZED (
  SELECT t.id, t.tid, t.locked_status, k.user_id, k.digest_date
  FROM unnest($1::uuid[], $2::text[]::tid[], $3::text[], $4::uuid[], $5::text[]::tid[]) AS t(id, tid, locked_status, kept_id, kept_tid)
  JOIN {{schema}}.digest_history k ON k.ctid = t.kept_tid AND k.id = t.kept_id
  WHERE k.id <> t.id AND k.status = ANY ($7::text[])
), changed AS (
  UPDATE {{schema}}.digest_history d
  SET status = $6
  FROM guarded g
  WHERE d.ctid = g.tid AND d.id = g.id
    AND d.user_id = g.user_id AND d.digest_date = g.digest_date
    AND d.status = ANY ($7::text[]) AND d.status = g.locked_status
  RETURNING d.id, to_jsonb(d) AS after, g.locked_status
), audited AS (
  INSERT INTO {{state}}.audit (run_id, command, table_schema, row_id, before, after, client_host)
  SELECT $8::uuid, $9, $10, id, after || jsonb_build_object('status', locked_status), after, $11 FROM changed
  RETURNING row_id
), counted AS (
  UPDATE {{state}}.runs SET rows_changed = rows_changed + (SELECT count(*) FROM audited) WHERE id = $8::uuid
)
SELECT row_id::text AS id FROM audited
