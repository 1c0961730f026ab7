//! The one integration test binary: every test starts its own app on 127.0.0.1:0 with its own
//! database (SQLite, or PostgreSQL when TEST_DATABASE_URL is set) and its own Kakao stand-in.

mod admin;
mod api;
mod browser;
mod cli;
mod login_failures;
mod login_flow;
mod sessions;
mod standin_mode;
mod support;
mod user_list;
mod user_manager;
