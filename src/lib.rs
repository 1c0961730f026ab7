//! kakao-login: a server-side 카카오 로그인 (Login with Kakao) service.
//!
//! Layers, data flowing one way:
//! `web` (handlers, extractors, the error faces, templates)
//!   -> `auth` (sign-in use cases and sessions) and `users` (rules and the one change service)
//!   -> `users::repo` / `auth::records` (Diesel queries) -> `db` (pool, connection, migrations),
//! with `kakao` (the Kakao client) beside, and `token` and `kst` as leaves anyone may use.
//! `standin` plays Kakao for tests and for development. Error types and where each is used:
//! see `web::error`.

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod kakao;
pub mod kst;
pub mod redis_store;
pub mod standin;
pub mod state;
pub mod telemetry;
pub mod token;
pub mod users;
pub mod web;

pub use app::Application;
pub use config::Settings;
