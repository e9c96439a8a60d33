-- Columns of a table and their type names (a domain's base type, as information_schema's udt_name
-- gives it), from pg_attribute: information_schema.columns hides the columns of a table the role may
-- not read, which would make a missing privilege look like a missing table. $1 schema, $2 table.
-- Returns column_name, udt_name.
SELECT a.attname::text AS column_name, coalesce(bt.typname, t.typname)::text AS udt_name
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype
WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
ORDER BY a.attnum
