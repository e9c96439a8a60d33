-- Records one state version. $1 version, $2 name, $3 checksum (sha256 of the file), $4 how (applied |
-- adopted). {{state}}: the state schema.
INSERT INTO {{state}}.state_migrations (version, name, checksum, how) VALUES ($1, $2, $3, $4)
