//! The staff admin's changes to users. Each one goes through `changes` (permission policy,
//! `UserManager`'s validation, the last-superuser rule) and writes its audit entry in the same
//! transaction, so a change is never recorded without happening or happen unrecorded.

use super::audit::{self, AuditAction};
use super::changes::{self, ChangeError, Deleted, FieldChange, UserPatch};
use super::manager::CreateUser;
use super::model::User;
use super::permissions::{self, Role};
use super::repo;
use crate::db::{self, DbConnection, DbError};

fn retryable(e: &ChangeError) -> bool {
    matches!(e, ChangeError::Db(DbError::Query(q)) if db::is_retryable(q))
}

/// Apply `patch` to a user and record it as `action` (edit, activate, deactivate). Nothing is
/// recorded when nothing changed.
pub fn update_user(
    conn: &mut DbConnection,
    actor: &User,
    target_id: i64,
    patch: &UserPatch,
    action: AuditAction,
) -> Result<(User, Vec<FieldChange>), ChangeError> {
    db::transaction_with_retry(conn, retryable, |conn| {
        let (user, log) = changes::update_user(conn, actor, target_id, patch)?;
        if !log.is_empty() {
            audit::record(conn, Some(actor), &user, action, &log)?;
        }
        Ok((user, log))
    })
}

/// Delete a user (superusers only, in the admin; never the last active superuser).
pub fn delete_user(
    conn: &mut DbConnection,
    actor: &User,
    target_id: i64,
) -> Result<Deleted, ChangeError> {
    // `changes::delete_user` also lets people delete themselves; the admin is for superusers.
    if !permissions::can_delete(actor) {
        return Err(ChangeError::Forbidden(
            "only superusers delete users".into(),
        ));
    }
    db::transaction_with_retry(conn, retryable, |conn| {
        let deleted = changes::delete_user(conn, actor, target_id)?;
        let snapshot = snapshot(&deleted.user)
            .into_iter()
            .map(|c| FieldChange {
                field: c.field,
                old: c.new,
                new: "null".to_owned(),
            })
            .collect::<Vec<_>>();
        audit::record(
            conn,
            Some(actor),
            &deleted.user,
            AuditAction::Delete,
            &snapshot,
        )?;
        Ok(deleted)
    })
}

/// Create a user of `role` through `UserManager`.
pub fn create_user(
    conn: &mut DbConnection,
    actor: &User,
    input: &CreateUser,
    role: Role,
) -> Result<User, ChangeError> {
    db::transaction_with_retry(conn, retryable, |conn| {
        let user = changes::create_user(conn, actor, input, role)?;
        audit::record(
            conn,
            Some(actor),
            &user,
            AuditAction::Create,
            &snapshot(&user),
        )?;
        Ok(user)
    })
}

/// End every session of a user; returns how many ended.
pub fn sign_out_everywhere(
    conn: &mut DbConnection,
    actor: &User,
    target_id: i64,
) -> Result<usize, ChangeError> {
    db::transaction_with_retry(conn, retryable, |conn| {
        let target = repo::find_user(conn, target_id)?.ok_or(ChangeError::NotFound)?;
        let ended = changes::sign_out_everywhere(conn, actor, target_id)?;
        audit::record(
            conn,
            Some(actor),
            &target,
            AuditAction::SignOutEverywhere,
            &[FieldChange {
                field: "sessions",
                old: ended.to_string(),
                new: "0".to_owned(),
            }],
        )?;
        Ok(ended)
    })
}

/// A user's fields as changes from nothing, for the audit entries of creation and deletion.
fn snapshot(user: &User) -> Vec<FieldChange> {
    let null = || "null".to_owned();
    vec![
        FieldChange {
            field: "email",
            old: null(),
            new: user.email.clone(),
        },
        FieldChange {
            field: "name",
            old: null(),
            new: user.name.clone().unwrap_or_else(null),
        },
        FieldChange {
            field: "age",
            old: null(),
            new: user.age.map_or_else(null, |a| a.to_string()),
        },
        FieldChange {
            field: "is_active",
            old: null(),
            new: user.is_active.to_string(),
        },
        FieldChange {
            field: "is_staff",
            old: null(),
            new: user.is_staff.to_string(),
        },
        FieldChange {
            field: "is_superuser",
            old: null(),
            new: user.is_superuser.to_string(),
        },
    ]
}
