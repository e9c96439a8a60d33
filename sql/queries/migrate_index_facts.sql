-- The structural facts of one index by schema and name, from the catalog's fields (never from
-- pg_get_indexdef text): what decides whether it is the ON CONFLICT arbiter the service needs.
-- $1 schema, $2 index name. No row when absent. Returns table_schema, table_name, is_unique, method,
-- key_columns (names in key order, NULL for an expression key), include_columns, default_opclasses,
-- default_collations, default_order, nulls_not_distinct (false before Postgres 15), deferrable,
-- predicate (pg_get_expr of indpred, for the server to evaluate, or NULL).
SELECT tn.nspname::text AS table_schema,
       t.relname::text AS table_name,
       x.indisunique AS is_unique,
       am.amname::text AS method,
       k.key_columns,
       (x.indnatts - x.indnkeyatts)::int AS include_columns,
       k.default_opclasses,
       k.default_collations,
       k.default_order,
       coalesce((pg_catalog.to_jsonb(x) ->> 'indnullsnotdistinct')::boolean, false) AS nulls_not_distinct,
       NOT x.indimmediate AS deferrable,
       pg_catalog.pg_get_expr(x.indpred, x.indrelid) AS predicate
FROM pg_catalog.pg_class ic
JOIN pg_catalog.pg_namespace n ON n.oid = ic.relnamespace
JOIN pg_catalog.pg_index x ON x.indexrelid = ic.oid
JOIN pg_catalog.pg_class t ON t.oid = x.indrelid
JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
JOIN pg_catalog.pg_am am ON am.oid = ic.relam
CROSS JOIN LATERAL (
  SELECT pg_catalog.array_agg(a.attname::text ORDER BY key.ord) AS key_columns,
         coalesce(bool_and(a.attnum IS NULL OR (oc.opcdefault AND (oc.opcintype = a.atttypid OR EXISTS (
           SELECT 1 FROM pg_catalog.pg_cast c WHERE c.castsource = a.atttypid AND c.casttarget = oc.opcintype AND c.castmethod = 'b')))), true) AS default_opclasses,
         coalesce(bool_and(a.attnum IS NULL OR x.indcollation[key.ord - 1] = a.attcollation), true) AS default_collations,
         coalesce(bool_and(x.indoption[key.ord - 1] = 0), true) AS default_order
  FROM pg_catalog.unnest(x.indkey::int2[]) WITH ORDINALITY AS key(attnum, ord)
  LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = key.attnum AND key.attnum <> 0
  LEFT JOIN pg_catalog.pg_opclass oc ON oc.oid = x.indclass[key.ord - 1]
  WHERE key.ord <= x.indnkeyatts
) k
WHERE n.nspname = $1 AND ic.relname = $2
