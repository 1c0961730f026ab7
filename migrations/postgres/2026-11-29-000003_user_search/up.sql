-- User search ("contains", case-insensitive) served by trigram indexes, so that a search does
-- not read the whole table at a million users. pg_trgm ships with PostgreSQL (contrib) and is a
-- trusted extension: the database owner may create it. The expressions match the list query's.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX users_email_trgm_idx ON users USING gin (email gin_trgm_ops);
CREATE INDEX users_name_trgm_idx ON users USING gin (lower(COALESCE(name, '')) gin_trgm_ops);
