-- Users, their Kakao links, server-side session records and used login states.
CREATE TABLE users (
    id BIGSERIAL PRIMARY KEY,
    email TEXT NOT NULL,
    name TEXT,
    age INTEGER CHECK (age IS NULL OR (age >= 0 AND age <= 150)),
    provider TEXT NOT NULL,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    is_staff BOOLEAN NOT NULL DEFAULT FALSE,
    is_superuser BOOLEAN NOT NULL DEFAULT FALSE,
    date_joined TIMESTAMP NOT NULL,
    last_login TIMESTAMP
);
-- Emails are stored lowercased by UserManager, so this makes uniqueness case-insensitive.
CREATE UNIQUE INDEX users_email_key ON users (email);
CREATE INDEX users_date_joined_idx ON users (date_joined, id);

CREATE TABLE social_accounts (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    uid BIGINT NOT NULL,
    extra_data TEXT NOT NULL DEFAULT '{}',
    connected_at TIMESTAMP NOT NULL,
    last_login TIMESTAMP NOT NULL,
    CONSTRAINT social_accounts_provider_uid_key UNIQUE (provider, uid),
    CONSTRAINT social_accounts_user_provider_key UNIQUE (user_id, provider)
);

CREATE TABLE user_sessions (
    id TEXT PRIMARY KEY NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX user_sessions_user_id_idx ON user_sessions (user_id);

CREATE TABLE consumed_login_states (
    state_hash TEXT PRIMARY KEY NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX consumed_login_states_expires_idx ON consumed_login_states (expires_at);
