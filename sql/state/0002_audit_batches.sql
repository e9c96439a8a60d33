-- State version 2: the audit one row per batch (audit_batches) behind a view audit with a row per
-- changed row. The per-row table of version 1 moves into audit_batches, one batch per transaction
-- that wrote it (same run and time), the whole after-image as the change, and makes way for the view.
-- Applied by src/postgres/state.ts (ensureState), once. {{state}}: the state schema, quoted.

-- One row per batch. The i-th changed row of the batch is row_ids[i]; befores[i] is that row as it
-- was (row_to_json of the whole row, taken under the batch's row lock), changes[i] the columns the
-- batch set, with their new values (the after-image is befores[i] with changes[i] applied: the
-- batch's UPDATE sets nothing else). Why per batch and json, not a row per changed row as jsonb: a
-- row per changed row cost more than the UPDATE itself (a tuple, an index entry and ~900 bytes of
-- WAL each, and to_jsonb is a third slower than row_to_json); a batch's images compress well (lz4
-- where the server has it, below), so the audit adds little to what the repair writes anyway.
CREATE TABLE {{state}}.audit_batches (
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
CREATE INDEX audit_batches_run_idx ON {{state}}.audit_batches (run_id, seq);

-- lz4 compresses a batch's images several times faster than the default pglz. A server built
-- without lz4 says feature_not_supported and keeps pglz: the one condition here, on the server's
-- build, not on the layout (the layout is known from the version).
DO $digest_doctor$
BEGIN
  ALTER TABLE {{state}}.audit_batches ALTER COLUMN befores SET COMPRESSION lz4, ALTER COLUMN changes SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN NULL;
END $digest_doctor$;

INSERT INTO {{state}}.audit_batches (run_id, command, table_schema, row_ids, befores, changes, db_user, client_addr, client_host, application_name, at)
SELECT run_id, command, table_schema, array_agg(row_id ORDER BY row_id), array_agg(before::json ORDER BY row_id), array_agg(after::json ORDER BY row_id),
       db_user, client_addr, client_host, application_name, at
FROM {{state}}.audit
GROUP BY run_id, command, table_schema, db_user, client_addr, client_host, application_name, at
ORDER BY min(at), run_id;
DROP TABLE {{state}}.audit;

-- One row per changed row: what the audit records, as jsonb images.
CREATE VIEW {{state}}.audit AS
SELECT b.run_id, b.command, b.table_schema, i.row_id, i.before::jsonb AS before, i.before::jsonb || i.change::jsonb AS after,
       b.db_user, b.client_addr, b.client_host, b.application_name, b.at, b.seq AS batch_seq, i.ord AS batch_ord
FROM {{state}}.audit_batches b
CROSS JOIN LATERAL unnest(b.row_ids, b.befores, b.changes) WITH ORDINALITY AS i(row_id, before, change, ord);
