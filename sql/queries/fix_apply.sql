-- Inside a batch transaction, after fix_lock_groups: marks duplicates with the repair status only
-- while their kept row (locked by this transaction) is still in flight in the same (user, day),
-- writes each changed row's before- and after-image to the audit, and counts them on the run, all
-- in one statement. The guard (EXISTS on the kept row) is written as a join on the kept row's
-- primary key, materialised first, so Postgres looks it up by id rather than scanning the user.
-- $1 row ids uuid[], $2 kept row ids uuid[] (parallel), $3 new status, $4 in-flight statuses text[],
-- $5 run id, $6 command, $7 service schema name, $8 client host.
-- Returns id of each changed row.
WITH guarded AS MATERIALIZED (
  SELECT t.id, k.user_id, k.digest_date
  FROM unnest($1::uuid[], $2::uuid[]) AS t(id, kept_id)
  JOIN {{schema}}.digest_history k ON k.id = t.kept_id
  WHERE k.id <> t.id AND k.status = ANY ($4::text[])
), changed AS (
  UPDATE {{schema}}.digest_history d
  SET status = $3
  FROM guarded g, {{schema}}.digest_history old
  WHERE d.id = g.id AND old.id = g.id
    AND d.user_id = g.user_id AND d.digest_date = g.digest_date
    AND d.status = ANY ($4::text[])
  RETURNING d.id, to_jsonb(old) AS before, to_jsonb(d) AS after
), audited AS (
  INSERT INTO {{state}}.audit (run_id, command, table_schema, row_id, before, after, client_host)
  SELECT $5::uuid, $6, $7, id, before, after, $8 FROM changed
  RETURNING row_id
), counted AS (
  UPDATE {{state}}.runs SET rows_changed = rows_changed + (SELECT count(*) FROM audited) WHERE id = $5::uuid
)
SELECT row_id::text AS id FROM audited
