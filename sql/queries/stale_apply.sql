-- One mark-stale batch in one statement: locks the given rows (skipping rows another session holds)
-- and those still in flight and older than the cut-off it marks with the repair status and
-- clears sent_at, writes each changed row's before- and after-image to the audit, and counts them on
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
  SELECT d.ctid AS tid, d.id, d.status, to_jsonb(d) AS before
  FROM unnest($1::uuid[], $9::text[]::tid[]) AS t(id, tid)
  JOIN {{schema}}.digest_history d ON d.ctid = t.tid AND d.id = t.id
  WHERE d.created_at < $4::timestamptz
  FOR UPDATE OF d SKIP LOCKED
), changed AS (
  UPDATE {{schema}}.digest_history d
  SET status = $2, sent_at = NULL
  FROM locked l
  WHERE d.ctid = l.tid AND d.id = l.id AND l.status = ANY ($3::text[])
  RETURNING d.id, l.before
), audited AS (
  -- The after-image is the before-image with the two columns this UPDATE sets: the same jsonb as
  -- to_jsonb of the new row, without converting every row a second time.
  INSERT INTO {{state}}.audit (run_id, command, table_schema, row_id, before, after, client_host)
  SELECT $5::uuid, $6, $7, id, before, before || jsonb_build_object('status', $2::text, 'sent_at', NULL), $8 FROM changed
  RETURNING row_id
), counted AS (
  UPDATE {{state}}.runs SET rows_changed = rows_changed + (SELECT count(*) FROM audited) WHERE id = $5::uuid
)
SELECT row_id::text AS id FROM audited
