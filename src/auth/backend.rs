//! Where the session state is kept, chosen at start-up: signed and encrypted cookies, or Redis
//! (the cookie then holds only the session's key). `SessionMiddleware` is generic over one
//! store type, so this enum is that one type.
//!
//! The Redis store is ours rather than actix-session's `RedisSessionStore`, whose connection
//! cannot be configured: with redis-rs's defaults, sessions stayed down for about 110 s after
//! Redis came back and start-up waited minutes for a missing Redis. Ours runs over
//! `RedisStore` (bounded commands, reconnects every second) and speaks the same commands
//! (`GET`, `SET .. NX EX`, `SET .. XX EX`, `EXPIRE`, `DEL`).

use std::collections::HashMap;

use actix_session::storage::{
    CookieSessionStore, LoadError, SaveError, SessionKey, SessionStore, UpdateError,
    generate_session_key,
};
use actix_web::cookie::time::Duration;

use crate::redis_store::{RedisError, RedisStore};

/// Where Redis keeps a session.
fn redis_key(session_key: &SessionKey) -> String {
    format!("kakao-login:session:{}", session_key.as_ref())
}

/// Cookie sessions by default; Redis when `REDIS_URL` is set.
#[derive(Clone)]
pub enum SessionBackend {
    Cookie,
    Redis(RedisStore),
}

type State = HashMap<String, String>;

impl SessionBackend {
    /// Whether the store can be reached (readiness): cookies always can.
    pub async fn ping(&self) -> Result<(), RedisError> {
        match self {
            SessionBackend::Cookie => Ok(()),
            SessionBackend::Redis(redis) => redis.ping().await,
        }
    }
}

fn seconds(ttl: &Duration) -> i64 {
    ttl.whole_seconds().max(1)
}

impl SessionStore for SessionBackend {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<State>, LoadError> {
        let redis = match self {
            SessionBackend::Cookie => return CookieSessionStore::default().load(session_key).await,
            SessionBackend::Redis(redis) => redis,
        };
        let value: Option<String> = redis
            .query(redis::cmd("GET").arg(redis_key(session_key)))
            .await
            .map_err(|e| LoadError::Other(e.into()))?;
        match value {
            None => Ok(None),
            Some(json) => serde_json::from_str(&json)
                .map(Some)
                .map_err(|e| LoadError::Deserialization(e.into())),
        }
    }

    async fn save(&self, state: State, ttl: &Duration) -> Result<SessionKey, SaveError> {
        let redis = match self {
            SessionBackend::Cookie => return CookieSessionStore::default().save(state, ttl).await,
            SessionBackend::Redis(redis) => redis,
        };
        let body = serde_json::to_string(&state).map_err(|e| SaveError::Serialization(e.into()))?;
        let session_key = generate_session_key();
        let _: redis::Value = redis
            .query(
                redis::cmd("SET")
                    .arg(redis_key(&session_key))
                    .arg(body)
                    .arg("NX")
                    .arg("EX")
                    .arg(seconds(ttl)),
            )
            .await
            .map_err(|e| SaveError::Other(e.into()))?;
        Ok(session_key)
    }

    async fn update(
        &self,
        session_key: SessionKey,
        state: State,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        let redis = match self {
            SessionBackend::Cookie => {
                return CookieSessionStore::default()
                    .update(session_key, state, ttl)
                    .await;
            }
            SessionBackend::Redis(redis) => redis,
        };
        let body =
            serde_json::to_string(&state).map_err(|e| UpdateError::Serialization(e.into()))?;
        let updated: redis::Value = redis
            .query(
                redis::cmd("SET")
                    .arg(redis_key(&session_key))
                    .arg(body)
                    .arg("XX")
                    .arg("EX")
                    .arg(seconds(ttl)),
            )
            .await
            .map_err(|e| UpdateError::Other(e.into()))?;
        match updated {
            // The session expired between load and update: store it afresh under a new key.
            redis::Value::Nil => self.save(state, ttl).await.map_err(|e| match e {
                SaveError::Serialization(e) => UpdateError::Serialization(e),
                SaveError::Other(e) => UpdateError::Other(e),
            }),
            _ => Ok(session_key),
        }
    }

    async fn update_ttl(&self, session_key: &SessionKey, ttl: &Duration) -> anyhow::Result<()> {
        match self {
            SessionBackend::Cookie => {
                CookieSessionStore::default()
                    .update_ttl(session_key, ttl)
                    .await
            }
            SessionBackend::Redis(redis) => {
                let _: redis::Value = redis
                    .query(
                        redis::cmd("EXPIRE")
                            .arg(redis_key(session_key))
                            .arg(seconds(ttl)),
                    )
                    .await?;
                Ok(())
            }
        }
    }

    async fn delete(&self, session_key: &SessionKey) -> anyhow::Result<()> {
        match self {
            SessionBackend::Cookie => CookieSessionStore::default().delete(session_key).await,
            SessionBackend::Redis(redis) => {
                let _: redis::Value = redis
                    .query(redis::cmd("DEL").arg(redis_key(session_key)))
                    .await?;
                Ok(())
            }
        }
    }
}
