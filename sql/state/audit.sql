-- The repair audit (fix-duplicates, mark-stale, undo): one row per run in runs; the images of the
-- changed rows in audit_batches, one row per batch, written in the same statement as the batch's
-- UPDATE; and the view audit, one row per changed row with its before- and after-image as jsonb.
CREATE TABLE IF NOT EXISTS {{state}}.runs (
  id uuid PRIMARY KEY,
  command text NOT NULL,
  table_schema text NOT NULL,
  args jsonb NOT NULL DEFAULT '{}',
  undoes uuid NULL,
  status text NOT NULL DEFAULT 'running', -- running | done | interrupted | failed
  error text NULL,
  rows_changed integer NOT NULL DEFAULT 0,
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz NULL,
  db_user text NOT NULL DEFAULT current_user,
  client_addr inet NULL DEFAULT inet_client_addr(),
  client_host text NULL,
  application_name text NOT NULL DEFAULT current_setting('application_name'),
  backend_pid integer NOT NULL DEFAULT pg_backend_pid(),
  backend_start timestamptz NULL
);
CREATE INDEX IF NOT EXISTS runs_started_at_idx ON {{state}}.runs (started_at DESC);

-- One row per batch. The i-th changed row of the batch is row_ids[i]; befores[i] is that row as it
-- was (row_to_json of the whole row, taken under the batch's row lock), changes[i] the columns the
-- batch set, with their new values (the after-image is befores[i] with changes[i] applied: the
-- batch's UPDATE sets nothing else). Why per batch and json, not a row per changed row as jsonb: a
-- row per changed row cost more than the UPDATE itself (a tuple, an index entry and ~900 bytes of
-- WAL each, and to_jsonb is a third slower than row_to_json); a batch's images compress well (lz4
-- where the server has it, below), so the audit adds little to what the repair writes anyway.
CREATE TABLE IF NOT EXISTS {{state}}.audit_batches (
  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  -- No foreign key to runs: the run row is written first, and the check would cost each batch a
  -- trigger call for nothing the code does not already guarantee.
  run_id uuid NOT NULL,
  command text NOT NULL,
  table_schema text NOT NULL,
  row_ids uuid[] NOT NULL,
  befores json[] NOT NULL,
  changes json[] NOT NULL,
  db_user text NOT NULL DEFAULT current_user,
  client_addr inet NULL DEFAULT inet_client_addr(),
  client_host text NULL,
  application_name text NOT NULL DEFAULT current_setting('application_name'),
  at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT audit_batches_aligned CHECK (cardinality(row_ids) = cardinality(befores) AND cardinality(row_ids) = cardinality(changes))
);
CREATE INDEX IF NOT EXISTS audit_batches_run_idx ON {{state}}.audit_batches (run_id, seq);

-- lz4 compresses a batch's images several times faster than the default pglz; a server built
-- without lz4 keeps pglz. (Only when not set yet: ALTER TABLE would lock the table on every run.)
DO $digest_doctor$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(quote_ident({{state_lit}}) || '.audit_batches') AND attname = 'befores' AND attcompression <> 'l') THEN
    ALTER TABLE {{state}}.audit_batches ALTER COLUMN befores SET COMPRESSION lz4, ALTER COLUMN changes SET COMPRESSION lz4;
  END IF;
EXCEPTION WHEN feature_not_supported THEN NULL;
END $digest_doctor$;

-- The audit of an earlier version was a table with a row per changed row and whole jsonb images: its
-- rows move into audit_batches, one batch per transaction that wrote them (same run and time), with
-- the whole after-image as the change, and the table makes way for the view.
DO $digest_doctor$
BEGIN
  IF (SELECT relkind FROM pg_class WHERE oid = to_regclass(quote_ident({{state_lit}}) || '.audit')) = 'r' THEN
    INSERT INTO {{state}}.audit_batches (run_id, command, table_schema, row_ids, befores, changes, db_user, client_addr, client_host, application_name, at)
    SELECT run_id, command, table_schema, array_agg(row_id ORDER BY row_id), array_agg(before::json ORDER BY row_id), array_agg(after::json ORDER BY row_id),
           db_user, client_addr, client_host, application_name, at
    FROM {{state}}.audit
    GROUP BY run_id, command, table_schema, db_user, client_addr, client_host, application_name, at
    ORDER BY min(at), run_id;
    DROP TABLE {{state}}.audit;
  END IF;
  -- One row per changed row: what the audit records, as jsonb images.
  IF to_regclass(quote_ident({{state_lit}}) || '.audit') IS NULL THEN
    CREATE VIEW {{state}}.audit AS
    SELECT b.run_id, b.command, b.table_schema, i.row_id, i.before::jsonb AS before, i.before::jsonb || i.change::jsonb AS after,
           b.db_user, b.client_addr, b.client_host, b.application_name, b.at, b.seq AS batch_seq, i.ord AS batch_ord
    FROM {{state}}.audit_batches b
    CROSS JOIN LATERAL unnest(b.row_ids, b.befores, b.changes) WITH ORDINALITY AS i(row_id, before, change, ord);
  END IF;
END $digest_doctor$;
