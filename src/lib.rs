//! kakao-login: a server-side 카카오 로그인 (Login with Kakao) service.
//!
//! Layers, data flowing one way: `web` (handlers, extractors, templates) -> `users` (rules and
//! transactions) -> `users::repo` (Diesel queries) -> `db` (pool, connection, migrations), with
//! `kakao` (the Kakao client) beside. `standin` plays Kakao for tests and for development.

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod error;
pub mod kakao;
pub mod standin;
pub mod state;
pub mod users;
pub mod web;

pub use app::Application;
pub use config::Settings;
