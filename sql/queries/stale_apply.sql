-- One mark-stale batch in one statement: locks the given rows (skipping rows another session holds)
-- and those still in flight and older than the cut-off it marks with the repair status and
-- clears sent_at, writes the batch's images to the audit (one audit_batches row), and counts them on
-- the run. The before-image is the row as locked (FOR UPDATE returns the latest committed version,
-- which the UPDATE then changes), so the audit is exact even if the row changed since the snapshot.
-- $1 ids uuid[], $2 new status, $3 in-flight statuses text[], $4 cut-off, $5 run id, $6 command,
-- $7 service schema name, $8 client host, $9 the rows' ctids as planned text[] (parallel to $1).
-- Returns id of each changed row.
WITH locked AS (
  -- By the ctid the plan read (a heap fetch, no index probe) and the id: a row updated since is not
  -- at that ctid any more (a version committed before this statement is invisible there, one
  -- committed after fails the ctid test when the lock re-checks it), so it is missed and the caller
  -- re-reads where it is now for the retry. A row no longer in flight is locked for the batch but
  -- not changed (the status test is left to the UPDATE).
  -- The ctid is stable while this transaction holds the lock, so the UPDATE finds the row there; a
  -- row the UPDATE's snapshot cannot see at that ctid (changed in between) is simply not updated,
  -- and left to the retry pass.
  SELECT d.ctid AS tid, d.id, d.status, d.sent_at, row_to_json(d) AS before
  FROM unnest($1::uuid[], $9::text[]::tid[]) AS t(id, tid)
  JOIN {{schema}}.digest_history d ON d.ctid = t.tid AND d.id = t.id
  WHERE d.created_at < $4::timestamptz
  FOR UPDATE OF d SKIP LOCKED
), changed AS (
  UPDATE {{schema}}.digest_history d
  SET status = $2, sent_at = NULL
  FROM locked l
  WHERE d.ctid = l.tid AND d.id = l.id AND l.status = ANY ($3::text[])
  RETURNING d.id, l.before, d.ctid AS tid, l.status::text AS status_before, l.sent_at AS sent_at_before
), audited AS (
  -- The change is the two columns this UPDATE sets; the typed keys are undo's (sql/state/0004).
  INSERT INTO {{state}}.audit_batches (run_id, command, table_schema, row_ids, befores, changes, client_host, tids, statuses_before, sent_ats_before, statuses_after)
  SELECT $5::uuid, $6, $7, array_agg(id), array_agg(before), array_agg(json_build_object('status', $2::text, 'sent_at', NULL)), $8,
         array_agg(tid), array_agg(status_before), array_agg(sent_at_before), array_agg($2::text)
  FROM changed
  HAVING count(*) > 0
  RETURNING cardinality(row_ids) AS n
), counted AS (
  UPDATE {{state}}.runs SET rows_changed = rows_changed + (SELECT n FROM audited) WHERE id = $5::uuid AND EXISTS (SELECT FROM audited)
)
SELECT id::text AS id FROM changed
