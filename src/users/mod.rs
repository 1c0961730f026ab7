//! Users: rows, the `UserManager` that creates them, queries, and the rules around sign-in.

pub mod admin;
pub mod audit;
pub mod changes;
pub mod manager;
pub mod model;
pub mod passwords;
pub mod permissions;
pub mod query;
pub mod repo;
pub mod service;
pub mod stats;
