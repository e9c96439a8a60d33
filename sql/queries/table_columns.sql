-- Columns of a table and their type names. $1 schema, $2 table. Returns column_name, udt_name.
SELECT column_name::text AS column_name, udt_name::text AS udt_name
FROM information_schema.columns
WHERE table_schema = $1 AND table_name = $2
ORDER BY ordinal_position
