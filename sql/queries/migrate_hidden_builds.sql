-- CREATE INDEX runs in this database whose details this role may not see: pg_stat_progress_create_index
-- lists every build, but shows relid, index_relid and phase only to the builder's role, superusers
-- and pg_read_all_stats. Used when an INVALID index shows no visible build: it may be one of these.
-- Returns pid.
SELECT p.pid
FROM pg_stat_progress_create_index p
WHERE p.datname = current_database() AND p.relid IS NULL AND p.pid <> pg_backend_pid()
ORDER BY p.pid
