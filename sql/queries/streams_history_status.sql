-- Status of the digest_history rows whose id is in a batch of history_ids from a stream scan.
-- $1 uuid[] the ids. Returns id (text, lower case), status. Ids with no row are simply absent.
SELECT id::text AS id, status::text AS status
FROM {{schema}}.digest_history
WHERE id = ANY($1::uuid[])
