//! The connection to Redis, when `REDIS_URL` is set: shared by the session store and the rate
//! limits, so that several instances share both.
//!
//! Redis going away and coming back is handled here, by bounds:
//! - connecting at start-up gives up after a few seconds (`serve` then exits with a message,
//!   as it does when the database is missing), instead of redis-rs's default of minutes;
//! - while Redis is away every command fails within `COMMAND_TIMEOUT` (the request gets 503);
//! - reconnection is tried about every second (redis-rs's default backs off to minutes), so
//!   sessions work again within a second or two of Redis returning.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// Longest one command may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest the first connection may take at start-up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(8);

/// A Redis server, reconnected automatically.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
}

/// Redis did not answer (or answered an error).
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("Redis did not answer in time")]
    Timeout,
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
}

impl RedisStore {
    /// Connect to `url`, or fail within a few seconds.
    pub async fn connect(url: &str) -> anyhow::Result<RedisStore> {
        let client = redis::Client::open(url)
            .map_err(|e| anyhow::anyhow!("REDIS_URL is not usable: {e}"))?;
        // redis-rs multiplies its 1 s base delay by the factor: 1 keeps every wait at about a
        // second (plus jitter) instead of growing to a minute.
        let config = ConnectionManagerConfig::new()
            .set_factor(1)
            .set_max_delay(1_000)
            .set_number_of_retries(3)
            .set_connection_timeout(Duration::from_secs(1))
            .set_response_timeout(COMMAND_TIMEOUT);
        let connecting = ConnectionManager::new_with_config(client, config);
        let conn = match actix_web::rt::time::timeout(CONNECT_TIMEOUT, connecting).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => anyhow::bail!(
                "cannot connect to Redis at {}: {e}",
                crate::db::redact_url(url)
            ),
            Err(_) => anyhow::bail!(
                "Redis at {} did not answer within {} s",
                crate::db::redact_url(url),
                CONNECT_TIMEOUT.as_secs()
            ),
        };
        let store = RedisStore { conn };
        store.ping().await.map_err(|e| {
            anyhow::anyhow!(
                "Redis at {} does not answer: {e}",
                crate::db::redact_url(url)
            )
        })?;
        Ok(store)
    }

    /// Run one command, bounded by `COMMAND_TIMEOUT`.
    pub async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, RedisError> {
        let mut conn = self.conn.clone();
        match actix_web::rt::time::timeout(COMMAND_TIMEOUT, cmd.query_async(&mut conn)).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(RedisError::Timeout),
        }
    }

    /// Run a Lua script (sent by its hash, loaded once), bounded by `COMMAND_TIMEOUT`.
    pub async fn invoke<T: redis::FromRedisValue>(
        &self,
        script: &redis::ScriptInvocation<'_>,
    ) -> Result<T, RedisError> {
        let mut conn = self.conn.clone();
        match actix_web::rt::time::timeout(COMMAND_TIMEOUT, script.invoke_async(&mut conn)).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(RedisError::Timeout),
        }
    }

    /// Whether Redis answers (readiness).
    pub async fn ping(&self) -> Result<(), RedisError> {
        let pong: String = self.query(&redis::cmd("PING")).await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(RedisError::Redis(redis::RedisError::from((
                redis::ErrorKind::ResponseError,
                "unexpected answer to PING",
            ))))
        }
    }
}
