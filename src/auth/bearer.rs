//! Kakao access tokens as API credentials: validated with Kakao's token-info endpoint,
//! positive answers cached briefly by the token's SHA-256, and the person behind them found.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::ratelimit::{Limiter, Refused};
use crate::db::{self, DbConnection, DbError};
use crate::kakao::{ErrorClass, KakaoClient, KakaoError};
use crate::state::AppState;
use crate::users::model::User;
use crate::users::repo;

/// Longest a positive validation is trusted without asking Kakao again.
pub const CACHE_TTL: Duration = Duration::from_secs(60);
/// How long a token Kakao refused is refused here without asking again (a burst of junk
/// tokens costs one Kakao call each at most once).
pub const REFUSED_TTL: Duration = Duration::from_secs(30);
/// Entries kept at most; beyond this, expired ones are dropped, then the cache is cleared.
const CACHE_MAX: usize = 10_000;

/// Why a token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Kakao is temporarily unable to answer: the token is not judged, try again.
    #[error("Kakao is temporarily unavailable")]
    Temporary,
    /// Kakao says the token (or the request) is malformed (-2).
    #[error("malformed access token")]
    Malformed,
    /// Invalid or expired (-401), or refused for another reason.
    #[error("invalid access token")]
    Invalid,
    /// A valid token, but issued to another Kakao app.
    #[error("token issued to another app")]
    OtherApp,
    /// A valid token of a Kakao user who has no account here.
    #[error("no account for this Kakao user")]
    NotRegistered,
    /// A valid token of a deactivated account.
    #[error("account inactive")]
    Inactive,
    /// This client checked too many tokens with Kakao lately.
    #[error(transparent)]
    Limited(#[from] Refused),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl db::DbFailure for TokenError {
    fn db_unavailable(&self) -> bool {
        matches!(self, TokenError::Db(e) if e.is_unavailable())
    }
    fn db_busy(&self) -> bool {
        matches!(self, TokenError::Db(e) if e.is_busy())
    }
}

impl From<KakaoError> for TokenError {
    fn from(e: KakaoError) -> Self {
        match e.class() {
            ErrorClass::Temporary => TokenError::Temporary,
            ErrorClass::Malformed => TokenError::Malformed,
            ErrorClass::InvalidToken | ErrorClass::Other => TokenError::Invalid,
        }
    }
}

/// What is remembered about a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// Kakao confirmed it for this Kakao user.
    Valid(i64),
    Malformed,
    Invalid,
    OtherApp,
}

/// Tokens recently judged by Kakao -> (verdict, until when), keyed by SHA-256 of the token.
#[derive(Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<String, (Verdict, Instant)>>,
}

impl TokenCache {
    fn get(&self, key: &str) -> Option<Verdict> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(verdict, _)| *verdict)
    }

    fn put(&self, key: String, verdict: Verdict, ttl: Duration) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= CACHE_MAX {
            // Full: drop what has expired, then refusals (junk from anyone), and only then
            // confirmed tokens, so a flood of junk cannot send every real token back to Kakao.
            let now = Instant::now();
            entries.retain(|_, (_, until)| *until > now);
            if entries.len() >= CACHE_MAX {
                entries.retain(|_, (verdict, _)| matches!(verdict, Verdict::Valid(_)));
            }
            if entries.len() >= CACHE_MAX {
                entries.clear();
            }
        }
        entries.insert(key, (verdict, Instant::now() + ttl));
    }
}

impl Verdict {
    fn into_result(self) -> Result<i64, TokenError> {
        match self {
            Verdict::Valid(id) => Ok(id),
            Verdict::Malformed => Err(TokenError::Malformed),
            Verdict::Invalid => Err(TokenError::Invalid),
            Verdict::OtherApp => Err(TokenError::OtherApp),
        }
    }
}

/// The Kakao user id a token belongs to, if Kakao confirms it for our app. A token neither
/// confirmed nor refused lately costs a call to Kakao, which `checks` limits per `client`.
pub async fn validate(
    kakao: &KakaoClient,
    cache: &TokenCache,
    checks: &Limiter,
    client: &str,
    token: &str,
) -> Result<i64, TokenError> {
    if token.is_empty() || token.len() > 1024 || !token.chars().all(|c| c.is_ascii_graphic()) {
        return Err(TokenError::Malformed);
    }
    let key = crate::token::hash_token(token);
    if let Some(verdict) = cache.get(&key) {
        return verdict.into_result();
    }
    checks.acquire(client).await?;
    let verdict = match kakao.access_token_info(token).await {
        Ok(info)
            if kakao
                .config()
                .app_id
                .is_some_and(|ours| info.app_id != ours) =>
        {
            log::warn!(
                "event=auth.bearer.rejected reason=app_id_mismatch app_id={}",
                info.app_id
            );
            Verdict::OtherApp
        }
        // A token that expires now (or already did) is not one to accept.
        Ok(info) if info.expires_in <= 0 => Verdict::Invalid,
        Ok(info) => {
            let ttl = CACHE_TTL.min(Duration::from_secs(info.expires_in.unsigned_abs()));
            cache.put(key, Verdict::Valid(info.id), ttl);
            return Ok(info.id);
        }
        Err(e) => match TokenError::from(e) {
            // Not judged: nothing to remember.
            TokenError::Temporary => return Err(TokenError::Temporary),
            TokenError::Malformed => Verdict::Malformed,
            _ => Verdict::Invalid,
        },
    };
    cache.put(key, verdict, REFUSED_TTL);
    verdict.into_result()
}

/// The Kakao user an `Authorization` header's bearer token belongs to, as Kakao (or the
/// token cache) says (the scheme name is case-insensitive, RFC 9110 11.1). Their account here
/// is looked up with [`user_for`], on the request's one trip to the database.
pub async fn kakao_id_for(
    state: &AppState,
    kakao: &KakaoClient,
    client: &str,
    authorization: &str,
) -> Result<i64, TokenError> {
    let token = match authorization.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => return Err(TokenError::Invalid),
    };
    let checks = &state.limits.token_check;
    validate(kakao, &state.token_cache, checks, client, token).await
}

/// The active account of Kakao user `kakao_id`, whose bearer token was valid.
pub fn user_for(conn: &mut DbConnection, kakao_id: i64) -> Result<User, TokenError> {
    let found = repo::find_user_by_kakao_id(conn, kakao_id).map_err(DbError::from)?;
    let (user, kakao_disabled) = found.ok_or(TokenError::NotRegistered)?;
    // A Kakao account Kakao disabled counts as inactive here until Kakao enables it again.
    if !user.is_active || kakao_disabled {
        return Err(TokenError::Inactive);
    }
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_entries_expire() {
        let cache = TokenCache::default();
        cache.put("a".into(), Verdict::Valid(7), Duration::from_secs(60));
        cache.put("b".into(), Verdict::Valid(8), Duration::ZERO);
        cache.put("c".into(), Verdict::Invalid, Duration::from_secs(60));
        assert_eq!(cache.get("a"), Some(Verdict::Valid(7)));
        assert_eq!(cache.get("b"), None);
        assert!(matches!(
            cache.get("c").map(Verdict::into_result),
            Some(Err(TokenError::Invalid))
        ));
        assert_eq!(cache.get("d"), None);
    }

    #[test]
    fn a_flood_of_refused_tokens_does_not_push_out_confirmed_ones() {
        let cache = TokenCache::default();
        cache.put("real".into(), Verdict::Valid(7), Duration::from_secs(60));
        for i in 0..CACHE_MAX + 10 {
            cache.put(
                format!("junk{i}"),
                Verdict::Invalid,
                Duration::from_secs(30),
            );
        }
        assert_eq!(cache.get("real"), Some(Verdict::Valid(7)));
        assert!(cache.entries.lock().map(|e| e.len()).unwrap_or(0) <= CACHE_MAX);
    }

    #[test]
    fn kakao_codes_decide_the_outcome() {
        let api = |code| KakaoError::Api { status: 400, code };
        assert!(matches!(TokenError::from(api(-1)), TokenError::Temporary));
        assert!(matches!(TokenError::from(api(-2)), TokenError::Malformed));
        assert!(matches!(TokenError::from(api(-401)), TokenError::Invalid));
        assert!(matches!(TokenError::from(api(-3)), TokenError::Invalid));
        assert!(matches!(
            TokenError::from(KakaoError::Transport(
                crate::kakao::http::HttpError::Timeout
            )),
            TokenError::Temporary
        ));
    }
}
