-- The housekeeping job finds expired session records by this index, in batches. Built
-- CONCURRENTLY (outside a transaction: metadata.toml), so that sign-ins on instances still
-- running go on while it is built on a large table.
CREATE INDEX CONCURRENTLY IF NOT EXISTS user_sessions_expires_idx ON user_sessions (expires_at);
