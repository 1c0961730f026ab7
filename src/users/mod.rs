//! Users: who they are, the rules about them, and the one service that changes them.
//!
//! - `model`: the rows (`User`, `SocialAccount`) and what is written into them.
//! - `manager`: `UserManager`, the rules that make a valid user (Django's `create_user` /
//!   `create_superuser`), and the field rules every change uses.
//! - `permissions`: who may do what (`Actor`, `Role`, the named permissions).
//! - `changes`: **the change service**, the only code that writes a user; every door calls it
//!   and every call writes its audit row.
//! - `signin`: the identity rules of a Kakao sign-in (writes through `changes`).
//! - `passwords`: checking break-glass passwords (set through `changes`).
//! - `audit`: the audit log's rows (written by `changes` only) and its list.
//! - `kakao_events`: what Kakao's webhooks say, applied through `changes` (Kakao as the
//!   actor), and the record of every delivery.
//! - `repo`, `lookup`, `query`, `stats`: reads: single rows, what the doors may see of a user,
//!   the user list, the dashboard's counts.

pub mod audit;
pub mod changes;
pub mod kakao_events;
pub mod lookup;
pub mod manager;
pub mod model;
pub mod passwords;
pub mod permissions;
pub mod query;
pub mod repo;
pub mod signin;
pub mod stats;
