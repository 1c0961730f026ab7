-- Keyset pagination by last sign-in: "never" sorts as the epoch, the same expression the list
-- query orders by, so the index serves it.
CREATE INDEX users_last_login_idx ON users (COALESCE(last_login, '1970-01-01 00:00:00'), id);
