-- Inside a batch transaction, after fix_lock_groups: marks duplicates with the repair status only
-- while their kept row (locked by this transaction) is still in flight in the same (user, day),
-- writes the batch's images to the audit (one audit_batches row), and counts them on the run, all
-- in one statement. The guard (EXISTS on the kept row) is written as a join on the kept row,
-- materialised first. Rows are reached by the ctid the lock returned (stable while this transaction
-- holds the lock; the id is checked too), so no index is probed again. The before-image is read in
-- the guard, from the row this transaction has held locked since fix_lock_groups: exactly the row
-- as the UPDATE finds it.
-- $1 row ids uuid[], $2 their ctids text[], $3 their statuses as locked text[], $4 kept row ids
-- uuid[], $5 their ctids text[] (all parallel), $6 new status, $7 in-flight statuses text[], $8 run
-- id, $9 command, $10 service schema name, $11 client host.
-- Returns id of each changed row.
WITH guarded AS MATERIALIZED (
  SELECT t.id, t.tid, t.locked_status, k.user_id, k.digest_date, row_to_json(x) AS before
  FROM unnest($1::uuid[], $2::text[]::tid[], $3::text[], $4::uuid[], $5::text[]::tid[]) AS t(id, tid, locked_status, kept_id, kept_tid)
  JOIN {{schema}}.digest_history k ON k.ctid = t.kept_tid AND k.id = t.kept_id
  JOIN {{schema}}.digest_history x ON x.ctid = t.tid AND x.id = t.id
  WHERE k.id <> t.id AND k.status = ANY ($7::text[])
), changed AS (
  UPDATE {{schema}}.digest_history d
  SET status = $6
  FROM guarded g
  WHERE d.ctid = g.tid AND d.id = g.id
    AND d.user_id = g.user_id AND d.digest_date = g.digest_date
    AND d.status = ANY ($7::text[]) AND d.status = g.locked_status
  RETURNING d.id, g.before
), audited AS (
  -- The change is the one column this UPDATE sets.
  INSERT INTO {{state}}.audit_batches (run_id, command, table_schema, row_ids, befores, changes, client_host)
  SELECT $8::uuid, $9, $10, array_agg(id), array_agg(before), array_agg(json_build_object('status', $6::text)), $11
  FROM changed
  HAVING count(*) > 0
  RETURNING cardinality(row_ids) AS n
), counted AS (
  UPDATE {{state}}.runs SET rows_changed = rows_changed + (SELECT n FROM audited) WHERE id = $8::uuid AND EXISTS (SELECT FROM audited)
)
SELECT id::text AS id FROM changed
