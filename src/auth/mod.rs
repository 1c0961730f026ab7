//! Who is signed in, and how people sign in and out.
//!
//! - `login`: the use cases: the Kakao web flow, the mobile token sign-in, the break-glass
//!   password, the current user, sign-out.
//! - `records`: the server-side session records and used login states (database).
//! - `session`: the typed cookie session (`AppSession`: session token, CSRF token, logins in
//!   progress); `backend`: where it is stored (signed cookies or Redis).
//! - `bearer`: Kakao access tokens as API credentials.
//! - `ratelimit`: the break-glass sign-in's limits.
//!
//! Depends on `users` (rows and the identity rules); `users` knows nothing of sessions.

pub mod backend;
pub mod bearer;
pub mod login;
pub mod ratelimit;
pub mod records;
pub mod session;

pub use session::{AppSession, PendingLogin};

/// Accept `next` only as a path on this site: one leading `/`, no `//`, no backslash, no
/// scheme, no control characters, and not absurdly long.
pub fn safe_next(next: &str) -> Option<String> {
    let ok = next.len() <= 1024
        && next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(|c| c.is_control() || c.is_whitespace())
        && !next.to_ascii_lowercase().contains("%2f%2f")
        && !next.to_ascii_lowercase().starts_with("/%5c")
        && !next.contains("://");
    ok.then(|| next.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_site_paths_are_accepted() {
        for ok in ["/", "/profile/", "/admin/users/?q=a&page=2", "/a/b#frag"] {
            assert_eq!(safe_next(ok).as_deref(), Some(ok));
        }
    }

    #[test]
    fn open_redirect_attempts_are_refused() {
        let long = format!("/{}", "a".repeat(4096));
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/%2F%2Fevil.example",
            "/%2f%2fevil.example",
            "https:evil.example",
            "javascript:alert(1)",
            "http://app@evil.example",
            "/%5cevil.example",
            "/\r\nLocation: x",
            "/ok\tx",
            "",
            "profile",
            "/redirect?to=https://evil.example",
            long.as_str(),
        ] {
            assert_eq!(safe_next(bad), None, "{bad:?}");
        }
    }
}
