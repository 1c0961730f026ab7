//! Break-glass passwords: staff may have an argon2-hashed password for signing in at
//! `/admin/login/` while Kakao is unavailable. Set only from the command line, through the
//! change service (`changes::set_password`); checked here.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use super::manager::{FieldErrors, UserManager};
use super::model::User;
use super::permissions;
use super::repo;
use crate::db::DbConnection;

/// Shortest password accepted.
pub const PASSWORD_MIN: usize = 12;

/// Hash a password (argon2id, default parameters, random salt) as a PHC string; a password
/// shorter than `PASSWORD_MIN` is refused.
pub fn hash_password(password: &str) -> Result<String, FieldErrors> {
    if password.chars().count() < PASSWORD_MIN {
        return Err(FieldErrors::single(
            "password",
            format!(
                "비밀번호는 {PASSWORD_MIN}자 이상이어야 합니다 (at least {PASSWORD_MIN} characters)."
            ),
        ));
    }
    hash(password)
}

fn hash(password: &str) -> Result<String, FieldErrors> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| FieldErrors::single("password", format!("hashing failed: {e}")))
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
        hash(&crate::token::random_token()).unwrap_or_else(|_| {
            // Only reachable if argon2 refuses its own defaults; any PHC string still costs a
            // parse, and no password verifies against it.
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g".to_owned()
        })
    })
}

/// The user with this email and their break-glass password hash, when both exist (a read:
/// the verification is `check`, done without holding a database connection).
pub fn find_with_hash(
    conn: &mut DbConnection,
    email: &str,
) -> diesel::QueryResult<Option<(User, String)>> {
    let email = UserManager::normalize_email(email);
    Ok(match repo::find_user_by_email(conn, &email)? {
        Some(user) => repo::staff_password_hash(conn, user.id)?.map(|hash| (user, hash)),
        None => None,
    })
}

/// The active staff member whose password this is, or `None` for every other case (unknown
/// email, no password set, wrong password, not staff, inactive), all alike and all costing one
/// argon2 verification. CPU work: run it off the async workers.
pub fn check(found: Option<(User, String)>, password: &str) -> Option<User> {
    match found {
        Some((user, hash)) => {
            let ok = verify(password, &hash);
            (ok && permissions::may_use_break_glass(&user)).then_some(user)
        }
        None => {
            let _ = verify(password, dummy_hash());
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_their_password() {
        assert!(hash_password("short").is_err());
        let hash = hash_password("correct horse battery").expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", &hash));
        assert!(!verify("correct horse batterY", &hash));
        assert!(!verify("anything", dummy_hash()));
        assert!(!verify("anything", "not a phc string"));
    }
}
