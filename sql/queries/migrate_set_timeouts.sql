-- Session-level lock_timeout and statement_timeout for the next phase. $1 lock_timeout ms,
-- $2 statement_timeout ms (text, '0' = none). Returns lock_timeout, statement_timeout as now set.
SELECT set_config('lock_timeout', $1::text, false) AS lock_timeout,
       set_config('statement_timeout', $2::text, false) AS statement_timeout
