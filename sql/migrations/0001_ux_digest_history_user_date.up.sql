-- 0001: the guard that stops a second in-flight digest for one (user, day): the service's own
-- `ON CONFLICT (user_id, digest_date) WHERE status IN ('pending','processing')` arbiter.
-- digest-doctor: concurrently
-- Plain SQL on purpose: on Postgres the runner adds CONCURRENTLY and runs it alone on its own
-- connection outside any transaction; an embedded engine (one connection) runs it as written.
-- Never IF NOT EXISTS: it would report success over an INVALID index left by a failed build.
CREATE UNIQUE INDEX ux_digest_history_user_date
  ON {{schema}}.digest_history (user_id, digest_date)
  WHERE status IN ('pending', 'processing');
