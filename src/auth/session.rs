//! The typed session: the server-side session token of a signed-in person, the CSRF token, and
//! the logins in progress (state, PKCE verifier, where to go after). No Kakao tokens are kept.

use actix_session::Session;
use serde::{Deserialize, Serialize};

use crate::token::{constant_time_eq, random_token};

const SID: &str = "sid";
const CSRF: &str = "csrf";
const LOGINS: &str = "logins";
const KAKAO_LOGOUT: &str = "kakao_logout";

/// At most this many logins in progress are kept (several tabs); older ones are dropped so the
/// cookie stays small.
pub const MAX_PENDING_LOGINS: usize = 4;

/// A started Kakao login, waiting for the callback.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PendingLogin {
    pub state: String,
    pub verifier: String,
    /// The OpenID Connect nonce sent with the authorize request (OIDC on).
    #[serde(default)]
    pub nonce: Option<String>,
    pub next: Option<String>,
    /// Unix seconds when it started.
    pub created: i64,
}

/// A Kakao Account logout this browser was sent to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct PendingLogout {
    state: String,
    created: i64,
}

/// Typed access to the session.
pub struct AppSession(pub Session);

impl AppSession {
    /// The server-side session token, when signed in.
    pub fn token(&self) -> Option<String> {
        self.0.get::<String>(SID).ok().flatten()
    }

    /// Sign in: a new session id (fixation defence), the session token, a new CSRF token,
    /// and no logins left in progress.
    pub fn sign_in(&self, token: &str) -> Result<(), actix_session::SessionInsertError> {
        self.0.renew();
        self.0.remove(LOGINS);
        self.0.remove(KAKAO_LOGOUT);
        self.0.insert(SID, token)?;
        self.0.insert(CSRF, random_token())?;
        Ok(())
    }

    /// Forget everything and expire the cookie.
    pub fn sign_out(&self) {
        self.0.purge();
    }

    /// Sign out, keeping only the state of the Kakao Account logout this browser is sent to
    /// (a new session id; the signed-in session is gone).
    pub fn sign_out_expecting_kakao_logout(
        &self,
        state: &str,
    ) -> Result<(), actix_session::SessionInsertError> {
        self.0.clear();
        self.0.renew();
        self.0.insert(
            KAKAO_LOGOUT,
            PendingLogout {
                state: state.to_owned(),
                created: chrono::Utc::now().timestamp(),
            },
        )
    }

    /// Take the pending Kakao Account logout if `state` is its state, returning when it
    /// started (Unix seconds). Another state leaves it in place.
    pub fn take_kakao_logout(&self, state: &str) -> Option<i64> {
        let pending = self
            .0
            .get::<PendingLogout>(KAKAO_LOGOUT)
            .ok()
            .flatten()
            .filter(|p| constant_time_eq(&p.state, state))?;
        self.0.remove(KAKAO_LOGOUT);
        Some(pending.created)
    }

    /// The CSRF token for forms, made on first use.
    pub fn csrf_token(&self) -> String {
        if let Ok(Some(token)) = self.0.get::<String>(CSRF) {
            return token;
        }
        let token = random_token();
        // A failed insert only means the next form gets another token.
        let _ = self.0.insert(CSRF, &token);
        token
    }

    /// Whether a submitted CSRF token is this session's.
    pub fn csrf_matches(&self, submitted: &str) -> bool {
        match self.0.get::<String>(CSRF) {
            Ok(Some(token)) => !submitted.is_empty() && constant_time_eq(&token, submitted),
            _ => false,
        }
    }

    pub fn pending_logins(&self) -> Vec<PendingLogin> {
        self.0
            .get::<Vec<PendingLogin>>(LOGINS)
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    /// Remember a started login (the newest few only).
    pub fn push_login(&self, login: PendingLogin) -> Result<(), actix_session::SessionInsertError> {
        let mut logins = self.pending_logins();
        logins.push(login);
        let excess = logins.len().saturating_sub(MAX_PENDING_LOGINS);
        logins.drain(..excess);
        self.0.insert(LOGINS, logins)
    }

    /// Take the login whose state matches, removing it from the session.
    pub fn take_login(&self, state: &str) -> Option<PendingLogin> {
        let mut logins = self.pending_logins();
        let index = logins
            .iter()
            .position(|l| constant_time_eq(&l.state, state))?;
        let login = logins.remove(index);
        if logins.is_empty() {
            self.0.remove(LOGINS);
        } else {
            let _ = self.0.insert(LOGINS, logins);
        }
        Some(login)
    }

    /// Forget a revoked or expired sign-in.
    pub fn forget_sign_in(&self) {
        self.0.remove(SID);
    }
}
