-- Whether the current role may read some relations, from the catalog (pg_class and pg_namespace are
-- readable by every role; has_*_privilege answers without touching the objects, so nothing fails
-- with 42501 here). $1 schemas (text[]), $2 relation names (text[]), pairwise.
-- Returns schema, name, exists, kind (pg_class.relkind or null), schema_usage, can_select, role.
SELECT q.schema, q.name,
       c.oid IS NOT NULL AS exists,
       c.relkind::text AS kind,
       coalesce(has_schema_privilege(n.oid, 'USAGE'), false) AS schema_usage,
       coalesce(has_table_privilege(c.oid, 'SELECT'), false) AS can_select,
       current_user::text AS role
FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS q(schema, name, ord)
LEFT JOIN pg_namespace n ON n.nspname = q.schema
LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = q.name AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
ORDER BY q.ord
