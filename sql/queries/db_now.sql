-- The database clock: every cut-off and age is measured against it. Returns now.
SELECT now() AS now
