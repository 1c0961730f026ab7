//! The one way a user changes. Every door calls a function here, naming its [`Actor`]: the
//! JSON API, the admin pages, the profile page, the command line, Kakao sign-in
//! (`users::signin`) and Kakao itself. Each public function, in one transaction:
//!
//! 1. checks the permission policy for that actor (`users::permissions`),
//! 2. validates with `UserManager`'s rules and keeps at least one active superuser,
//! 3. applies the change,
//! 4. writes exactly one audit row naming the actor, the door, the target and each field's
//!    old -> new value (nothing is recorded when nothing changed).
//!
//! The transaction runs again as a whole when a concurrent writer gets in the way (one retry
//! loop per call; the `*_in` helpers never retry). Nothing else writes `users`,
//! `social_accounts` or `staff_passwords`: the repo's writes are visible to `users` only.
//!
//! Sessions: a user's sessions end when their `session_epoch` is bumped (sign out everywhere,
//! deactivation). The session records themselves belong to sign-in (`auth`), which only honours
//! records of the current epoch, so this service never touches them.

use diesel::Connection;

use super::audit::{self, AuditAction};
use super::manager::{CreateUser, FieldErrors, UserManager};
use super::model::{NewSocialAccount, NewUser, User, UserChanges};
use super::passwords;
use super::permissions::{Actor, Role, UserField};
use super::repo;
use crate::db::{self, DbConnection, DbError, DbPool};
use crate::kakao::KakaoClient;
use crate::kakao::events::KakaoSaid;

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
        [
            (UserField::Name, self.name.is_some()),
            (UserField::Age, self.age.is_some()),
            (UserField::Email, self.email.is_some()),
            (UserField::IsActive, self.is_active.is_some()),
            (UserField::IsStaff, self.is_staff.is_some()),
            (UserField::IsSuperuser, self.is_superuser.is_some()),
        ]
        .into_iter()
        .filter_map(|(field, present)| present.then_some(field))
        .collect()
    }

    /// Only the active flag, set to `active` (the activate and deactivate buttons).
    pub fn active(active: bool) -> UserPatch {
        UserPatch {
            is_active: Some(active),
            ..UserPatch::default()
        }
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
    /// No such user, or one the actor may not even know exists.
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
    Db(DbError),
}

impl From<DbError> for ChangeError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::NotFound => ChangeError::NotFound,
            e if e.is_email_taken() => ChangeError::DuplicateEmail,
            other => ChangeError::Db(other),
        }
    }
}

impl db::DbFailure for ChangeError {
    fn db_unavailable(&self) -> bool {
        matches!(self, ChangeError::Db(e) if e.is_unavailable())
    }
    fn db_busy(&self) -> bool {
        matches!(self, ChangeError::Db(e) if e.is_busy())
    }
}

impl From<diesel::result::Error> for ChangeError {
    fn from(e: diesel::result::Error) -> Self {
        ChangeError::from(DbError::from(e))
    }
}

impl ChangeError {
    fn forbidden(why: &str) -> ChangeError {
        ChangeError::Forbidden(why.to_owned())
    }
}

/// Run `f` in one write transaction, again as a whole when a concurrent writer got in the way.
fn in_transaction<T>(
    conn: &mut DbConnection,
    f: impl FnMut(&mut DbConnection) -> Result<T, ChangeError>,
) -> Result<T, ChangeError> {
    db::transaction_with_retry(conn, |e| matches!(e, ChangeError::Db(d) if d.is_busy()), f)
}

/// The user `target_id`, if `actor` may know of them, locked for the rest of the transaction
/// (so that the audit row's old values are the ones this change replaced).
fn visible_target(
    conn: &mut DbConnection,
    actor: &Actor,
    target_id: i64,
) -> Result<User, ChangeError> {
    if !actor.may_view(target_id) {
        return Err(ChangeError::NotFound);
    }
    repo::find_user_for_update(conn, target_id)?.ok_or(ChangeError::NotFound)
}

#[derive(diesel::QueryableByName)]
struct IdRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    #[expect(
        dead_code,
        reason = "the rows are only counted; loading them takes their locks"
    )]
    id: i64,
}

/// How many active superusers there are, locking their rows on PostgreSQL so that two
/// concurrent demotions cannot both see "there is another one". (SQLite has one writer.)
fn active_superusers(conn: &mut DbConnection) -> diesel::QueryResult<usize> {
    use diesel::RunQueryDsl;
    const SQL: &str = "SELECT id FROM users WHERE is_superuser AND is_active";
    match conn {
        // In id order, as every other lock is taken, so that two transactions cannot wait on
        // each other.
        DbConnection::Postgresql(c) => {
            Ok(diesel::sql_query(format!("{SQL} ORDER BY id FOR UPDATE"))
                .load::<IdRow>(c)?
                .len())
        }
        DbConnection::Sqlite(c) => Ok(diesel::sql_query(SQL).load::<IdRow>(c)?.len()),
    }
}

/// Take the active superusers' rows before any other lock of a change that may demote or
/// delete one: every such change then locks in the same order (superusers in id order, then
/// the target), so two of them wait for each other instead of deadlocking.
fn lock_superusers(conn: &mut DbConnection) -> Result<(), ChangeError> {
    active_superusers(conn)?;
    Ok(())
}

/// Refuse a change that would leave no active superuser.
fn guard_last_superuser(conn: &mut DbConnection, target: &User) -> Result<(), ChangeError> {
    if target.is_superuser && target.is_active && active_superusers(conn)? <= 1 {
        return Err(ChangeError::LastSuperuser);
    }
    Ok(())
}

/// An optional value as the audit log writes it.
fn audit_text<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "null".to_owned(), T::to_string)
}

/// A user's fields as changes from nothing (creation), or to nothing (deletion, `gone`).
fn snapshot(user: &User, gone: bool) -> Vec<FieldChange> {
    [
        ("email", user.email.clone()),
        ("name", audit_text(&user.name)),
        ("age", audit_text(&user.age)),
        ("is_active", user.is_active.to_string()),
        ("is_staff", user.is_staff.to_string()),
        ("is_superuser", user.is_superuser.to_string()),
    ]
    .into_iter()
    .map(|(field, value)| {
        let null = "null".to_owned();
        let (old, new) = if gone { (value, null) } else { (null, value) };
        FieldChange { field, old, new }
    })
    .collect()
}

// ---- create -------------------------------------------------------------------------------

/// Create a user of `role` through `UserManager`'s rules, on behalf of `actor`.
pub fn create_user(
    conn: &mut DbConnection,
    actor: &Actor,
    input: &CreateUser,
    role: Role,
) -> Result<User, ChangeError> {
    if !actor.may_create(role) {
        return Err(ChangeError::forbidden(match role {
            Role::Member => "only staff create users",
            _ => "only superusers create staff or superusers",
        }));
    }
    let new = match role {
        Role::Member => UserManager::create_user(input),
        Role::Staff => UserManager::create_staff(input),
        Role::Superuser => UserManager::create_superuser(input),
    }
    .map_err(ChangeError::Invalid)?;
    in_transaction(conn, |conn| {
        let user = insert_in(conn, &new)?;
        audit::record(
            conn,
            actor,
            &user,
            AuditAction::Create,
            &snapshot(&user, false),
        )?;
        Ok(user)
    })
}

/// Insert a validated user; an email already in use is `DuplicateEmail`.
fn insert_in(conn: &mut DbConnection, new: &NewUser) -> Result<User, ChangeError> {
    if repo::find_user_by_email(conn, &new.email)?.is_some() {
        return Err(ChangeError::DuplicateEmail);
    }
    // The unique index still decides under concurrency; its violation is DuplicateEmail too.
    Ok(repo::insert_user(conn, new)?)
}

// ---- update -------------------------------------------------------------------------------

/// A change that was applied: the user as they are now, and what changed.
#[derive(Debug, Clone)]
pub struct Updated {
    pub user: User,
    pub changes: Vec<FieldChange>,
}

/// Apply `patch` to user `target_id` on behalf of `actor` (PATCH: any subset of fields).
pub fn update_user(
    conn: &mut DbConnection,
    actor: &Actor,
    target_id: i64,
    patch: &UserPatch,
) -> Result<Updated, ChangeError> {
    in_transaction(conn, |conn| update_in(conn, actor, target_id, patch, false))
}

/// As `update_user`, with the patch made by `patch_for` from the target as it is now (locked)
/// and the fields the actor may change on it: a form's unticked checkbox means "false" only
/// for a flag the actor may change.
pub fn update_user_with(
    conn: &mut DbConnection,
    actor: &Actor,
    target_id: i64,
    patch_for: impl Fn(&User, &[UserField]) -> UserPatch,
) -> Result<Updated, ChangeError> {
    in_transaction(conn, |conn| {
        // The patch is known only once the target is read, and it may demote: take the
        // superusers' lock first, as every demotion does.
        lock_superusers(conn)?;
        let target = visible_target(conn, actor, target_id)?;
        let patch = patch_for(&target, &actor.editable_fields(&target));
        apply(conn, actor, target, &patch, false)
    })
}

/// As `update_user`, but every field the actor may change must be in `patch` (PUT).
pub fn replace_user(
    conn: &mut DbConnection,
    actor: &Actor,
    target_id: i64,
    patch: &UserPatch,
) -> Result<Updated, ChangeError> {
    in_transaction(conn, |conn| update_in(conn, actor, target_id, patch, true))
}

/// The audit action of a set of changes: the (de)activate buttons' own when only the active
/// flag changed, whichever door it came through.
fn update_action(changes: &[FieldChange]) -> AuditAction {
    match changes {
        [only] if only.field == "is_active" && only.new == "true" => AuditAction::Activate,
        [only] if only.field == "is_active" => AuditAction::Deactivate,
        _ => AuditAction::Update,
    }
}

/// What is wrong with the values of `patch` by `UserManager`'s field rules (uniqueness aside).
/// Forms call it too, to show every problem at once when one of their fields did not parse.
pub fn field_problems(patch: &UserPatch) -> FieldErrors {
    let mut errors = FieldErrors::default();
    if let Some(Some(name)) = &patch.name
        && let Some(n) = UserManager::normalize_name(Some(name))
        && let Some(p) = UserManager::name_problem(&n)
    {
        errors.add("name", p);
    }
    if let Some(Some(age)) = patch.age
        && let Some(p) = UserManager::age_problem(age)
    {
        errors.add("age", p);
    }
    if let Some(email) = &patch.email
        && let Some(p) = UserManager::email_problem(&UserManager::normalize_email(email))
    {
        errors.add("email", p);
    }
    errors
}

fn update_in(
    conn: &mut DbConnection,
    actor: &Actor,
    target_id: i64,
    patch: &UserPatch,
    require_all: bool,
) -> Result<Updated, ChangeError> {
    if patch.is_superuser == Some(false) || patch.is_active == Some(false) {
        lock_superusers(conn)?;
    }
    let target = visible_target(conn, actor, target_id)?;
    apply(conn, actor, target, patch, require_all)
}

/// Apply `patch` to `target` (already loaded and locked) on behalf of `actor`.
fn apply(
    conn: &mut DbConnection,
    actor: &Actor,
    target: User,
    patch: &UserPatch,
    require_all: bool,
) -> Result<Updated, ChangeError> {
    let allowed = actor.editable_fields(&target);
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
    if require_all {
        let sent = patch.fields();
        for field in &allowed {
            if !sent.contains(field) {
                errors.add(field.as_str(), "이 필드는 필수입니다.");
            }
        }
    }
    errors.merge(field_problems(patch));
    let name = patch
        .name
        .as_ref()
        .map(|n| UserManager::normalize_name(n.as_deref()));
    let email = patch.email.as_deref().map(UserManager::normalize_email);
    errors.into_result().map_err(ChangeError::Invalid)?;
    if let Some(e) = &email
        && *e != target.email
        && repo::find_user_by_email(conn, e)?.is_some()
    {
        return Err(ChangeError::DuplicateEmail);
    }
    if patch.is_superuser == Some(false) || patch.is_active == Some(false) {
        guard_last_superuser(conn, &target)?;
    }

    let mut row = UserChanges::default();
    let mut log = Vec::new();
    if let Some(n) = name
        && n != target.name
    {
        log.push(FieldChange {
            field: "name",
            old: audit_text(&target.name),
            new: audit_text(&n),
        });
        row.name = Some(n);
    }
    if let Some(a) = patch.age
        && a != target.age
    {
        log.push(FieldChange {
            field: "age",
            old: audit_text(&target.age),
            new: audit_text(&a),
        });
        row.age = Some(a);
    }
    if let Some(e) = email
        && e != target.email
    {
        log.push(FieldChange {
            field: "email",
            old: target.email.clone(),
            new: e.clone(),
        });
        row.email = Some(e);
    }
    for (field, wanted, current, slot) in [
        (
            "is_active",
            patch.is_active,
            target.is_active,
            &mut row.is_active,
        ),
        (
            "is_staff",
            patch.is_staff,
            target.is_staff,
            &mut row.is_staff,
        ),
        (
            "is_superuser",
            patch.is_superuser,
            target.is_superuser,
            &mut row.is_superuser,
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
    if log.is_empty() {
        return Ok(Updated {
            user: target,
            changes: log,
        });
    }
    if row.is_active == Some(false) {
        // Deactivation ends every session, so reactivating later revives none of them.
        row.session_epoch = Some(target.session_epoch + 1);
    }
    let user = repo::update_user(conn, target.id, &row)?;
    audit::record(conn, actor, &user, update_action(&log), &log)?;
    Ok(Updated { user, changes: log })
}

// ---- sessions -----------------------------------------------------------------------------

/// End every session of user `target_id` ("sign out everywhere"), on behalf of `actor`.
pub fn sign_out_everywhere(
    conn: &mut DbConnection,
    actor: &Actor,
    target_id: i64,
) -> Result<User, ChangeError> {
    in_transaction(conn, |conn| sign_out_everywhere_in(conn, actor, target_id))
}

fn sign_out_everywhere_in(
    conn: &mut DbConnection,
    actor: &Actor,
    target_id: i64,
) -> Result<User, ChangeError> {
    let target = visible_target(conn, actor, target_id)?;
    if !actor.may_end_sessions(&target) {
        return Err(ChangeError::forbidden("you may not sign this user out"));
    }
    let epoch = target.session_epoch + 1;
    let user = repo::update_user(
        conn,
        target.id,
        &UserChanges {
            session_epoch: Some(epoch),
            ..UserChanges::default()
        },
    )?;
    let change = FieldChange {
        field: "session_epoch",
        old: target.session_epoch.to_string(),
        new: epoch.to_string(),
    };
    audit::record(
        conn,
        actor,
        &user,
        AuditAction::SignOutEverywhere,
        &[change],
    )?;
    Ok(user)
}

// ---- delete -------------------------------------------------------------------------------

/// A deleted user and the Kakao account that was linked (to unlink at Kakao).
#[derive(Debug, Clone)]
pub struct Deleted {
    pub user: User,
    pub kakao_id: Option<i64>,
}

/// Delete user `target_id` on behalf of `actor` (superusers; or the user themself, leaving).
/// The audit row keeps the deleted values.
pub fn delete_user(
    conn: &mut DbConnection,
    actor: &Actor,
    target_id: i64,
) -> Result<Deleted, ChangeError> {
    in_transaction(conn, |conn| {
        lock_superusers(conn)?;
        let target = visible_target(conn, actor, target_id)?;
        if !actor.may_delete(&target) {
            return Err(ChangeError::forbidden("only superusers delete users"));
        }
        guard_last_superuser(conn, &target)?;
        let kakao_id = repo::find_social_for_user(conn, target.id, "kakao")?.map(|s| s.uid);
        repo::delete_user(conn, target.id)?;
        audit::record(
            conn,
            actor,
            &target,
            AuditAction::Delete,
            &snapshot(&target, true),
        )?;
        Ok(Deleted {
            user: target,
            kakao_id,
        })
    })
}

/// What became of the Kakao link of a deleted user. The same words on every face: the API's
/// `kakao_unlink` field and the admin's notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KakaoUnlink {
    /// Kakao confirmed the unlink.
    Unlinked,
    /// The user had no Kakao link.
    NotLinked,
    /// No admin key is configured, so Kakao was not asked.
    NotConfigured,
    /// Kakao refused or could not be reached; the reason, for the operator.
    Failed(String),
}

impl KakaoUnlink {
    pub fn as_str(&self) -> &'static str {
        match self {
            KakaoUnlink::Unlinked => "unlinked",
            KakaoUnlink::NotLinked => "not_linked",
            KakaoUnlink::NotConfigured => "not_configured",
            KakaoUnlink::Failed(_) => "failed",
        }
    }
}

/// A user deleted here, and what Kakao said about the link.
#[derive(Debug, Clone)]
pub struct Removed {
    pub user: User,
    pub kakao: KakaoUnlink,
}

/// Delete a user (as `delete_user`), then unlink them at Kakao with the admin key. The user is
/// gone here whatever Kakao answers; a failure there is in the outcome, and in the log.
pub async fn remove_user(
    pool: &DbPool,
    kakao: &KakaoClient,
    actor: Actor,
    target_id: i64,
) -> Result<Removed, ChangeError> {
    let actor_id = actor.user().map(|u| u.id);
    let Deleted { user, kakao_id } =
        db::run(pool, move |conn| delete_user(conn, &actor, target_id)).await?;
    log::info!(
        "event=user.deleted actor_id={} user_id={}",
        actor_id.map_or_else(|| "-".to_owned(), |id| id.to_string()),
        user.id
    );
    let outcome = match kakao_id {
        None => KakaoUnlink::NotLinked,
        Some(kid) => match kakao.unlink_user(kid).await {
            Ok(Some(_)) => KakaoUnlink::Unlinked,
            Ok(None) => KakaoUnlink::NotConfigured,
            Err(e) => {
                log::error!(
                    "event=kakao.unlink.failed user_id={} kakao_id={kid} code={} error=\"{e}\"",
                    user.id,
                    e.log_code()
                );
                KakaoUnlink::Failed(e.to_string())
            }
        },
    };
    Ok(Removed {
        user,
        kakao: outcome,
    })
}

// ---- bulk ---------------------------------------------------------------------------------

/// What a bulk action does to each selected user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BulkAction {
    Activate,
    Deactivate,
    SignOut,
}

impl BulkAction {
    pub fn parse(s: &str) -> Option<BulkAction> {
        match s {
            "activate" => Some(BulkAction::Activate),
            "deactivate" => Some(BulkAction::Deactivate),
            "sign_out" => Some(BulkAction::SignOut),
            _ => None,
        }
    }
}

/// How a bulk action went: applied to some, skipped (refused: no permission, the last
/// superuser, gone) for the others.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BulkOutcome {
    pub applied: usize,
    pub skipped: usize,
}

/// Most users one bulk action may touch.
pub const BULK_MAX: usize = 200;

/// Apply `action` to each of `ids` on behalf of `actor`, each through the same rules and with
/// its own audit row, all in one transaction. A refusal skips that user; a database failure
/// undoes the lot.
pub fn bulk(
    conn: &mut DbConnection,
    actor: &Actor,
    ids: &[i64],
    action: BulkAction,
) -> Result<BulkOutcome, ChangeError> {
    if ids.len() > BULK_MAX {
        return Err(ChangeError::Invalid(FieldErrors::single(
            "ids",
            format!("한 번에 {BULK_MAX}명까지 선택할 수 있습니다."),
        )));
    }
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    in_transaction(conn, |conn| {
        let mut outcome = BulkOutcome::default();
        for &id in &ids {
            // Each user in a savepoint of its own: a refusal that failed a statement (on
            // PostgreSQL that aborts the transaction) skips that user only.
            let done = conn.transaction(|conn| match action {
                BulkAction::Activate => {
                    update_in(conn, actor, id, &UserPatch::active(true), false).map(drop)
                }
                BulkAction::Deactivate => {
                    update_in(conn, actor, id, &UserPatch::active(false), false).map(drop)
                }
                BulkAction::SignOut => sign_out_everywhere_in(conn, actor, id).map(drop),
            });
            match done {
                Ok(()) => outcome.applied += 1,
                Err(e @ ChangeError::Db(_)) => return Err(e),
                Err(_) => outcome.skipped += 1,
            }
        }
        Ok(outcome)
    })
}

// ---- break-glass passwords ----------------------------------------------------------------

/// Set the break-glass password of the staff member with `email` (the operator only).
pub fn set_password(
    conn: &mut DbConnection,
    actor: &Actor,
    email: &str,
    password: &str,
) -> Result<User, ChangeError> {
    if !actor.may_set_password() {
        return Err(ChangeError::forbidden(
            "break-glass passwords are set on the server only",
        ));
    }
    let hash = passwords::hash_password(password).map_err(ChangeError::Invalid)?;
    let email = UserManager::normalize_email(email);
    in_transaction(conn, |conn| {
        let user = repo::find_user_by_email(conn, &email)?.ok_or(ChangeError::NotFound)?;
        if !super::permissions::is_raised(&user) {
            return Err(ChangeError::forbidden(
                "only staff may have a break-glass password",
            ));
        }
        repo::set_staff_password_hash(conn, user.id, &hash, db::now())?;
        audit::record(conn, actor, &user, AuditAction::SetPassword, &[])?;
        Ok(user)
    })
}

/// Record that `ended` of user `target_id`'s sessions were ended one by one (the sessions
/// list), on behalf of `actor`, inside the caller's transaction; refuses (so the caller's
/// transaction rolls back) when the policy does not let `actor` end them. Nothing is recorded
/// when none ended.
pub fn sessions_ended_in(
    conn: &mut DbConnection,
    actor: &Actor,
    target_id: i64,
    ended: usize,
) -> Result<(), ChangeError> {
    let target = visible_target(conn, actor, target_id)?;
    if !actor.may_end_sessions(&target) {
        return Err(ChangeError::forbidden("you may not sign this user out"));
    }
    if ended > 0 {
        let change = FieldChange {
            field: "sessions",
            old: ended.to_string(),
            new: "0".to_owned(),
        };
        audit::record(conn, actor, &target, AuditAction::EndSession, &[change])?;
    }
    Ok(())
}

// ---- Kakao's word (its webhooks; only `users::kakao_events` calls this) -------------------

/// What a word from Kakao did to the person it named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KakaoEffect {
    /// A change was made (and audited), to this user.
    Applied(User),
    /// The person is known, and the word changes nothing now (said before, or nothing to do).
    NoChange(User),
    /// No user here is linked to that Kakao account (never was, or no longer is).
    UnknownUser,
}

/// Apply what Kakao said about Kakao account `kakao_id`, with Kakao as the actor, inside the
/// caller's transaction. Policy (README, "Webhooks"):
/// - link gone (`Unlinked`): the link is removed and every session ends; the account stays,
///   so the person can come back (signing in with Kakao links them again by their email);
/// - Kakao account deleted (`AccountDeleted`): the same, and the account is deactivated too
///   (unless it is the last active superuser), for staff to decide what happens next;
/// - `SessionsRevoked`: every session ends;
/// - `Disabled`: every session ends and sign-in through this link is blocked until `Enabled`.
///
/// A word that changes nothing writes no row.
pub(super) fn kakao_said_in(
    conn: &mut DbConnection,
    kakao_id: i64,
    said: &KakaoSaid,
) -> Result<KakaoEffect, ChangeError> {
    let actor = Actor::Kakao;
    let Some(link) = repo::find_social(conn, super::model::Provider::Kakao.as_str(), kakao_id)?
    else {
        return Ok(KakaoEffect::UnknownUser);
    };
    let deleted = matches!(said, KakaoSaid::AccountDeleted { .. });
    if deleted {
        lock_superusers(conn)?;
    }
    let target = visible_target(conn, &actor, link.user_id)?;
    let said_reason = |reason: &str| FieldChange {
        field: "kakao_reason",
        old: String::new(),
        new: reason.to_owned(),
    };
    let epoch_change = |user: &User| FieldChange {
        field: "session_epoch",
        old: user.session_epoch.to_string(),
        new: (user.session_epoch + 1).to_string(),
    };
    let (action, log, changes) = match said {
        KakaoSaid::Unlinked { reason } | KakaoSaid::AccountDeleted { reason } => {
            repo::delete_social(conn, link.id)?;
            let mut log = vec![
                FieldChange {
                    field: "kakao_id",
                    old: kakao_id.to_string(),
                    new: "null".to_owned(),
                },
                epoch_change(&target),
                said_reason(reason),
            ];
            let mut changes = UserChanges {
                session_epoch: Some(target.session_epoch + 1),
                ..UserChanges::default()
            };
            if deleted && target.is_active {
                if guard_last_superuser(conn, &target).is_ok() {
                    changes.is_active = Some(false);
                    log.push(FieldChange {
                        field: "is_active",
                        old: "true".to_owned(),
                        new: "false".to_owned(),
                    });
                } else {
                    log::warn!(
                        "event=kakao.account_deleted.kept_active user_id={} reason=last_superuser",
                        target.id
                    );
                }
            }
            (AuditAction::KakaoUnlink, log, changes)
        }
        KakaoSaid::SessionsRevoked { reason } => (
            AuditAction::SignOutEverywhere,
            vec![epoch_change(&target), said_reason(reason)],
            UserChanges {
                session_epoch: Some(target.session_epoch + 1),
                ..UserChanges::default()
            },
        ),
        KakaoSaid::Disabled | KakaoSaid::Enabled => {
            let disable = *said == KakaoSaid::Disabled;
            if link.disabled_at.is_some() == disable {
                return Ok(KakaoEffect::NoChange(target));
            }
            repo::set_social_disabled(conn, link.id, disable.then(db::now))?;
            let flag = FieldChange {
                field: "kakao_disabled",
                old: (!disable).to_string(),
                new: disable.to_string(),
            };
            if disable {
                (
                    AuditAction::KakaoDisable,
                    vec![flag, epoch_change(&target)],
                    UserChanges {
                        session_epoch: Some(target.session_epoch + 1),
                        ..UserChanges::default()
                    },
                )
            } else {
                (AuditAction::KakaoEnable, vec![flag], UserChanges::default())
            }
        }
        KakaoSaid::Nothing { .. } => return Ok(KakaoEffect::NoChange(target)),
    };
    let user = repo::update_user(conn, target.id, &changes)?;
    audit::record(conn, &actor, &user, action, &log)?;
    Ok(KakaoEffect::Applied(user))
}

// ---- sign-in (only `users::signin` calls these, inside its own transaction) ---------------

/// A Kakao account to link: its id and the profile as Kakao sent it.
pub(super) struct KakaoLink<'a> {
    pub kakao_id: i64,
    pub profile_json: &'a str,
}

fn insert_link(
    conn: &mut DbConnection,
    user: &User,
    link: &KakaoLink,
    now: chrono::NaiveDateTime,
) -> Result<(), DbError> {
    repo::insert_social(
        conn,
        &NewSocialAccount {
            user_id: user.id,
            provider: super::model::Provider::Kakao.as_str().to_owned(),
            uid: link.kakao_id,
            extra_data: link.profile_json.to_owned(),
            connected_at: now,
            last_login: now,
        },
    )?;
    Ok(())
}

fn kakao_id_change(kakao_id: i64) -> FieldChange {
    FieldChange {
        field: "kakao_id",
        old: "null".to_owned(),
        new: kakao_id.to_string(),
    }
}

/// A new member signing up with Kakao, signed in as of now: the user (already validated by
/// `UserManager`, its email found free by the caller) and its link, recorded as created by
/// the person through Kakao sign-in. An email taken since is a unique violation here: the
/// sign-in's retry then reads the winner's rows.
pub(super) fn sign_up_in(
    conn: &mut DbConnection,
    mut new: NewUser,
    link: &KakaoLink,
) -> Result<User, DbError> {
    let now = db::now();
    new.last_login = Some(now);
    let user = repo::insert_user(conn, &new)?;
    insert_link(conn, &user, link, now)?;
    let mut log = snapshot(&user, false);
    log.push(kakao_id_change(link.kakao_id));
    audit::record(conn, &Actor::KakaoSignIn, &user, AuditAction::Create, &log)?;
    Ok(user)
}

/// A pre-provisioned account claimed by the person with its verified email: the link,
/// recorded as the person's own doing. Flags are never touched.
pub(super) fn claim_in(
    conn: &mut DbConnection,
    user: &User,
    link: &KakaoLink,
) -> Result<(), DbError> {
    insert_link(conn, user, link, db::now())?;
    audit::record(
        conn,
        &Actor::KakaoSignIn,
        user,
        AuditAction::Link,
        &[kakao_id_change(link.kakao_id)],
    )?;
    Ok(())
}

/// Book-keeping of a sign-in, not a change anyone made (so no audit row): the time, and the
/// Kakao profile as last seen.
pub(super) fn note_sign_in_in(
    conn: &mut DbConnection,
    user_id: i64,
    kakao: Option<(i64, &str)>,
) -> Result<User, DbError> {
    let now = db::now();
    if let Some((social_id, profile_json)) = kakao {
        repo::touch_social(conn, social_id, profile_json, now)?;
    }
    Ok(repo::update_user(
        conn,
        user_id,
        &UserChanges {
            last_login: Some(Some(now)),
            ..UserChanges::default()
        },
    )?)
}

/// `note_sign_in_in` in a transaction of its own (the break-glass sign-in).
pub fn note_sign_in(conn: &mut DbConnection, user_id: i64) -> Result<User, DbError> {
    db::transaction_with_retry(conn, DbError::is_busy, |conn| {
        note_sign_in_in(conn, user_id, None)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(field: &'static str, old: &str, new: &str) -> FieldChange {
        FieldChange {
            field,
            old: old.into(),
            new: new.into(),
        }
    }

    #[test]
    fn the_action_is_named_by_what_changed() {
        assert_eq!(
            update_action(&[change("is_active", "false", "true")]),
            AuditAction::Activate
        );
        assert_eq!(
            update_action(&[change("is_active", "true", "false")]),
            AuditAction::Deactivate
        );
        assert_eq!(
            update_action(&[
                change("is_active", "true", "false"),
                change("name", "a", "b")
            ]),
            AuditAction::Update
        );
    }

    #[test]
    fn patches_list_the_fields_they_touch() {
        let patch = UserPatch {
            name: Some(None),
            is_staff: Some(true),
            ..UserPatch::default()
        };
        assert_eq!(patch.fields(), vec![UserField::Name, UserField::IsStaff]);
        assert_eq!(UserPatch::active(false).fields(), vec![UserField::IsActive]);
        assert_eq!(BulkAction::parse("sign_out"), Some(BulkAction::SignOut));
        assert_eq!(BulkAction::parse("drop"), None);
    }
}
