DROP INDEX user_sessions_expires_idx;
