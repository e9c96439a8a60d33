-- Schemas that hold a table of this name, from pg_class (listed whatever the role's privileges).
-- $1 table. Returns schemas (text[] or null).
SELECT array_agg(n.nspname::text ORDER BY n.nspname) AS schemas
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = $1 AND c.relkind IN ('r', 'p')
