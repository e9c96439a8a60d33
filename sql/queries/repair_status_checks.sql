-- CHECK constraints of digest_history that involve the status column, with their expression as the
-- server prints it for evaluation (pg_get_expr of conbin; run back by src/postgres/checks.ts over
-- candidate rows, never parsed). NOT VALID ones too: they still apply to every write.
-- $1 schema, $2 table. Returns name, expr.
SELECT c.conname::text AS name, pg_catalog.pg_get_expr(c.conbin, c.conrelid) AS expr
FROM pg_catalog.pg_constraint c
JOIN pg_catalog.pg_class t ON t.oid = c.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = $1 AND t.relname = $2 AND c.contype = 'c'
  AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = t.oid AND a.attnum = ANY (c.conkey) AND a.attname = 'status')
ORDER BY c.conname
