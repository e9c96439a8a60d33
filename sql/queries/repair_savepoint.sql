-- A savepoint inside a batch transaction, so a failed fast path can be undone alone. No parameters.
SAVEPOINT repair_fast_path
