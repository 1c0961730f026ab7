DROP TABLE webhook_deliveries;
ALTER TABLE social_accounts DROP COLUMN disabled_at;
ALTER TABLE user_sessions DROP COLUMN last_seen_at;
ALTER TABLE user_sessions DROP COLUMN user_agent;
