//! The staff admin at /admin/, one file per page or concern (mirroring `src/web/admin/`).

mod access;
mod actions;
mod bulk;
mod create;
mod dashboard;
mod detail;
mod export;
mod list;
mod login;
