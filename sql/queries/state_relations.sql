-- The tool's own schema as it is: whether it exists, whether the current role may use it, and its
-- relations with their kind (r table, v view) and whether the role may SELECT them. From the catalog
-- only: readable by every role, and nothing is created. $1 state schema.
-- Returns schema_exists, schema_usage, schema_create, role, relations (json array of {name, kind,
-- select, columns}: columns the relation's column names, for the layouts that differ only in them).
SELECT n.oid IS NOT NULL AS schema_exists,
       coalesce(has_schema_privilege(n.oid, 'USAGE'), false) AS schema_usage,
       coalesce(has_schema_privilege(n.oid, 'CREATE'), false) AS schema_create,
       current_user::text AS role,
       coalesce((SELECT json_agg(json_build_object('name', c.relname, 'kind', c.relkind, 'select', has_table_privilege(c.oid, 'SELECT'),
                                           'columns', (SELECT coalesce(json_agg(a.attname ORDER BY a.attnum), '[]'::json) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)) ORDER BY c.relname)
                 FROM pg_class c WHERE c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'v')), '[]'::json) AS relations
FROM (SELECT $1::text AS name) q
LEFT JOIN pg_namespace n ON n.nspname = q.name
