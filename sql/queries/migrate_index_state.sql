-- One index by schema and name: its flags, its definition, and a CREATE INDEX in progress for it.
-- $1 schema, $2 index name. Returns is_valid, is_ready, definition, build_pid, build_phase,
-- build_user, build_application (build_* null when no build runs); no row when the index is absent.
SELECT x.indisvalid AS is_valid,
       x.indisready AS is_ready,
       pg_get_indexdef(x.indexrelid) AS definition,
       p.pid AS build_pid,
       p.phase::text AS build_phase,
       a.usename::text AS build_user,
       a.application_name::text AS build_application
FROM pg_class ic
JOIN pg_namespace n ON n.oid = ic.relnamespace
JOIN pg_index x ON x.indexrelid = ic.oid
LEFT JOIN LATERAL (
  SELECT pr.pid, pr.phase FROM pg_stat_progress_create_index pr WHERE pr.index_relid = ic.oid LIMIT 1
) p ON true
LEFT JOIN pg_stat_activity a ON a.pid = p.pid
WHERE n.nspname = $1 AND ic.relname = $2
