//! Kakao access tokens as API credentials: validated with Kakao's token-info endpoint,
//! positive answers cached briefly by the token's SHA-256, and the person behind them found.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::db::{self, DbError, DbPool};
use crate::kakao::{ErrorClass, KakaoClient, KakaoError};
use crate::users::model::User;
use crate::users::repo;

/// Longest a positive validation is trusted without asking Kakao again.
pub const CACHE_TTL: Duration = Duration::from_secs(60);
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
    #[error(transparent)]
    Db(#[from] DbError),
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

/// Validated tokens -> (Kakao user id, until when), keyed by SHA-256 of the token.
#[derive(Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<String, (i64, Instant)>>,
}

impl TokenCache {
    fn get(&self, key: &str) -> Option<i64> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(id, _)| *id)
    }

    fn put(&self, key: String, kakao_id: i64, ttl: Duration) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= CACHE_MAX {
            let now = Instant::now();
            entries.retain(|_, (_, until)| *until > now);
            if entries.len() >= CACHE_MAX {
                entries.clear();
            }
        }
        entries.insert(key, (kakao_id, Instant::now() + ttl));
    }
}

/// The Kakao user id a token belongs to, if Kakao confirms it for our app.
pub async fn validate(
    kakao: &KakaoClient,
    cache: &TokenCache,
    token: &str,
) -> Result<i64, TokenError> {
    if token.is_empty() || token.len() > 1024 || !token.chars().all(|c| c.is_ascii_graphic()) {
        return Err(TokenError::Malformed);
    }
    let key = crate::token::hash_token(token);
    if let Some(id) = cache.get(&key) {
        return Ok(id);
    }
    let info = kakao.access_token_info(token).await?;
    if let Some(app_id) = kakao.config().app_id
        && info.app_id != app_id
    {
        log::warn!(
            "event=auth.bearer.rejected reason=app_id_mismatch app_id={}",
            info.app_id
        );
        return Err(TokenError::OtherApp);
    }
    if info.expires_in > 0 {
        let ttl = CACHE_TTL.min(Duration::from_secs(info.expires_in.unsigned_abs()));
        cache.put(key, info.id, ttl);
    }
    Ok(info.id)
}

/// The active user an `Authorization` header's bearer token belongs to (the scheme name is
/// case-insensitive, RFC 9110 11.1).
pub async fn authenticate(
    pool: &DbPool,
    kakao: &KakaoClient,
    cache: &TokenCache,
    authorization: &str,
) -> Result<User, TokenError> {
    let token = match authorization.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => return Err(TokenError::Invalid),
    };
    let kakao_id = validate(kakao, cache, token).await?;
    let user = db::run(pool, move |conn| {
        repo::find_user_by_kakao_id(conn, kakao_id).map_err(DbError::from)
    })
    .await?
    .ok_or(TokenError::NotRegistered)?;
    if !user.is_active {
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
        cache.put("a".into(), 7, Duration::from_secs(60));
        cache.put("b".into(), 8, Duration::ZERO);
        assert_eq!(cache.get("a"), Some(7));
        assert_eq!(cache.get("b"), None);
        assert_eq!(cache.get("c"), None);
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
