-- Progress of one CREATE INDEX backend. $1 pid. Returns phase, blocks_total, blocks_done,
-- tuples_total, tuples_done, lockers_total, lockers_done; no row when it is not building.
SELECT phase::text AS phase, blocks_total, blocks_done, tuples_total, tuples_done, lockers_total, lockers_done
FROM pg_stat_progress_create_index
WHERE pid = $1::int
