DROP TABLE consumed_login_states;
DROP TABLE user_sessions;
DROP TABLE social_accounts;
DROP TABLE users;
