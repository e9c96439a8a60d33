-- The stale cut-off, computed once from the database clock. $1 age in ms. Returns now, cutoff.
SELECT now() AS now, now() - make_interval(secs => $1::bigint / 1000.0) AS cutoff
