//! Sign-in's storage without HTTP (a real database, SQLite or PostgreSQL).

mod records;
