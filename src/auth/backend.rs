//! The session store chosen at start-up: signed and encrypted cookies, or Redis (the cookie
//! then holds only the session's key).
//! `SessionMiddleware` is generic over one store type, so this enum is that one type.

use std::collections::HashMap;

use actix_session::storage::{
    CookieSessionStore, LoadError, RedisSessionStore, SaveError, SessionKey, SessionStore,
    UpdateError,
};
use actix_web::cookie::time::Duration;

/// How long one Redis session operation may take before the request gets a 503 page instead
/// of hanging while Redis is away.
const REDIS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

async fn bounded<T, E>(
    op: impl std::future::Future<Output = Result<T, E>>,
    timed_out: impl FnOnce(anyhow::Error) -> E,
) -> Result<T, E> {
    match actix_web::rt::time::timeout(REDIS_TIMEOUT, op).await {
        Ok(result) => result,
        Err(_) => Err(timed_out(anyhow::anyhow!("Redis did not answer in time"))),
    }
}

/// Cookie sessions by default; Redis when `REDIS_URL` is set.
#[derive(Clone)]
pub enum SessionBackend {
    Cookie,
    Redis(RedisSessionStore),
}

impl SessionBackend {
    /// Connect to Redis when a URL is given (fails at start-up rather than on first request).
    pub async fn connect(redis_url: Option<&str>) -> anyhow::Result<SessionBackend> {
        match redis_url {
            None => Ok(SessionBackend::Cookie),
            Some(url) => {
                let store = RedisSessionStore::builder(url)
                    .cache_keygen(|key| format!("kakao-login:session:{key}"))
                    .build()
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot connect to Redis for sessions: {e}"))?;
                Ok(SessionBackend::Redis(store))
            }
        }
    }
}

impl SessionStore for SessionBackend {
    async fn load(
        &self,
        session_key: &SessionKey,
    ) -> Result<Option<HashMap<String, String>>, LoadError> {
        match self {
            SessionBackend::Cookie => CookieSessionStore::default().load(session_key).await,
            SessionBackend::Redis(store) => {
                bounded(store.load(session_key), LoadError::Other).await
            }
        }
    }

    async fn save(
        &self,
        session_state: HashMap<String, String>,
        ttl: &Duration,
    ) -> Result<SessionKey, SaveError> {
        match self {
            SessionBackend::Cookie => CookieSessionStore::default().save(session_state, ttl).await,
            SessionBackend::Redis(store) => {
                bounded(store.save(session_state, ttl), SaveError::Other).await
            }
        }
    }

    async fn update(
        &self,
        session_key: SessionKey,
        session_state: HashMap<String, String>,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        match self {
            SessionBackend::Cookie => {
                CookieSessionStore::default()
                    .update(session_key, session_state, ttl)
                    .await
            }
            SessionBackend::Redis(store) => {
                bounded(
                    store.update(session_key, session_state, ttl),
                    UpdateError::Other,
                )
                .await
            }
        }
    }

    async fn update_ttl(&self, session_key: &SessionKey, ttl: &Duration) -> anyhow::Result<()> {
        match self {
            SessionBackend::Cookie => {
                CookieSessionStore::default()
                    .update_ttl(session_key, ttl)
                    .await
            }
            SessionBackend::Redis(store) => {
                bounded(store.update_ttl(session_key, ttl), |e| e).await
            }
        }
    }

    async fn delete(&self, session_key: &SessionKey) -> anyhow::Result<()> {
        match self {
            SessionBackend::Cookie => CookieSessionStore::default().delete(session_key).await,
            SessionBackend::Redis(store) => bounded(store.delete(session_key), |e| e).await,
        }
    }
}
