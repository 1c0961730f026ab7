-- One path for every change to a user.
-- `users.session_epoch`: bumping it ends every session of the user at once (sign out
-- everywhere, deactivation); a session record is live only while its `epoch` equals its
-- user's. The user service changes users without touching the session table, which
-- belongs to sign-in (`auth`).
ALTER TABLE users ADD COLUMN session_epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE user_sessions ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
-- Which door a change came through: api, admin, profile, kakao_login, cli or kakao. Before
-- this, only the admin pages and the command line (no actor) wrote the log.
ALTER TABLE audit_log ADD COLUMN via TEXT NOT NULL DEFAULT '';
UPDATE audit_log SET via = CASE WHEN actor_id IS NULL THEN 'cli' ELSE 'admin' END;
