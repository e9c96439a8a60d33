-- State version 4: what undo needs of each audited row, typed, beside the images. Applied by
-- src/postgres/state.ts (ensureState), once. {{state}}: the state schema, quoted.
-- tids[i]: where the batch left row_ids[i] (its ctid after the batch's UPDATE): undo reaches the row
-- there without an index probe while nothing changed it since (else by id). statuses_before[i] and
-- sent_ats_before[i]: the row's status and sent_at before the batch (what undo puts back),
-- statuses_after[i]: the status the batch set (what undo expects to find). The same values are in
-- befores[i] and changes[i]; reading them there means parsing every image (about 1 s per 50,000 rows,
-- more than the undo's own UPDATE), so the batch statements write both.
-- NULL in batches written before this version (undo then reads the images and reaches rows by id).
ALTER TABLE {{state}}.audit_batches
  ADD COLUMN tids tid[] NULL,
  ADD COLUMN statuses_before text[] NULL,
  ADD COLUMN sent_ats_before timestamptz[] NULL,
  ADD COLUMN statuses_after text[] NULL,
  ADD CONSTRAINT audit_batches_keys_aligned CHECK (
    (tids IS NULL OR cardinality(tids) = cardinality(row_ids))
    AND (statuses_before IS NULL OR cardinality(statuses_before) = cardinality(row_ids))
    AND (sent_ats_before IS NULL OR cardinality(sent_ats_before) = cardinality(row_ids))
    AND (statuses_after IS NULL OR cardinality(statuses_after) = cardinality(row_ids)));
