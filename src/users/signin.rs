//! The identity rules of a Kakao sign-in, in one transaction: the user by Kakao id; else claim
//! an unlinked user with the same verified email; else create the user. Every write goes
//! through the change service (`changes`): a sign-up and a claim each write their audit row,
//! a returning person's sign-in is book-keeping only. Login never changes staff or superuser
//! flags, and an inactive user cannot sign in.

use super::changes::{self, KakaoLink};
use super::manager::{CreateUser, FieldErrors, UserManager};
use super::model::{Provider, User};
use super::repo;
use crate::db::{self, DbConnection, DbError};

/// A Kakao identity whose email has been checked (consented, verified and valid).
#[derive(Debug, Clone)]
pub struct KakaoIdentity {
    /// Kakao's 64-bit user id: the identity key.
    pub kakao_id: i64,
    /// Normalized email, trusted.
    pub email: String,
    pub nickname: Option<String>,
    /// The Kakao profile as received, kept as the social account's last profile data.
    pub profile_json: String,
}

/// Why a Kakao sign-in was refused.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// The email belongs to a user already linked to a different Kakao account.
    #[error("email already linked to another Kakao account")]
    EmailLinkedElsewhere,
    #[error("account is deactivated")]
    Inactive,
    /// Kakao says the Kakao account is disabled (until it says it is enabled again).
    #[error("the Kakao account is disabled at Kakao")]
    KakaoDisabled,
    #[error("the Kakao email cannot be used: {0}")]
    InvalidEmail(FieldErrors),
    #[error(transparent)]
    Db(DbError),
}

impl From<DbError> for SignInError {
    fn from(e: DbError) -> Self {
        SignInError::Db(e)
    }
}

impl db::DbFailure for SignInError {
    fn db_unavailable(&self) -> bool {
        matches!(self, SignInError::Db(e) if e.is_unavailable())
    }
    fn db_busy(&self) -> bool {
        matches!(self, SignInError::Db(e) if e.is_busy())
    }
}

impl From<diesel::result::Error> for SignInError {
    fn from(e: diesel::result::Error) -> Self {
        SignInError::Db(DbError::from(e))
    }
}

/// How a sign-in ended, for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInKind {
    /// A person already linked.
    Returning,
    /// A pre-provisioned account claimed by its verified email.
    Claimed,
    /// A new member.
    Created,
}

impl SignInKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SignInKind::Returning => "returning",
            SignInKind::Claimed => "claimed",
            SignInKind::Created => "created",
        }
    }
}

/// Sign a Kakao identity in by the identity rules.
///
/// Concurrent first sign-ins of one person race on the unique constraints; the loser's
/// transaction fails, and the retry finds the winner's rows.
pub fn sign_in_with_kakao(
    conn: &mut DbConnection,
    identity: &KakaoIdentity,
) -> Result<(User, SignInKind), SignInError> {
    db::transaction_with_retry(
        conn,
        |e| matches!(e, SignInError::Db(DbError::Unique(_) | DbError::Busy(_))),
        |conn| sign_in_once(conn, identity),
    )
}

fn sign_in_once(
    conn: &mut DbConnection,
    identity: &KakaoIdentity,
) -> Result<(User, SignInKind), SignInError> {
    let link = KakaoLink {
        kakao_id: identity.kakao_id,
        profile_json: &identity.profile_json,
    };
    let kakao = Provider::Kakao.as_str();
    if let Some(social) = repo::find_social(conn, kakao, identity.kakao_id)? {
        let user =
            repo::find_user(conn, social.user_id)?.ok_or(SignInError::Db(DbError::NotFound))?;
        if social.disabled_at.is_some() {
            return Err(SignInError::KakaoDisabled);
        }
        return returning(conn, &user, social.id, identity);
    }
    if let Some(existing) = repo::find_user_by_email(conn, &identity.email)? {
        if let Some(social) = repo::find_social_for_user(conn, existing.id, kakao)? {
            if social.uid != identity.kakao_id {
                return Err(SignInError::EmailLinkedElsewhere);
            }
            // The same person, linked by a concurrent first login that committed between our
            // reads (PostgreSQL's READ COMMITTED gives each statement a fresh snapshot).
            if social.disabled_at.is_some() {
                return Err(SignInError::KakaoDisabled);
            }
            return returning(conn, &existing, social.id, identity);
        }
        if !existing.is_active {
            return Err(SignInError::Inactive);
        }
        changes::claim_in(conn, &existing, &link)?;
        let user = changes::note_sign_in_in(conn, existing.id, None)?;
        return Ok((user, SignInKind::Claimed));
    }
    let new = UserManager::create_user(&CreateUser {
        email: identity.email.clone(),
        name: identity.nickname.as_deref().and_then(name_from_nickname),
        provider: kakao.to_owned(),
        ..CreateUser::default()
    })
    .map_err(SignInError::InvalidEmail)?;
    let user = changes::sign_up_in(conn, new, &link)?;
    Ok((user, SignInKind::Created))
}

fn returning(
    conn: &mut DbConnection,
    user: &User,
    social_id: i64,
    identity: &KakaoIdentity,
) -> Result<(User, SignInKind), SignInError> {
    if !user.is_active {
        return Err(SignInError::Inactive);
    }
    let user = changes::note_sign_in_in(
        conn,
        user.id,
        Some((social_id, identity.profile_json.as_str())),
    )?;
    Ok((user, SignInKind::Returning))
}

/// A Kakao nickname made into a valid name: control and invisible format characters dropped,
/// normalized, cut to the limit. A nickname is never a reason to refuse a sign-in.
fn name_from_nickname(nickname: &str) -> Option<String> {
    let cleaned: String = UserManager::normalize_name(Some(nickname))?
        .chars()
        .filter(|c| !c.is_control() && !super::manager::is_invisible_format(*c))
        .take(super::manager::NAME_MAX)
        .collect();
    UserManager::normalize_name(Some(&cleaned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nicknames_become_valid_names() {
        assert_eq!(name_from_nickname("홍길동"), Some("홍길동".to_owned()));
        assert_eq!(name_from_nickname("a\u{0}b"), Some("ab".to_owned()));
        assert_eq!(
            name_from_nickname("길\u{200B}동\u{202E}"),
            Some("길동".to_owned())
        );
        assert_eq!(name_from_nickname("   "), None);
        assert_eq!(
            name_from_nickname(&"가".repeat(80)).map(|s| s.chars().count()),
            Some(50)
        );
    }
}
