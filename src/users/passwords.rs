//! Break-glass passwords: staff may have an argon2-hashed password for signing in at
//! `/admin/login/` while Kakao is unavailable. Set only from the command line.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use diesel::prelude::*;

use super::audit::{self, AuditAction};
use super::manager::UserManager;
use super::model::User;
use super::permissions;
use super::repo;
use crate::db::schema::staff_passwords;
use crate::db::{self, DbConnection, DbError};

/// Shortest password accepted.
pub const PASSWORD_MIN: usize = 12;

/// Why a password could not be set.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the password must be at least {PASSWORD_MIN} characters")]
    TooShort,
    #[error("no user with email {0:?}")]
    NoSuchUser(String),
    #[error("{0} is not staff: only staff may have a break-glass password")]
    NotStaff(String),
    #[error("hashing failed: {0}")]
    Hash(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for PasswordError {
    fn from(e: diesel::result::Error) -> Self {
        PasswordError::Db(DbError::Query(e))
    }
}

/// Hash a password (argon2id, default parameters, random salt) as a PHC string.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash of a random string with the same parameters, verified against when the email is
/// unknown so that an unknown email takes as long as a wrong password.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        hash_password(&crate::auth::random_token()).unwrap_or_else(|_| {
            // Only reachable if argon2 refuses its own defaults; any PHC string still costs a
            // parse, and no password verifies against it.
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g".to_owned()
        })
    })
}

/// Set the break-glass password of the staff member with `email` (recorded in the audit log
/// as done from the command line).
pub fn set_staff_password(
    conn: &mut DbConnection,
    email: &str,
    password: &str,
) -> Result<User, PasswordError> {
    if password.chars().count() < PASSWORD_MIN {
        return Err(PasswordError::TooShort);
    }
    let email = UserManager::normalize_email(email);
    let hash = hash_password(password)?;
    conn.transaction(|conn| {
        let user = repo::find_user_by_email(conn, &email)?
            .ok_or_else(|| PasswordError::NoSuchUser(email.clone()))?;
        if !(user.is_staff || user.is_superuser) {
            return Err(PasswordError::NotStaff(email.clone()));
        }
        // Delete then insert: upserts are not available on the two-backend connection.
        diesel::delete(staff_passwords::table.find(user.id)).execute(conn)?;
        diesel::insert_into(staff_passwords::table)
            .values((
                staff_passwords::user_id.eq(user.id),
                staff_passwords::password_hash.eq(&hash),
                staff_passwords::updated_at.eq(db::now()),
            ))
            .execute(conn)?;
        audit::record(conn, None, &user, AuditAction::SetPassword, &[])?;
        Ok(user)
    })
}

/// The active staff member with this email and password, or `None` for every other case
/// (unknown email, no password set, wrong password, not staff, inactive), all alike and all
/// costing one argon2 verification.
pub fn check_staff_password(
    conn: &mut DbConnection,
    email: &str,
    password: &str,
) -> QueryResult<Option<User>> {
    let email = UserManager::normalize_email(email);
    let found: Option<(User, String)> = match repo::find_user_by_email(conn, &email)? {
        Some(user) => repo::at_most_one::<_, String>(
            staff_passwords::table
                .find(user.id)
                .select(staff_passwords::password_hash),
            conn,
        )?
        .map(|hash| (user, hash)),
        None => None,
    };
    Ok(match found {
        Some((user, hash)) => {
            let ok = verify(password, &hash);
            (ok && permissions::may_use_break_glass(&user)).then_some(user)
        }
        None => {
            let _ = verify(password, dummy_hash());
            None
        }
    })
}

/// Check the password and, for active staff, start a server-side session exactly as a Kakao
/// sign-in does (and note the sign-in time). Returns the user and the session token.
pub fn sign_in_with_password(
    conn: &mut DbConnection,
    email: &str,
    password: &str,
    lifetime: chrono::TimeDelta,
) -> QueryResult<Option<(User, String)>> {
    let Some(user) = check_staff_password(conn, email, password)? else {
        return Ok(None);
    };
    let user = repo::update_user(
        conn,
        user.id,
        &super::model::UserChanges {
            last_login: Some(Some(db::now())),
            ..Default::default()
        },
    )?;
    let token = super::service::start_session(conn, user.id, lifetime)?;
    Ok(Some((user, token)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_their_password() {
        let hash = hash_password("correct horse battery").expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", &hash));
        assert!(!verify("correct horse batterY", &hash));
        assert!(!verify("anything", dummy_hash()));
        assert!(!verify("anything", "not a phc string"));
    }
}
