//! The admin's user pages, one file a concern: the list (`list`), one user's page and edit form
//! (`detail`), the action buttons and deletion (`actions`), creating a user (`create`), bulk
//! actions (`bulk`) and the CSV export (`export`).

pub mod actions;
pub mod bulk;
pub mod create;
pub mod detail;
pub mod export;
pub mod list;
