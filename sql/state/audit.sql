-- The repair audit (fix-duplicates, mark-stale, undo): one row per run, one row per changed row with
-- its before- and after-image. Written in the same transaction as each batch of changes.
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

-- One row per changed row per run (the primary key): a batch that tried to audit a row twice fails whole.
CREATE TABLE IF NOT EXISTS {{state}}.audit (
  -- No foreign key to runs: the run row is written first, and a per-row FK check would cost each
  -- batch a trigger call per changed row for nothing the code does not already guarantee.
  run_id uuid NOT NULL,
  command text NOT NULL,
  table_schema text NOT NULL,
  row_id uuid NOT NULL,
  before jsonb NOT NULL,
  after jsonb NOT NULL,
  db_user text NOT NULL DEFAULT current_user,
  client_addr inet NULL DEFAULT inet_client_addr(),
  client_host text NULL,
  application_name text NOT NULL DEFAULT current_setting('application_name'),
  at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (run_id, row_id)
);
