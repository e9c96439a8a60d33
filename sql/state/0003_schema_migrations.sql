-- State version 3: the migration ledger (migrate). Applied by src/postgres/state.ts (ensureState),
-- once. IF NOT EXISTS: an earlier version created the ledger on its own, without the audit, so a
-- state schema adopted below this version may hold it already. {{state}}: the state schema, quoted.
-- The migration ledger: one row per (service schema, migration). It records what was done; the
-- catalog stays the truth (migrate status compares the two).
CREATE TABLE IF NOT EXISTS {{state}}.schema_migrations (
  target_schema text NOT NULL,
  version integer NOT NULL,
  name text NOT NULL,
  checksum text NOT NULL,
  status text NOT NULL CHECK (status IN ('running', 'applied', 'failed', 'reverted')),
  attempts integer NOT NULL DEFAULT 0,
  last_error text,
  last_sqlstate text,
  tool_version text NOT NULL,
  applied_by text NOT NULL DEFAULT current_user,
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  PRIMARY KEY (target_schema, version)
);
