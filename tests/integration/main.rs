//! The one integration test binary: every test starts its own app on 127.0.0.1:0 with its own
//! database (SQLite, or PostgreSQL when TEST_DATABASE_URL is set) and its own Kakao stand-in,
//! or works on its own database without HTTP. The modules mirror `src/`.

mod auth;
mod browser;
mod cli;
mod db;
mod faults;
mod fleet;
mod standin_mode;
mod support;
mod users;
mod web;
