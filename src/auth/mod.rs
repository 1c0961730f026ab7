//! Who is signed in: the typed session, CSRF tokens, the session store (cookie or Redis), and
//! the extractors handlers use to require a signed-in user.

pub mod bearer;
pub mod extractors;
pub mod ratelimit;
pub mod session;
pub mod store;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

pub use extractors::{CurrentUser, MaybeUser, StaffUser};
pub use session::{AppSession, PendingLogin};

/// 256 random bits, base64url: session tokens and CSRF tokens.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of a token, hex: what the database keeps instead of the token itself.
pub fn hash_token(token: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(token.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

/// Compare secrets without leaking where they differ through timing.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

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

    #[test]
    fn tokens_are_random_and_hashes_stable() {
        let a = random_token();
        let b = random_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(hash_token("x"), hash_token("x"));
        assert_eq!(
            hash_token("x"),
            "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"
        );
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "abcd"));
    }
}
