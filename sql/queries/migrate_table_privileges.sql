-- May the current role create an index on the table (owner, a member of the owner, or superuser)
-- and the ledger in the state schema? $1 schema, $2 table, $3 state schema.
-- Returns table_owner, can_create_index, can_write_state.
SELECT pg_get_userbyid(c.relowner)::text AS table_owner,
       (pg_has_role(current_user, c.relowner, 'USAGE')
        OR coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = current_user), false)) AS can_create_index,
       coalesce((SELECT has_schema_privilege(s.oid, 'CREATE') AND has_schema_privilege(s.oid, 'USAGE')
                 FROM pg_namespace s WHERE s.nspname = $3),
                has_database_privilege(current_database(), 'CREATE')) AS can_write_state
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')
