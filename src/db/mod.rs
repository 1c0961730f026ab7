//! Database access: one connection type over SQLite and PostgreSQL, the pool, migrations, and
//! the single place where blocking database work crosses into actix's thread pool.

pub mod schema;

use std::path::PathBuf;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{self, ManageConnection, Pool, PooledConnection, R2D2Connection};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, ConnectionError};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// One connection, to whichever backend `DATABASE_URL` names.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

/// A pooled connection.
pub type DbPool = Pool<DbManager>;
pub type PooledDb = PooledConnection<DbManager>;

/// `DATABASE_URL`, parsed: the scheme picks the backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

/// The database URL is not one this service can use.
#[derive(Debug, thiserror::Error)]
#[error(
    "DATABASE_URL must start with sqlite:// (a file path) or postgres:// / postgresql://, not {0:?}"
)]
pub struct BadDatabaseUrl(String);

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<DatabaseUrl, BadDatabaseUrl> {
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if path.is_empty() || path.contains(":memory:") {
                // A pool of :memory: connections would be a different database per connection.
                return Err(BadDatabaseUrl(url.to_owned()));
            }
            return Ok(DatabaseUrl::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(url.to_owned()));
        }
        Err(BadDatabaseUrl(redact_url(url)))
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            DatabaseUrl::Sqlite(_) => "sqlite",
            DatabaseUrl::Postgres(_) => "postgresql",
        }
    }
}

/// The URL without its password, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// An r2d2 manager that opens the backend the URL names (diesel's own tries every backend in
/// turn and hides the real connection error).
#[derive(Debug)]
pub struct DbManager {
    url: DatabaseUrl,
}

/// Opening a connection failed.
#[derive(Debug, thiserror::Error)]
pub enum DbConnectError {
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    #[error("cannot create the database folder {0}: {1}")]
    Folder(PathBuf, std::io::Error),
}

impl ManageConnection for DbManager {
    type Connection = DbConnection;
    type Error = DbConnectError;

    fn connect(&self) -> Result<DbConnection, DbConnectError> {
        match &self.url {
            DatabaseUrl::Sqlite(path) => {
                let path_str = path.to_string_lossy();
                let mut conn = SqliteConnection::establish(&path_str)?;
                // busy_timeout first: the pragmas after it wait for a writer (a migration at
                // start-up) instead of failing with "database is locked". WAL lets readers run
                // beside the writer; foreign keys are off by default in SQLite.
                conn.batch_execute(
                    "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                )?;
                Ok(DbConnection::Sqlite(conn))
            }
            DatabaseUrl::Postgres(url) => {
                Ok(DbConnection::Postgresql(PgConnection::establish(url)?))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), DbConnectError> {
        conn.ping().map_err(DbConnectError::Query)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        conn.is_broken()
    }
}

/// Build the pool. For SQLite the database folder is created first.
pub fn build_pool(url: &str, max_size: u32, timeout: Duration) -> Result<DbPool, anyhow::Error> {
    let url = DatabaseUrl::parse(url)?;
    if let DatabaseUrl::Sqlite(path) = &url
        && let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .map_err(|e| DbConnectError::Folder(parent.to_path_buf(), e))?;
    }
    let pool = Pool::builder()
        .max_size(max_size)
        .min_idle(Some(1))
        .connection_timeout(timeout)
        // Pinging on every checkout costs a round trip per request; broken connections are
        // detected by `has_broken` and failed queries instead.
        .test_on_check_out(false)
        .build(DbManager { url })?;
    Ok(pool)
}

/// Apply every pending migration of the pool's backend; returns the versions applied.
pub fn run_migrations(conn: &mut DbConnection) -> Result<Vec<String>, anyhow::Error> {
    let applied = match conn {
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS),
        DbConnection::Postgresql(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS),
    }
    .map_err(|e| anyhow::anyhow!("migration failed: {e}"))?;
    Ok(applied.into_iter().map(|v| v.to_string()).collect())
}

/// Why a database call failed, classified here once for every caller (and mapped to an answer
/// once, in `web::error`).
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database cannot serve us right now: no pooled connection in time, the connection
    /// was lost (server restarted, backend terminated), or SQLite stayed locked past
    /// `busy_timeout`. The request may succeed if tried again shortly (503).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A concurrent writer got in the way (SQLite busy, PostgreSQL serialization failure):
    /// worth running the whole transaction again.
    #[error("database busy: {0}")]
    Busy(String),
    /// A unique constraint refused the write; the constraint's name when the backend says it.
    #[error("unique constraint violated: {0}")]
    Unique(String),
    /// The row asked for does not exist.
    #[error("row not found")]
    NotFound,
    /// Anything else: a bug, or a schema that does not match the code (500).
    #[error(transparent)]
    Query(diesel::result::Error),
}

impl From<diesel::result::Error> for DbError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind as Kind, Error};
        match e {
            Error::NotFound => DbError::NotFound,
            Error::DatabaseError(Kind::UniqueViolation, info) => DbError::Unique(
                info.constraint_name()
                    .unwrap_or_else(|| info.message())
                    .to_owned(),
            ),
            Error::DatabaseError(Kind::SerializationFailure, info) => {
                DbError::Busy(info.message().to_owned())
            }
            Error::DatabaseError(Kind::ClosedConnection | Kind::UnableToSendCommand, info) => {
                DbError::Unavailable(info.message().to_owned())
            }
            Error::DatabaseError(_, ref info) if is_busy_message(info.message()) => {
                DbError::Busy(info.message().to_owned())
            }
            Error::DatabaseError(_, ref info) if is_lost_connection_message(info.message()) => {
                DbError::Unavailable(info.message().to_owned())
            }
            Error::BrokenTransactionManager => {
                DbError::Unavailable("the connection's transaction state is broken".to_owned())
            }
            other => DbError::Query(other),
        }
    }
}

impl From<r2d2::PoolError> for DbError {
    fn from(e: r2d2::PoolError) -> Self {
        DbError::Unavailable(e.to_string())
    }
}

impl DbError {
    /// Whether running the transaction again may succeed (a concurrent writer, not a fault).
    pub fn is_busy(&self) -> bool {
        matches!(self, DbError::Busy(_))
    }
}

/// SQLite's "database is locked" / "database table is locked": another writer holds the lock.
fn is_busy_message(message: &str) -> bool {
    message.contains("database is locked") || message.contains("database table is locked")
}

/// libpq's words for a connection that is gone (the server restarted, or an administrator
/// terminated the backend); diesel reports some of them without a kind of their own.
fn is_lost_connection_message(message: &str) -> bool {
    const LOST: [&str; 5] = [
        "server closed the connection",
        "no connection to the server",
        "terminating connection",
        "connection to server",
        "could not receive data from server",
    ];
    LOST.iter().any(|m| message.contains(m))
}

/// Whether the database answers a trivial statement (readiness checks, `check`).
pub fn ping(conn: &mut DbConnection) -> Result<(), DbError> {
    conn.batch_execute("SELECT 1").map_err(DbError::from)
}

/// Run blocking database work on actix's blocking thread pool with a pooled connection.
/// Every handler and service reaches the database through here.
pub async fn run<F, T, E>(pool: &DbPool, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<DbError> + Send + 'static,
{
    let pool = pool.clone();
    actix_web::web::block(move || {
        let mut conn = pool.get().map_err(DbError::from)?;
        f(&mut conn)
    })
    .await
    .map_err(|e| E::from(DbError::Unavailable(format!("blocking pool: {e}"))))?
}

/// Run `f` in a write transaction, running it again (a few times, briefly backing off) when it fails
/// with an error `retry` accepts: a concurrent writer (SQLite busy, serialization failure) or a
/// unique-constraint race whose loser should re-read.
pub fn transaction_with_retry<T, E>(
    conn: &mut DbConnection,
    retry: impl Fn(&E) -> bool,
    mut f: impl FnMut(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    const ATTEMPTS: u64 = 8;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = conn.transaction(|conn| {
            if let DbConnection::Sqlite(c) = conn {
                // Take SQLite's write lock before reading, as BEGIN IMMEDIATE would: writers then
                // queue on busy_timeout instead of failing when their read snapshot goes stale
                // under a concurrent writer ("database is locked" at the first write).
                c.batch_execute("UPDATE users SET id = id WHERE 0")?;
            }
            f(conn)
        });
        match result {
            Err(e) if attempt < ATTEMPTS && retry(&e) => {
                std::thread::sleep(Duration::from_millis(5 * attempt));
            }
            other => return other,
        }
    }
}

/// Now, as stored in TIMESTAMP columns (UTC, microseconds, no time zone).
pub fn now() -> chrono::NaiveDateTime {
    let now = chrono::Utc::now().naive_utc();
    // Both backends keep microseconds; truncating here makes values round-trip unchanged.
    chrono::DurationRound::duration_trunc(now, chrono::TimeDelta::microseconds(1)).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Connections opened while migrations write a fresh SQLite database (as the pool does
    /// at start-up) wait for the writer instead of failing with "database is locked".
    #[test]
    fn sqlite_connections_open_while_migrations_run() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().expect("tempdir");
            let url = DatabaseUrl::parse(&format!("sqlite://{}/t.db", dir.path().display()))
                .expect("url");
            let manager = std::sync::Arc::new(DbManager { url });
            let mut first = manager.connect().expect("first connection");
            let openers: Vec<_> = (0..3)
                .map(|_| {
                    let manager = manager.clone();
                    std::thread::spawn(move || {
                        (0..5).try_for_each(|_| manager.connect().map(|_| ()))
                    })
                })
                .collect();
            run_migrations(&mut first).expect("migrations");
            for opener in openers {
                opener
                    .join()
                    .expect("opening thread")
                    .expect("connections open while migrations run");
            }
        }
    }
}
