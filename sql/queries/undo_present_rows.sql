-- Which of the given rows exist (no lock: to tell a deleted row from one another session holds).
-- $1 ids uuid[]. Returns id, status.
SELECT d.id::text AS id, d.status::text AS status
FROM {{schema}}.digest_history d
WHERE d.id = ANY ($1::uuid[])
