-- The record of the state schema's own versions (sql/state/NNNN_*.sql): one row per version, applied
-- by this tool or adopted (found in place, made by an earlier release, recorded without running).
-- Run by ensureState under the state lock, before reading it. {{state}}: the state schema.
CREATE TABLE IF NOT EXISTS {{state}}.state_migrations (
  version integer PRIMARY KEY,
  name text NOT NULL,
  checksum text NOT NULL,
  how text NOT NULL CHECK (how IN ('applied', 'adopted')),
  applied_by text NOT NULL DEFAULT current_user,
  applied_at timestamptz NOT NULL DEFAULT now()
)
