//! The audit log: who changed which user, through which door, how (field by field,
//! old -> new) and when. Rows are only ever inserted, by the change service, in the same
//! transaction as the change they describe.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::changes::FieldChange;
use super::model::User;
use super::permissions::Actor;
use crate::db::schema::audit_log;
use crate::db::{self, DbConnection};

/// What was done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditAction {
    Create,
    Update,
    Activate,
    Deactivate,
    SignOutEverywhere,
    Delete,
    SetPassword,
    /// A Kakao account was linked to an existing record (a pre-provisioned account claimed).
    Link,
    /// Kakao said the link to our app is gone (its webhooks): the link is removed.
    KakaoUnlink,
    /// Kakao said the Kakao account is disabled: sign-in blocked, sessions ended.
    KakaoDisable,
    /// Kakao said the Kakao account is enabled again.
    KakaoEnable,
    /// One signed-in device's session was ended.
    EndSession,
}

impl AuditAction {
    pub const ALL: [AuditAction; 12] = [
        AuditAction::Create,
        AuditAction::Update,
        AuditAction::Activate,
        AuditAction::Deactivate,
        AuditAction::SignOutEverywhere,
        AuditAction::Delete,
        AuditAction::SetPassword,
        AuditAction::Link,
        AuditAction::KakaoUnlink,
        AuditAction::KakaoDisable,
        AuditAction::KakaoEnable,
        AuditAction::EndSession,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Create => "create",
            AuditAction::Update => "update",
            AuditAction::Activate => "activate",
            AuditAction::Deactivate => "deactivate",
            AuditAction::SignOutEverywhere => "sign_out_everywhere",
            AuditAction::Delete => "delete",
            AuditAction::SetPassword => "set_password",
            AuditAction::Link => "link",
            AuditAction::KakaoUnlink => "kakao_unlink",
            AuditAction::KakaoDisable => "kakao_disable",
            AuditAction::KakaoEnable => "kakao_enable",
            AuditAction::EndSession => "end_session",
        }
    }

    pub fn parse(s: &str) -> Option<AuditAction> {
        AuditAction::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// A row of `audit_log`.
#[derive(Queryable, Debug, Clone, PartialEq, Eq)]
#[diesel(table_name = audit_log)]
pub struct AuditEntry {
    pub id: i64,
    pub at: NaiveDateTime,
    /// `None` when the change came from the command line or from Kakao.
    pub actor_id: Option<i64>,
    pub actor_email: String,
    pub target_id: Option<i64>,
    pub target_email: String,
    pub action: String,
    /// JSON list of `{"field","old","new"}`.
    pub changes: String,
    /// The door: `api`, `admin`, `profile`, `kakao_login`, `cli` or `kakao` (see `Actor::via`).
    pub via: String,
}

/// One field change as read back from a row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct StoredChange {
    pub field: String,
    pub old: String,
    pub new: String,
}

impl AuditEntry {
    /// The field changes of this entry (empty when the row's JSON is unreadable).
    pub fn field_changes(&self) -> Vec<StoredChange> {
        serde_json::from_str(&self.changes).unwrap_or_default()
    }
}

#[derive(Insertable)]
#[diesel(table_name = audit_log)]
struct NewAuditEntry<'a> {
    at: NaiveDateTime,
    actor_id: Option<i64>,
    actor_email: &'a str,
    target_id: Option<i64>,
    target_email: &'a str,
    action: &'a str,
    changes: String,
    via: &'a str,
}

/// Write one entry. Only the change service calls it, inside the transaction of the change it
/// records. A person signing in with Kakao is recorded as acting on their own record.
pub(super) fn record(
    conn: &mut DbConnection,
    actor: &Actor,
    target: &User,
    action: AuditAction,
    changes: &[FieldChange],
) -> QueryResult<()> {
    let changes = serde_json::to_string(changes).unwrap_or_else(|_| "[]".to_owned());
    let (actor_id, actor_email) = match actor {
        Actor::User(user, _) => (Some(user.id), user.email.as_str()),
        Actor::KakaoSignIn => (Some(target.id), target.email.as_str()),
        Actor::Cli => (None, "(command line)"),
        Actor::Kakao => (None, "(Kakao)"),
    };
    diesel::insert_into(audit_log::table)
        .values(NewAuditEntry {
            at: db::now(),
            actor_id,
            actor_email,
            target_id: Some(target.id),
            target_email: &target.email,
            action: action.as_str(),
            changes,
            via: actor.via(),
        })
        .execute(conn)?;
    Ok(())
}

/// Which entries to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub actor_id: Option<i64>,
    pub target_id: Option<i64>,
    pub action: Option<AuditAction>,
}

/// A page of entries, newest first, and the id to continue before.
#[derive(Debug, Clone)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub next_before: Option<i64>,
}

/// Newest first, `limit` at a time, older than `before` (keyset by id, so it stays fast as
/// the log grows).
pub fn list(
    conn: &mut DbConnection,
    filter: &AuditFilter,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<AuditPage> {
    let limit = limit.clamp(1, 200);
    let mut query = audit_log::table.into_boxed();
    if let Some(a) = filter.actor_id {
        query = query.filter(audit_log::actor_id.eq(a));
    }
    if let Some(t) = filter.target_id {
        query = query.filter(audit_log::target_id.eq(t));
    }
    if let Some(action) = filter.action {
        query = query.filter(audit_log::action.eq(action.as_str()));
    }
    if let Some(b) = before {
        query = query.filter(audit_log::id.lt(b));
    }
    let mut entries: Vec<AuditEntry> = query
        .order(audit_log::id.desc())
        .limit(limit + 1)
        .load(conn)?;
    let more = entries.len() as i64 > limit;
    entries.truncate(limit as usize);
    let next_before = if more {
        entries.last().map(|e| e.id)
    } else {
        None
    };
    Ok(AuditPage {
        entries,
        next_before,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip_by_name() {
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::parse(a.as_str()), Some(a));
        }
        assert_eq!(AuditAction::parse("drop"), None);
    }
}
