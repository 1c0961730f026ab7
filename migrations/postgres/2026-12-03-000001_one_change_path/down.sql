ALTER TABLE audit_log DROP COLUMN via;
ALTER TABLE user_sessions DROP COLUMN epoch;
ALTER TABLE users DROP COLUMN session_epoch;
