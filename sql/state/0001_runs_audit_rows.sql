-- State version 1: the repair audit as it was first released. One row per run (fix-duplicates,
-- mark-stale, undo) in runs; one row per changed row in audit, with whole jsonb images. Version 2
-- replaces that table (audit_batches behind a view audit); a fresh install passes through it empty.
-- Applied by src/postgres/state.ts (ensureState) in order, once, recorded in state_migrations.
-- {{state}}: the state schema, quoted. IF NOT EXISTS: a state schema adopted below this version
-- may already hold some of these relations.

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

CREATE TABLE IF NOT EXISTS {{state}}.audit (
  -- No foreign key to runs: the run row is written first.
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
