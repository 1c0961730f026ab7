-- The housekeeping job finds expired session records by this index, in batches.
CREATE INDEX user_sessions_expires_idx ON user_sessions (expires_at);
