-- The staff admin: an append-only audit log, break-glass passwords for staff, and indexes for
-- the dashboard's counts.

-- No foreign keys on purpose: the trail outlives the users it names (a deleted user's history
-- stays), so the emails at the time are kept beside the ids.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TIMESTAMP NOT NULL,
    actor_id BIGINT,
    actor_email TEXT NOT NULL,
    target_id BIGINT,
    target_email TEXT NOT NULL,
    action TEXT NOT NULL,
    changes TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX audit_log_target_idx ON audit_log (target_id, id);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_id, id);
CREATE INDEX audit_log_action_idx ON audit_log (action, id);

-- Argon2 hashes (PHC strings) for the break-glass sign-in at /admin/login/.
CREATE TABLE staff_passwords (
    user_id BIGINT PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    password_hash TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- Dashboard counts: staff and active users are counted from small indexes, not the table.
CREATE INDEX users_is_staff_idx ON users (is_staff);
CREATE INDEX users_is_active_idx ON users (is_active);
