//! The connection to Redis, when `REDIS_URL` is set: shared by the session store and the rate
//! limits, so that several instances share both.
//!
//! Redis going away and coming back is handled here, by bounds:
//! - connecting at start-up gives up after a few seconds (`serve` then exits with a message,
//!   as it does when the database is missing), instead of redis-rs's default of minutes;
//! - while Redis is away every command fails within `COMMAND_TIMEOUT` (the request gets 503);
//! - reconnection is tried about every second (redis-rs's default backs off to minutes), so
//!   sessions work again within a second or two of Redis returning.
//!
//! The connection lives on a thread of its own ("redis-io", one small tokio runtime): its
//! driver, its reconnections and every command run there, so a worker (or a test's thread)
//! that is busy or blocked never holds up another's Redis traffic. The thread ends when the
//! last clone of the store is dropped.

use std::sync::Arc;
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
    io: Arc<IoThread>,
}

/// The thread the connection runs on. Dropping the last handle ends it.
struct IoThread {
    handle: tokio::runtime::Handle,
    /// Dropped with the store: the thread's runtime then stops.
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl IoThread {
    fn start() -> anyhow::Result<IoThread> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("redis-io".into())
            .spawn(move || {
                // Resolves when the sender is dropped; the runtime and its tasks go with it.
                let _ = runtime.block_on(stopped);
            })?;
        Ok(IoThread {
            handle,
            _stop: stop,
        })
    }

    /// Run `work` on the I/O thread, bounded by `COMMAND_TIMEOUT`.
    async fn run<T, F>(&self, work: F) -> Result<T, RedisError>
    where
        T: Send + 'static,
        F: std::future::Future<Output = redis::RedisResult<T>> + Send + 'static,
    {
        let task = self
            .handle
            .spawn(tokio::time::timeout(COMMAND_TIMEOUT, work));
        match task.await {
            Ok(Ok(result)) => Ok(result?),
            Ok(Err(_elapsed)) => Err(RedisError::Timeout),
            // The runtime is shutting down (the process is exiting).
            Err(_) => Err(RedisError::Timeout),
        }
    }
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
        let io = Arc::new(IoThread::start()?);
        let connecting = io.handle.spawn(tokio::time::timeout(
            CONNECT_TIMEOUT,
            ConnectionManager::new_with_config(client, config),
        ));
        let conn = match connecting.await? {
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
        let store = RedisStore { conn, io };
        store.ping().await.map_err(|e| {
            anyhow::anyhow!(
                "Redis at {} does not answer: {e}",
                crate::db::redact_url(url)
            )
        })?;
        Ok(store)
    }

    /// Run one command, bounded by `COMMAND_TIMEOUT`.
    pub async fn query<T>(&self, cmd: &redis::Cmd) -> Result<T, RedisError>
    where
        T: redis::FromRedisValue + Send + 'static,
    {
        let mut conn = self.conn.clone();
        let cmd = cmd.clone();
        self.io
            .run(async move { cmd.query_async(&mut conn).await })
            .await
    }

    /// Run a Lua script (sent by its hash, loaded once), bounded by `COMMAND_TIMEOUT`.
    pub async fn invoke<T>(
        &self,
        script: &'static redis::Script,
        keys: Vec<String>,
        args: Vec<i64>,
    ) -> Result<T, RedisError>
    where
        T: redis::FromRedisValue + Send + 'static,
    {
        let mut conn = self.conn.clone();
        self.io
            .run(async move {
                let mut invocation = script.prepare_invoke();
                for key in &keys {
                    invocation.key(key);
                }
                for arg in &args {
                    invocation.arg(*arg);
                }
                invocation.invoke_async(&mut conn).await
            })
            .await
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
