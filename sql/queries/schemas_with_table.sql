-- Schemas that hold a table of this name. $1 table. Returns schemas (text[] or null).
SELECT array_agg(table_schema::text ORDER BY table_schema) AS schemas
FROM information_schema.tables
WHERE table_name = $1
