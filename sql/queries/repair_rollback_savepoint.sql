-- Undoes the batch's work since repair_savepoint (the failed fast path). No parameters.
ROLLBACK TO SAVEPOINT repair_fast_path
