-- CHECK constraints of digest_history that involve the status column, as the catalog prints them.
-- $1 schema, $2 table. Returns name, definition.
SELECT c.conname::text AS name, pg_get_constraintdef(c.oid) AS definition
FROM pg_constraint c
JOIN pg_class t ON t.oid = c.conrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = $1 AND t.relname = $2 AND c.contype = 'c'
  AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = t.oid AND a.attnum = ANY (c.conkey) AND a.attname = 'status')
ORDER BY c.conname
