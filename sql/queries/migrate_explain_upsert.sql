-- The service's own upsert, explained (not run: EXPLAIN without ANALYZE inserts nothing), to
-- prove Postgres picks the partial unique index as its arbiter. $1 id, $2 user_id, $3 digest_date.
-- Returns one row, column "QUERY PLAN" (JSON: Plan."Conflict Arbiter Indexes").
EXPLAIN (FORMAT JSON)
INSERT INTO {{schema}}.digest_history (id, user_id, digest_date, content, status)
VALUES ($1::uuid, $2::uuid, $3::date, '', 'pending')
ON CONFLICT (user_id, digest_date) WHERE status IN ('pending', 'processing') DO NOTHING
