//! User rules that span queries: Kakao sign-in (find, link or create, in one transaction),
//! profile edits, and server-side session records.

use chrono::{NaiveDateTime, TimeDelta};

use super::manager::{CreateUser, FieldErrors, UserError, UserManager};
use super::model::{NewSocialAccount, Provider, User, UserChanges};
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
    #[error("the Kakao email cannot be used: {0}")]
    InvalidEmail(FieldErrors),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for SignInError {
    fn from(e: diesel::result::Error) -> Self {
        SignInError::Db(DbError::Query(e))
    }
}

/// How a sign-in ended, for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInKind {
    Returning,
    Linked,
    Created,
}

/// Sign a Kakao identity in by the identity rules: by Kakao id; else claim an unlinked user
/// with the same email; else create the user. Login never changes staff or superuser flags.
///
/// Concurrent first sign-ins of one person race on the unique constraints; the loser's
/// transaction fails, and the retry finds the winner's rows.
pub fn sign_in_with_kakao(
    conn: &mut DbConnection,
    identity: &KakaoIdentity,
) -> Result<(User, SignInKind), SignInError> {
    db::transaction_with_retry(
        conn,
        |e| matches!(e, SignInError::Db(DbError::Query(q)) if db::is_unique_violation(q) || db::is_retryable(q)),
        |conn| sign_in_once(conn, identity),
    )
}

fn sign_in_once(
    conn: &mut DbConnection,
    identity: &KakaoIdentity,
) -> Result<(User, SignInKind), SignInError> {
    let kakao = Provider::Kakao.as_str();
    let now = db::now();
    if let Some(social) = repo::find_social(conn, kakao, identity.kakao_id)? {
        let user = repo::find_user(conn, social.user_id)?.ok_or(diesel::result::Error::NotFound)?;
        if !user.is_active {
            return Err(SignInError::Inactive);
        }
        repo::touch_social(conn, social.id, &identity.profile_json, now)?;
        let user = mark_login(conn, user.id, now)?;
        return Ok((user, SignInKind::Returning));
    }
    if let Some(existing) = repo::find_user_by_email(conn, &identity.email)? {
        if let Some(social) = repo::find_social_for_user(conn, existing.id, kakao)? {
            if social.uid != identity.kakao_id {
                return Err(SignInError::EmailLinkedElsewhere);
            }
            // The same person, linked by a concurrent first login that committed between our
            // reads (PostgreSQL's READ COMMITTED gives each statement a fresh snapshot).
            if !existing.is_active {
                return Err(SignInError::Inactive);
            }
            repo::touch_social(conn, social.id, &identity.profile_json, now)?;
            let user = mark_login(conn, existing.id, now)?;
            return Ok((user, SignInKind::Returning));
        }
        if !existing.is_active {
            return Err(SignInError::Inactive);
        }
        link(conn, existing.id, identity, now)?;
        let user = mark_login(conn, existing.id, now)?;
        return Ok((user, SignInKind::Linked));
    }
    let created = UserManager::create_user(
        conn,
        &CreateUser {
            email: identity.email.clone(),
            name: identity.nickname.as_deref().and_then(name_from_nickname),
            provider: kakao.to_owned(),
            ..CreateUser::default()
        },
    );
    let user = match created {
        Ok(user) => user,
        Err(UserError::Invalid(errors)) => return Err(SignInError::InvalidEmail(errors)),
        // Someone else created this email just now: fail the transaction so the retry re-reads.
        Err(UserError::DuplicateEmail) => {
            return Err(SignInError::Db(DbError::Query(
                diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    Box::new("users_email_key".to_owned()),
                ),
            )));
        }
        Err(UserError::Db(e)) => return Err(SignInError::Db(e)),
    };
    link(conn, user.id, identity, now)?;
    let user = mark_login(conn, user.id, now)?;
    Ok((user, SignInKind::Created))
}

/// A Kakao nickname made into a valid name: control characters dropped, cut to the limit.
/// A nickname is never a reason to refuse a sign-in.
fn name_from_nickname(nickname: &str) -> Option<String> {
    let cleaned: String = nickname
        .chars()
        .filter(|c| !c.is_control())
        .take(super::manager::NAME_MAX)
        .collect();
    UserManager::normalize_name(Some(&cleaned))
}

fn link(
    conn: &mut DbConnection,
    user_id: i64,
    identity: &KakaoIdentity,
    now: NaiveDateTime,
) -> Result<(), SignInError> {
    repo::insert_social(
        conn,
        &NewSocialAccount {
            user_id,
            provider: Provider::Kakao.as_str().to_owned(),
            uid: identity.kakao_id,
            extra_data: identity.profile_json.clone(),
            connected_at: now,
            last_login: now,
        },
    )?;
    Ok(())
}

fn mark_login(conn: &mut DbConnection, user_id: i64, now: NaiveDateTime) -> QueryUser {
    repo::update_user(
        conn,
        user_id,
        &UserChanges {
            last_login: Some(Some(now)),
            ..UserChanges::default()
        },
    )
}

type QueryUser = diesel::QueryResult<User>;

/// A person's own profile edit: name and age.
#[derive(Debug, Clone, Default)]
pub struct ProfileEdit {
    pub name: Option<String>,
    pub age: Option<i32>,
}

/// Parse the profile form's raw strings into an edit, with field errors for bad input.
pub fn parse_profile_form(name: &str, age: &str) -> Result<ProfileEdit, FieldErrors> {
    let mut errors = FieldErrors::default();
    let name = UserManager::normalize_name(Some(name));
    if let Some(p) = name.as_deref().and_then(UserManager::name_problem) {
        errors.add("name", p);
    }
    let age_text = age.trim();
    let age = if age_text.is_empty() {
        None
    } else {
        match age_text.parse::<i32>() {
            Ok(n) => {
                if let Some(p) = UserManager::age_problem(n) {
                    errors.add("age", p);
                }
                Some(n)
            }
            Err(_) => {
                errors.add("age", "나이는 숫자로 입력하세요.");
                None
            }
        }
    };
    if errors.is_empty() {
        Ok(ProfileEdit { name, age })
    } else {
        Err(errors)
    }
}

/// Save a person's own name and age.
pub fn update_profile(
    conn: &mut DbConnection,
    user_id: i64,
    edit: &ProfileEdit,
) -> diesel::QueryResult<User> {
    repo::update_user(
        conn,
        user_id,
        &UserChanges {
            name: Some(edit.name.clone()),
            age: Some(edit.age),
            ..UserChanges::default()
        },
    )
}

/// Start a server-side session for a user; returns the token to keep in the session cookie.
pub fn start_session(
    conn: &mut DbConnection,
    user_id: i64,
    lifetime: TimeDelta,
) -> diesel::QueryResult<String> {
    let token = crate::auth::random_token();
    let now = db::now();
    repo::delete_expired_sessions(conn, user_id, now)?;
    repo::insert_session(
        conn,
        &crate::auth::hash_token(&token),
        user_id,
        now,
        now + lifetime,
    )?;
    Ok(token)
}

/// The active user behind a session token, if the session is live and the user active.
pub fn user_for_session(conn: &mut DbConnection, token: &str) -> diesel::QueryResult<Option<User>> {
    Ok(
        repo::session_user(conn, &crate::auth::hash_token(token), db::now())?
            .filter(|u| u.is_active),
    )
}

/// End one session (sign-out).
pub fn end_session(conn: &mut DbConnection, token: &str) -> diesel::QueryResult<usize> {
    repo::delete_session(conn, &crate::auth::hash_token(token))
}

/// Create a superuser from the command line (migrations already applied).
pub fn create_superuser_cli(
    conn: &mut DbConnection,
    email: &str,
    name: Option<&str>,
) -> Result<User, UserError> {
    UserManager::create_superuser(
        conn,
        &CreateUser {
            email: email.to_owned(),
            name: name.map(str::to_owned),
            provider: Provider::Local.as_str().to_owned(),
            ..CreateUser::default()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nicknames_become_valid_names() {
        assert_eq!(name_from_nickname("홍길동"), Some("홍길동".to_owned()));
        assert_eq!(name_from_nickname("a\u{0}b"), Some("ab".to_owned()));
        assert_eq!(name_from_nickname("   "), None);
        assert_eq!(
            name_from_nickname(&"가".repeat(80)).map(|s| s.chars().count()),
            Some(50)
        );
    }

    #[test]
    fn profile_form_parsing_reports_each_field() {
        let ok = parse_profile_form(" 길동 ", " 30 ").expect("valid");
        assert_eq!(ok.name.as_deref(), Some("길동"));
        assert_eq!(ok.age, Some(30));
        let cleared = parse_profile_form("", "").expect("valid");
        assert_eq!(cleared.name, None);
        assert_eq!(cleared.age, None);
        let err = parse_profile_form(&"x".repeat(51), "abc").expect_err("invalid");
        assert_eq!(err.get("name").len(), 1);
        assert_eq!(err.get("age"), ["나이는 숫자로 입력하세요."]);
        let err = parse_profile_form("ok", "151").expect_err("invalid");
        assert!(err.get("age")[0].contains("150"));
    }
}
