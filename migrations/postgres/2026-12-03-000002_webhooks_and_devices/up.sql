-- When Kakao says a person left, and each person's devices.

-- Each session's device: the User-Agent it signed in with, and when it was last seen (updated
-- at most every few minutes, so that most requests write nothing).
ALTER TABLE user_sessions ADD COLUMN user_agent TEXT NOT NULL DEFAULT '';
ALTER TABLE user_sessions ADD COLUMN last_seen_at TIMESTAMP;

-- Kakao's RISC account-disabled event blocks sign-in through this link until account-enabled
-- (independent of a staff deactivation, which is users.is_active).
ALTER TABLE social_accounts ADD COLUMN disabled_at TIMESTAMP;

-- Every webhook delivery from Kakao, accepted or refused. No foreign key: a delivery outlives
-- the user it names. `jti` is a Security Event Token's id: unique, so a replay is refused.
CREATE TABLE webhook_deliveries (
    id BIGSERIAL PRIMARY KEY,
    received_at TIMESTAMP NOT NULL,
    kind TEXT NOT NULL,
    event TEXT NOT NULL,
    kakao_id BIGINT,
    user_id BIGINT,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    jti TEXT UNIQUE
);
CREATE INDEX webhook_deliveries_outcome_idx ON webhook_deliveries (outcome, id);
CREATE INDEX webhook_deliveries_user_idx ON webhook_deliveries (user_id, id);
-- A repeat of an applied word is found by the Kakao id.
CREATE INDEX webhook_deliveries_kakao_idx ON webhook_deliveries (kakao_id, id);
