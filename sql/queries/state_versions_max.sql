-- The highest state version recorded (null: none). {{state}}: the state schema.
-- Returns version.
SELECT max(version) AS version FROM {{state}}.state_migrations
