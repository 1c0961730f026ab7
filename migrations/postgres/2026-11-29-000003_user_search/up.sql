-- User search ("contains", case-insensitive) served by trigram indexes, so that a search does
-- not read the whole table at a million users. pg_trgm ships with PostgreSQL (contrib) and is a
-- trusted extension: the database owner may create it. The expressions match the list query's.
-- fastupdate is off: with it, new users wait in a pending list that every search reads in
-- full until (auto)vacuum merges it, which made searches 4x slower after a burst of sign-ups.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX users_email_trgm_idx ON users USING gin (email gin_trgm_ops)
    WITH (fastupdate = off);
CREATE INDEX users_name_trgm_idx ON users USING gin (lower(COALESCE(name, '')) gin_trgm_ops)
    WITH (fastupdate = off);
