//! Reads for the doors, by the policy: one user as an actor may see them, and what the admin's
//! detail page shows about a user. (The user list is `query`; the dashboard's numbers `stats`.)

use super::audit::{self, AuditEntry, AuditFilter};
use super::model::{Provider, SocialAccount, User};
use super::permissions::Actor;
use super::repo;
use crate::db::{DbConnection, DbError};

/// User `id`, if `actor` may see them; others' records are not even confirmed to exist.
pub fn visible_user(conn: &mut DbConnection, actor: &Actor, id: i64) -> Result<User, DbError> {
    if !actor.may_view(id) {
        return Err(DbError::NotFound);
    }
    repo::find_user(conn, id)?.ok_or(DbError::NotFound)
}

/// The Kakao id user `id` is linked to, if any.
pub fn kakao_id_of(conn: &mut DbConnection, id: i64) -> Result<Option<i64>, DbError> {
    Ok(repo::find_social_for_user(conn, id, Provider::Kakao.as_str())?.map(|s| s.uid))
}

/// A user with their Kakao link and their latest history.
#[derive(Debug, Clone)]
pub struct UserDetail {
    pub user: User,
    pub kakao: Option<SocialAccount>,
    pub history: Vec<AuditEntry>,
}

/// Entries of a user's history shown beside their record.
const HISTORY_SHOWN: i64 = 50;

/// Everything the admin shows about user `id`, if `actor` may see them.
pub fn user_detail(conn: &mut DbConnection, actor: &Actor, id: i64) -> Result<UserDetail, DbError> {
    let user = visible_user(conn, actor, id)?;
    let kakao = repo::find_social_for_user(conn, id, Provider::Kakao.as_str())?;
    let history = audit::list(
        conn,
        &AuditFilter {
            target_id: Some(id),
            ..AuditFilter::default()
        },
        None,
        HISTORY_SHOWN,
    )?
    .entries;
    Ok(UserDetail {
        user,
        kakao,
        history,
    })
}
