-- Inside a batch transaction, after fix_lock_groups: marks duplicates with the repair status only
-- while their kept row (locked by this transaction) is still in flight in the same (user, day),
-- writes each changed row's before- and after-image to the audit, and counts them on the run, all
-- in one statement. The guard (EXISTS on the kept row) is written as a join on the kept row,
-- materialised first. Rows are reached by the ctid the lock returned (stable while this transaction
-- holds the lock; the id is checked too), so no index is probed again.
-- $1 row ids uuid[], $2 their ctids text[], $3 kept row ids uuid[], $4 their ctids text[] (all
-- parallel), $5 new status, $6 in-flight statuses text[], $7 run id, $8 command, $9 service schema
-- name, $10 client host.
-- Returns id of each changed row.
WITH guarded AS MATERIALIZED (
  SELECT t.id, t.tid, k.user_id, k.digest_date
  FROM unnest($1::uuid[], $2::text[]::tid[], $3::uuid[], $4::text[]::tid[]) AS t(id, tid, kept_id, kept_tid)
  JOIN {{schema}}.digest_history k ON k.ctid = t.kept_tid AND k.id = t.kept_id
  WHERE k.id <> t.id AND k.status = ANY ($6::text[])
), changed AS (
  UPDATE {{schema}}.digest_history d
  SET status = $5
  FROM guarded g, {{schema}}.digest_history old
  WHERE d.ctid = g.tid AND old.ctid = g.tid AND d.id = g.id AND old.id = g.id
    AND d.user_id = g.user_id AND d.digest_date = g.digest_date
    AND d.status = ANY ($6::text[])
  RETURNING d.id, to_jsonb(old) AS before, to_jsonb(d) AS after
), audited AS (
  INSERT INTO {{state}}.audit (run_id, command, table_schema, row_id, before, after, client_host)
  SELECT $7::uuid, $8, $9, id, before, after, $10 FROM changed
  RETURNING row_id
), counted AS (
  UPDATE {{state}}.runs SET rows_changed = rows_changed + (SELECT count(*) FROM audited) WHERE id = $7::uuid
)
SELECT row_id::text AS id FROM audited
