//! The users core without HTTP (a real database, SQLite or PostgreSQL): `UserManager`'s
//! rules, the change service, the identity rules of a Kakao sign-in, and the list query.

mod changes;
mod manager;
mod query;
mod signin;
