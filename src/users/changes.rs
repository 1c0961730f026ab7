//! Changes made to users by someone (themselves, staff or a superuser): create, update, delete,
//! sign out everywhere. Each checks the permission policy, validates with `UserManager`'s
//! rules, keeps at least one active superuser, and reports what changed (for the audit log).

use diesel::prelude::*;

use super::manager::{CreateUser, FieldErrors, UserError, UserManager};
use super::model::{User, UserChanges};
use super::permissions::{self, Role, UserField};
use super::repo;
use crate::db::{self, DbConnection, DbError};

/// What someone asks to change; `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserPatch {
    pub name: Option<Option<String>>,
    pub age: Option<Option<i32>>,
    pub email: Option<String>,
    pub is_active: Option<bool>,
    pub is_staff: Option<bool>,
    pub is_superuser: Option<bool>,
}

impl UserPatch {
    /// The fields this patch touches.
    pub fn fields(&self) -> Vec<UserField> {
        let mut fields = Vec::new();
        if self.name.is_some() {
            fields.push(UserField::Name);
        }
        if self.age.is_some() {
            fields.push(UserField::Age);
        }
        if self.email.is_some() {
            fields.push(UserField::Email);
        }
        if self.is_active.is_some() {
            fields.push(UserField::IsActive);
        }
        if self.is_staff.is_some() {
            fields.push(UserField::IsStaff);
        }
        if self.is_superuser.is_some() {
            fields.push(UserField::IsSuperuser);
        }
        fields
    }
}

/// One field's change, as text, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldChange {
    pub field: &'static str,
    pub old: String,
    pub new: String,
}

/// Why a change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("no such user")]
    NotFound,
    #[error("not allowed: {0}")]
    Forbidden(String),
    #[error("invalid: {0}")]
    Invalid(FieldErrors),
    #[error("a user with this email already exists")]
    DuplicateEmail,
    #[error("the last active superuser cannot be demoted, deactivated or deleted")]
    LastSuperuser,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for ChangeError {
    fn from(e: diesel::result::Error) -> Self {
        match e {
            diesel::result::Error::NotFound => ChangeError::NotFound,
            e if db::is_unique_violation(&e) => ChangeError::DuplicateEmail,
            e => ChangeError::Db(DbError::Query(e)),
        }
    }
}

impl From<UserError> for ChangeError {
    fn from(e: UserError) -> Self {
        match e {
            UserError::Invalid(f) => ChangeError::Invalid(f),
            UserError::DuplicateEmail => ChangeError::DuplicateEmail,
            UserError::Db(e) => ChangeError::Db(e),
        }
    }
}

fn retryable(e: &ChangeError) -> bool {
    matches!(e, ChangeError::Db(DbError::Query(q)) if db::is_retryable(q))
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    #[allow(dead_code)]
    id: i64,
}

/// How many active superusers there are, locking their rows on PostgreSQL so that two
/// concurrent demotions cannot both see "there is another one". (SQLite has one writer.)
fn active_superusers(conn: &mut DbConnection) -> QueryResult<usize> {
    const SQL: &str = "SELECT id FROM users WHERE is_superuser AND is_active";
    match conn {
        DbConnection::Postgresql(c) => Ok(diesel::sql_query(format!("{SQL} FOR UPDATE"))
            .load::<IdRow>(c)?
            .len()),
        DbConnection::Sqlite(c) => Ok(diesel::sql_query(SQL).load::<IdRow>(c)?.len()),
    }
}

fn guard_last_superuser(conn: &mut DbConnection, target: &User) -> Result<(), ChangeError> {
    if target.is_superuser && target.is_active && active_superusers(conn)? <= 1 {
        return Err(ChangeError::LastSuperuser);
    }
    Ok(())
}

fn show<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "null".to_owned(), T::to_string)
}

/// Apply `patch` to user `target_id` on behalf of `actor`.
pub fn update_user(
    conn: &mut DbConnection,
    actor: &User,
    target_id: i64,
    patch: &UserPatch,
) -> Result<(User, Vec<FieldChange>), ChangeError> {
    db::transaction_with_retry(conn, retryable, |conn| {
        update_once(conn, actor, target_id, patch)
    })
}

fn update_once(
    conn: &mut DbConnection,
    actor: &User,
    target_id: i64,
    patch: &UserPatch,
) -> Result<(User, Vec<FieldChange>), ChangeError> {
    if !permissions::can_view(actor, target_id) {
        return Err(ChangeError::NotFound);
    }
    let target = repo::find_user(conn, target_id)?.ok_or(ChangeError::NotFound)?;
    let allowed = permissions::editable_fields(actor, &target);
    let refused: Vec<&str> = patch
        .fields()
        .into_iter()
        .filter(|f| !allowed.contains(f))
        .map(UserField::as_str)
        .collect();
    if !refused.is_empty() {
        return Err(ChangeError::Forbidden(format!(
            "you may not change: {}",
            refused.join(", ")
        )));
    }

    let mut errors = FieldErrors::default();
    let name = patch
        .name
        .as_ref()
        .map(|n| UserManager::normalize_name(n.as_deref()));
    if let Some(Some(n)) = &name
        && let Some(p) = UserManager::name_problem(n)
    {
        errors.add("name", p);
    }
    if let Some(Some(age)) = patch.age
        && let Some(p) = UserManager::age_problem(age)
    {
        errors.add("age", p);
    }
    let email = patch.email.as_deref().map(UserManager::normalize_email);
    if let Some(e) = &email
        && let Some(p) = UserManager::email_problem(e)
    {
        errors.add("email", p);
    }
    if !errors.is_empty() {
        return Err(ChangeError::Invalid(errors));
    }
    if let Some(e) = &email
        && *e != target.email
        && repo::find_user_by_email(conn, e)?.is_some()
    {
        return Err(ChangeError::DuplicateEmail);
    }
    let demoting = patch.is_superuser == Some(false) || patch.is_active == Some(false);
    if demoting {
        guard_last_superuser(conn, &target)?;
    }

    let mut changes = UserChanges::default();
    let mut log = Vec::new();
    if let Some(n) = name
        && n != target.name
    {
        log.push(FieldChange {
            field: "name",
            old: show(&target.name),
            new: show(&n),
        });
        changes.name = Some(n);
    }
    if let Some(a) = patch.age
        && a != target.age
    {
        log.push(FieldChange {
            field: "age",
            old: show(&target.age),
            new: show(&a),
        });
        changes.age = Some(a);
    }
    if let Some(e) = email
        && e != target.email
    {
        log.push(FieldChange {
            field: "email",
            old: target.email.clone(),
            new: e.clone(),
        });
        changes.email = Some(e);
    }
    for (field, wanted, current, slot) in [
        (
            "is_active",
            patch.is_active,
            target.is_active,
            &mut changes.is_active,
        ),
        (
            "is_staff",
            patch.is_staff,
            target.is_staff,
            &mut changes.is_staff,
        ),
        (
            "is_superuser",
            patch.is_superuser,
            target.is_superuser,
            &mut changes.is_superuser,
        ),
    ] {
        if let Some(w) = wanted
            && w != current
        {
            log.push(FieldChange {
                field,
                old: current.to_string(),
                new: w.to_string(),
            });
            *slot = Some(w);
        }
    }
    let updated = repo::update_user(conn, target.id, &changes)?;
    if changes.is_active == Some(false) {
        repo::delete_user_sessions(conn, target.id)?;
    }
    Ok((updated, log))
}

/// A deleted user and the Kakao id that was linked (to unlink at Kakao).
#[derive(Debug, Clone)]
pub struct Deleted {
    pub user: User,
    pub kakao_id: Option<i64>,
}

/// Delete user `target_id` on behalf of `actor` (superusers; or the user themself, leaving).
pub fn delete_user(
    conn: &mut DbConnection,
    actor: &User,
    target_id: i64,
) -> Result<Deleted, ChangeError> {
    db::transaction_with_retry(conn, retryable, |conn| {
        let is_self = actor.id == target_id;
        if !permissions::can_view(actor, target_id) {
            return Err(ChangeError::NotFound);
        }
        if !is_self && !permissions::can_delete(actor) {
            return Err(ChangeError::Forbidden(
                "only superusers delete users".into(),
            ));
        }
        let target = repo::find_user(conn, target_id)?.ok_or(ChangeError::NotFound)?;
        guard_last_superuser(conn, &target)?;
        let kakao_id = repo::find_social_for_user(conn, target.id, "kakao")?.map(|s| s.uid);
        repo::delete_user(conn, target.id)?;
        Ok(Deleted {
            user: target,
            kakao_id,
        })
    })
}

/// Create a user of `role` on behalf of `actor`, through `UserManager`.
pub fn create_user(
    conn: &mut DbConnection,
    actor: &User,
    input: &CreateUser,
    role: Role,
) -> Result<User, ChangeError> {
    if !permissions::can_create(actor, role) {
        return Err(ChangeError::Forbidden(match role {
            Role::Member => "only staff create users".into(),
            _ => "only superusers create staff or superusers".into(),
        }));
    }
    let user = match role {
        Role::Member => UserManager::create_user(conn, input)?,
        Role::Staff => UserManager::create_staff(conn, input)?,
        Role::Superuser => UserManager::create_superuser(conn, input)?,
    };
    Ok(user)
}

/// End every session of user `target_id` ("sign out everywhere"); returns how many ended.
pub fn sign_out_everywhere(
    conn: &mut DbConnection,
    actor: &User,
    target_id: i64,
) -> Result<usize, ChangeError> {
    let target = repo::find_user(conn, target_id)?.ok_or(ChangeError::NotFound)?;
    if actor.id != target.id && !permissions::can_manage(actor, &target) {
        return Err(ChangeError::Forbidden(
            "you may not sign this user out".into(),
        ));
    }
    Ok(repo::delete_user_sessions(conn, target.id)?)
}
