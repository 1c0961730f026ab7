//! Database access: one connection type over SQLite and PostgreSQL, the pool, migrations, the
//! classification of every database failure, and the single place where blocking database work
//! crosses into actix's thread pool.
//!
//! Lost connections (a PostgreSQL restart, an administrator terminating backends) are replaced
//! without a restart of ours:
//! - a connection whose work failed with a database fault is pinged, and dropped from the pool
//!   if dead (libpq fails the ping at once, without I/O, on a connection it knows is gone);
//! - a PostgreSQL connection that sat idle in the pool for a while is pinged before it is
//!   handed out (one that died while idle cannot be known otherwise; under load connections
//!   are never idle that long, so this costs nothing there);
//! - work that failed because its connection was lost is run once more on a fresh connection,
//!   unless it wrote something already (every write runs in `transaction_with_retry`, which
//!   notes each commit, and a COMMIT whose answer was lost counts as one).
//!
//! A server that stops answering without closing the connection (a frozen host, a partition)
//! cannot hang a request: libpq connects with a timeout and TCP keepalives, PostgreSQL cancels
//! statements after `statement_timeout`, and `run` answers 503 when the work takes longer than
//! `WORK_TIMEOUT` (the blocking thread is left to finish on its own).

pub mod schema;
pub mod time;

use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{self, ManageConnection, Pool, PooledConnection, R2D2Connection};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, ConnectionError};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use parking_lot::Mutex;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// One connection, to whichever backend `DATABASE_URL` names.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

/// The pool of connections (it dereferences to r2d2's pool), and on SQLite the few read-only
/// connections of [`read`].
#[derive(Clone)]
pub struct DbPool {
    pool: Pool<DbManager>,
    /// What only a SQLite database has.
    sqlite: Option<SqliteSide>,
}

/// A SQLite pool's read-only connections, and what its writers share.
#[derive(Clone)]
struct SqliteSide {
    /// Connections that never wait for a lock, for work that [`read`] runs on the calling
    /// thread.
    readers: Pool<DbManager>,
    writers: Arc<Writers>,
}

/// What this process's writers of one SQLite database share: the turn they take (see
/// `transaction_with_retry`), and how many wrote since the last checkpoint.
///
/// A commit appends the pages it changed to the WAL; a checkpoint copies them back into the
/// database file and syncs it, so that the WAL can start over. SQLite's own checkpoint runs
/// inside the COMMIT that crosses `wal_autocheckpoint` pages, so every other writer would
/// wait for its copying and its two fsyncs. Here that is only a backstop
/// (`WAL_FRAMES_BACKSTOP`): `run` starts a checkpoint beside the writers every
/// `CHECKPOINT_EVERY` writes (see `Writers::checkpoint`).
#[derive(Default)]
struct Writers {
    turn: Mutex<()>,
    commits: AtomicU32,
    checkpointing: AtomicBool,
}

/// Pieces of work that wrote (`run`s whose transactions committed) between two checkpoints.
const CHECKPOINT_EVERY: u32 = 100;

/// WAL frames beyond which a checkpoint that ran beside the writers and left some behind
/// finishes in their turn: the WAL starts over only once all of it is copied, which writes
/// that never pause prevent. 4096 frames is 16 MiB.
const WAL_FRAMES_MAX: i64 = 4096;

/// WAL pages past which a COMMIT checkpoints, as SQLite does by itself every 1000: for
/// writes that bypass `run`, or checkpoints that fall behind. 32 MiB.
const WAL_FRAMES_BACKSTOP: i64 = 8192;

/// The answer of `PRAGMA wal_checkpoint`.
#[derive(diesel::QueryableByName)]
struct CheckpointDone {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    busy: i32,
    /// Frames in the WAL.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    log: i64,
    /// Of those, frames now in the database file.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    checkpointed: i64,
}

impl Writers {
    /// Count a piece of work that wrote; true when it is time for a checkpoint and no other
    /// is running (the caller then runs `checkpoint`).
    fn committed(&self) -> bool {
        self.commits.fetch_add(1, Ordering::Relaxed) + 1 >= CHECKPOINT_EVERY
            && !self.checkpointing.swap(true, Ordering::AcqRel)
    }

    /// Copy the WAL into the database file without taking the writers' turn (SQLite's
    /// PASSIVE checkpoint: writers go on appending meanwhile). If some of it is left (frames
    /// appended meanwhile) and the WAL holds more than `WAL_FRAMES_MAX` frames, once more in
    /// their turn, which copies the rest, so that the next writer starts the WAL over.
    fn checkpoint(&self, pool: &Pool<DbManager>) -> Result<(), DbError> {
        self.commits.store(0, Ordering::Relaxed);
        let done = pool.get().map_err(DbError::from).and_then(|mut conn| {
            let DbConnection::Sqlite(c) = &mut **conn else {
                return Ok(None);
            };
            let mut done = Self::passive(c)?;
            if done.checkpointed < done.log
                && done.log > WAL_FRAMES_MAX
                && let Some(_turn) = self.turn.try_lock_for(BUSY_TIMEOUT)
            {
                done = Self::passive(c)?;
            }
            Ok(Some(done))
        });
        self.checkpointing.store(false, Ordering::Release);
        if let Some(done) = done? {
            log::debug!(
                "event=db.checkpoint busy={} wal_frames={} copied={}",
                done.busy,
                done.log,
                done.checkpointed
            );
        }
        Ok(())
    }

    fn passive(conn: &mut SqliteConnection) -> Result<CheckpointDone, DbError> {
        let mut rows: Vec<CheckpointDone> =
            diesel::RunQueryDsl::load(diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)"), conn)?;
        rows.pop().ok_or(DbError::NotFound)
    }
}

impl DbPool {
    /// The read-only connections of [`read`] (SQLite only).
    pub fn readers(&self) -> Option<&Pool<DbManager>> {
        self.sqlite.as_ref().map(|s| &s.readers)
    }
}

impl std::ops::Deref for DbPool {
    type Target = Pool<DbManager>;
    fn deref(&self) -> &Pool<DbManager> {
        &self.pool
    }
}

/// A pooled connection.
pub type PooledDb = PooledConnection<DbManager>;

/// A connection as the pool keeps it: the connection, and what the pool needs to know to
/// decide whether it is still good. Dereferences to the connection.
pub struct TrackedConnection {
    conn: DbConnection,
    /// When it last went back to the pool.
    returned: Instant,
    /// Found dead after a failure: the pool drops it on return.
    dead: bool,
}

impl std::ops::Deref for TrackedConnection {
    type Target = DbConnection;
    fn deref(&self) -> &DbConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for TrackedConnection {
    fn deref_mut(&mut self) -> &mut DbConnection {
        &mut self.conn
    }
}

/// How long a PostgreSQL connection may sit idle before it is pinged on its way out.
const PING_IF_IDLE_FOR: Duration = Duration::from_millis(100);

impl TrackedConnection {
    /// Whether the connection still answers. SQLite's (a local file) always do.
    fn answers(&mut self) -> bool {
        match &mut self.conn {
            DbConnection::Sqlite(_) => true,
            DbConnection::Postgresql(c) => c.batch_execute("SELECT 1").is_ok(),
        }
    }
}

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
    /// How long to wait for a connection (PostgreSQL's connect timeout).
    timeout: Duration,
    /// SQLite connections for [`read`]: `query_only`, and a zero `busy_timeout`, so that work
    /// needing a write or a lock fails at once instead of waiting on the calling thread.
    read_only: bool,
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
    type Connection = TrackedConnection;
    type Error = DbConnectError;

    fn connect(&self) -> Result<TrackedConnection, DbConnectError> {
        Ok(TrackedConnection {
            conn: self.open()?,
            returned: Instant::now(),
            dead: false,
        })
    }

    /// On checkout: a PostgreSQL connection idle for a while is pinged (it may have died while
    /// idle); a failed ping makes the pool drop it and hand out another.
    fn is_valid(&self, conn: &mut TrackedConnection) -> Result<(), DbConnectError> {
        if conn.returned.elapsed() < PING_IF_IDLE_FOR {
            return Ok(());
        }
        match &mut conn.conn {
            DbConnection::Sqlite(_) => Ok(()),
            DbConnection::Postgresql(c) => c.batch_execute("SELECT 1").map_err(Into::into),
        }
    }

    /// On return: found dead by `run`, or broken by diesel's account (a transaction left in
    /// error). No I/O here: r2d2 asks this to be fast.
    fn has_broken(&self, conn: &mut TrackedConnection) -> bool {
        conn.returned = Instant::now();
        conn.dead || conn.conn.is_broken()
    }
}

impl DbManager {
    fn open(&self) -> Result<DbConnection, DbConnectError> {
        match &self.url {
            DatabaseUrl::Sqlite(path) => {
                let path_str = path.to_string_lossy();
                let mut conn = SqliteConnection::establish(&path_str)?;
                // busy_timeout first: the pragmas after it wait for a writer (a migration at
                // start-up) instead of failing with "database is locked". WAL lets readers run
                // beside the writer; foreign keys are off by default in SQLite.
                // SQLite's own checkpoint only as a backstop, past `WAL_FRAMES_BACKSTOP`
                // pages: `run` starts them sooner, beside the writers (see `Writers`).
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
                     PRAGMA wal_autocheckpoint = {WAL_FRAMES_BACKSTOP};",
                    BUSY_TIMEOUT.as_millis()
                ))?;
                if self.read_only {
                    // A page cache of 512 KiB rather than 2 MiB: their reads are lookups by key
                    // and pages along an index, and the file's pages are in the OS's cache.
                    conn.batch_execute(
                        "PRAGMA query_only = 1; PRAGMA busy_timeout = 0; PRAGMA cache_size = -512;",
                    )?;
                }
                Ok(DbConnection::Sqlite(conn))
            }
            DatabaseUrl::Postgres(url) => Ok(DbConnection::Postgresql(PgConnection::establish(
                &with_libpq_bounds(url, self.timeout),
            )?)),
        }
    }
}

/// `url` with the libpq settings that keep a vanished server from hanging us, each only when
/// the URL does not set it already: a connect timeout, TCP keepalives and a user timeout, and
/// a server-side `statement_timeout`. On a server of this machine, also no TLS (below). The
/// pool's connections use it, and the load benchmark gives pgbench the same.
pub fn with_libpq_bounds(url: &str, timeout: Duration) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return url.to_owned();
    };
    let present: Vec<String> = parsed.query_pairs().map(|(k, _)| k.into_owned()).collect();
    let secs = timeout.as_secs().max(1);
    let statement_ms = WORK_TIMEOUT.as_millis().to_string();
    // TLS to a server on this machine protects nothing (the traffic never leaves it), and
    // libpq's default (`prefer`: TLS whenever the server offers it, the certificate never
    // checked) costs a third of a small statement's rate: pgbench's `SELECT 1` at 16 clients,
    // 34,489 tps with it and 55,239 without (2026-12-04). A URL that names its `sslmode`, or
    // its hosts in the query, keeps what it says, and so does libpq's `PGSSLMODE`.
    let loopback = std::env::var_os("PGSSLMODE").is_none()
        && !present.iter().any(|k| k == "host" || k == "hostaddr")
        && parsed.host_str().is_some_and(|host| {
            host == "localhost"
                || host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        });
    let tls = if loopback {
        Some(("sslmode", "disable".to_owned()))
    } else {
        None
    };
    let bounds = tls.into_iter().chain([
        ("connect_timeout", secs.to_string()),
        ("keepalives", "1".to_owned()),
        ("keepalives_idle", "10".to_owned()),
        ("keepalives_interval", "5".to_owned()),
        ("keepalives_count", "3".to_owned()),
        ("tcp_user_timeout", (secs * 1000 + 5000).to_string()),
        ("options", format!("-c statement_timeout={statement_ms}")),
    ]);
    // libpq decodes %XX in URI parameters but not "+", so spaces are written as %20.
    let mut query = parsed.query().unwrap_or("").to_owned();
    for (key, value) in bounds {
        if !present.iter().any(|p| p == key) {
            let value: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
            if !query.is_empty() {
                query.push('&');
            }
            query.push_str(&format!("{key}={}", value.replace('+', "%20")));
        }
    }
    parsed.set_query(Some(&query));
    parsed.to_string()
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
        // `is_valid` pings only connections that sat idle (see the module doc).
        .test_on_check_out(true)
        .build(DbManager {
            url: url.clone(),
            timeout,
            read_only: false,
        })?;
    let sqlite = match &url {
        DatabaseUrl::Sqlite(_) => {
            // One per thread that may run HTTP work at once (a worker per core by default); a
            // worker that finds none idle goes through the blocking pool instead.
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
            let count = u32::try_from(threads).unwrap_or(u32::MAX).max(1);
            let readers = Pool::builder()
                .max_size(count)
                .min_idle(Some(count))
                .connection_timeout(timeout)
                .test_on_check_out(false)
                .build_unchecked(DbManager {
                    url,
                    timeout,
                    read_only: true,
                });
            Some(SqliteSide {
                readers,
                writers: Arc::new(Writers::default()),
            })
        }
        DatabaseUrl::Postgres(_) => None,
    };
    Ok(DbPool { pool, sqlite })
}

/// Apply every pending migration of the pool's backend; returns the versions applied.
/// Rows one housekeeping statement deletes at most, and statements per table and run.
pub const PURGE_BATCH: i64 = 1000;
pub const PURGE_BATCHES: usize = 20;

/// Delete rows in batches, each its own short statement so that no lock is held long: `select`
/// picks at most `PURGE_BATCH` keys of rows to go, `delete` deletes those keys (Diesel cannot
/// put a LIMITed subquery in a DELETE), at most `PURGE_BATCHES` times. Safe when several
/// instances run it at once: a row another deleted first is simply not there. Returns how
/// many were deleted, and whether the bound stopped it with rows perhaps left.
pub fn delete_in_batches<K>(
    conn: &mut DbConnection,
    mut select: impl FnMut(&mut DbConnection, i64) -> diesel::QueryResult<Vec<K>>,
    mut delete: impl FnMut(&mut DbConnection, &[K]) -> diesel::QueryResult<usize>,
) -> diesel::QueryResult<(usize, bool)> {
    let full = usize::try_from(PURGE_BATCH).unwrap_or(usize::MAX);
    let mut deleted = 0;
    for _ in 0..PURGE_BATCHES {
        let keys = select(conn, PURGE_BATCH)?;
        if !keys.is_empty() {
            deleted += delete(conn, &keys)?;
        }
        if keys.len() < full {
            return Ok((deleted, false));
        }
    }
    Ok((deleted, true))
}

/// The advisory lock key instances take while migrating PostgreSQL ("kakaolog" in ASCII).
const MIGRATION_LOCK: i64 = 0x6b61_6b61_6f6c_6f67;

pub fn run_migrations(conn: &mut DbConnection) -> Result<Vec<String>, anyhow::Error> {
    let applied = match conn {
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS),
        DbConnection::Postgresql(c) => {
            // Instances starting together take turns (a session-level advisory lock, freed
            // also if this connection dies): the first applies what is pending, the others
            // then find nothing to do, instead of racing on the same CREATE TABLE.
            use diesel::RunQueryDsl as _;
            // Migrations (and the wait for another instance's) may take longer than the
            // pool's statement_timeout; RESET below returns to the connection's own value.
            diesel::sql_query("SET statement_timeout = 0")
                .execute(c)
                .map_err(|e| anyhow::anyhow!("cannot lift the statement timeout: {e}"))?;
            // Polled, not waited for inside one statement: a CREATE INDEX CONCURRENTLY in the
            // other instance's migrations waits for every open transaction to end, and a
            // waiting pg_advisory_lock would be one (PostgreSQL reports the deadlock).
            #[derive(diesel::QueryableByName)]
            struct Locked {
                #[diesel(sql_type = diesel::sql_types::Bool)]
                locked: bool,
            }
            loop {
                let got: Locked = diesel::sql_query(format!(
                    "SELECT pg_try_advisory_lock({MIGRATION_LOCK}) AS locked"
                ))
                .get_result(c)
                .map_err(|e| anyhow::anyhow!("cannot take the migration lock: {e}"))?;
                if got.locked {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let applied = c
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|versions| {
                    versions
                        .into_iter()
                        .map(|v| v.as_owned())
                        .collect::<Vec<_>>()
                })
                .map_err(|e| e.to_string());
            let unlocked =
                diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
                    .execute(c);
            if let Err(e) = unlocked {
                log::warn!("event=db.migration_unlock_failed error=\"{e}\"");
            }
            let _ = diesel::sql_query("RESET statement_timeout").execute(c);
            applied.map_err(|e| anyhow::anyhow!(e).into())
        }
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
    /// A unique constraint refused the write; the constraint's name when the backend says it
    /// (PostgreSQL), else its message (SQLite: "UNIQUE constraint failed: users.email").
    #[error("unique constraint violated: {0}")]
    Unique(String),
    /// The connection was lost while its COMMIT was on the way: the work may or may not have
    /// been saved, so it is not run again (503).
    #[error("database connection lost during commit: {0}")]
    CommitUnknown(String),
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
            Error::DatabaseError(
                Kind::ClosedConnection | Kind::UnableToSendCommand | Kind::ReadOnlyTransaction,
                info,
            ) => DbError::Unavailable(info.message().to_owned()),
            Error::DatabaseError(_, ref info)
                if is_busy_message(info.message()) || is_deadlock_message(info.message()) =>
            {
                DbError::Busy(info.message().to_owned())
            }
            Error::DatabaseError(_, ref info) if is_lost_connection_message(info.message()) => {
                DbError::Unavailable(info.message().to_owned())
            }
            Error::BrokenTransactionManager => {
                DbError::Unavailable("the connection's transaction state is broken".to_owned())
            }
            Error::RollbackErrorOnCommit { commit_error, .. } => {
                DbError::CommitUnknown(commit_error.to_string())
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

    /// Whether the database itself failed us (not the request): the connection is worth
    /// checking, and the work worth running again on another one.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, DbError::Unavailable(_))
    }

    /// Whether a unique violation is the users' email key (a taken email), as opposed to a
    /// race on another key whose loser should simply try again.
    pub fn is_email_taken(&self) -> bool {
        matches!(self, DbError::Unique(key) if key.contains("users_email_key") || key.contains("users.email"))
    }
}

/// The errors `db::run` can tell a lost connection by (every error type database work returns).
pub trait DbFailure {
    /// The database failed, as opposed to the work refusing something.
    fn db_unavailable(&self) -> bool;
    /// A lock was in the way (SQLite busy, a serialization failure, a deadlock).
    fn db_busy(&self) -> bool;
}

impl DbFailure for DbError {
    fn db_unavailable(&self) -> bool {
        self.is_unavailable()
    }
    fn db_busy(&self) -> bool {
        self.is_busy()
    }
}

impl DbFailure for anyhow::Error {
    fn db_unavailable(&self) -> bool {
        self.downcast_ref::<DbError>()
            .is_some_and(DbError::is_unavailable)
    }
    fn db_busy(&self) -> bool {
        self.downcast_ref::<DbError>().is_some_and(DbError::is_busy)
    }
}

/// SQLite's "database is locked" / "database table is locked" / "database schema is locked":
/// another writer holds the lock.
fn is_busy_message(message: &str) -> bool {
    [
        "database is locked",
        "database table is locked",
        "database schema is locked",
    ]
    .iter()
    .any(|m| message.contains(m))
}

/// PostgreSQL's deadlock (40P01), which diesel reports without a kind of its own: one of the
/// two transactions was cancelled and may simply run again.
fn is_deadlock_message(message: &str) -> bool {
    message.contains("deadlock detected")
}

/// The database's words for a fault of its own rather than of the request: a connection that
/// is gone (the server restarted, an administrator terminated the backend), a statement or
/// lock cancelled by a timeout, a full disk or memory, a read-only (demoted) server. diesel
/// reports these without a kind of their own.
fn is_lost_connection_message(message: &str) -> bool {
    const FAULTS: [&str; 13] = [
        "server closed the connection",
        "no connection to the server",
        "terminating connection",
        "connection to server",
        "could not receive data from server",
        "canceling statement due to",
        "could not obtain lock",
        "No space left on device",
        "out of memory",
        "database or disk is full",
        "disk I/O error",
        "attempt to write a readonly database",
        "read-only transaction",
    ];
    FAULTS.iter().any(|m| message.contains(m))
}

/// Load `query` on the backend's own connection rather than through [`DbConnection`]:
/// diesel's multi-backend connection writes a query's whole SQL text again in each pass of
/// every run (the statement cache's check, the binds), which was a fifth of `/profile/`'s
/// time in the profile; the backend's own connection finds a query with a static type in its
/// statement cache by that type. For the queries every request makes.
pub fn load<'q, Q, T>(conn: &mut DbConnection, query: Q) -> diesel::QueryResult<Vec<T>>
where
    Q: diesel::query_dsl::LoadQuery<'q, SqliteConnection, T>
        + diesel::query_dsl::LoadQuery<'q, PgConnection, T>,
{
    use diesel::RunQueryDsl;
    match conn {
        DbConnection::Sqlite(c) => RunQueryDsl::load(query, c),
        DbConnection::Postgresql(c) => RunQueryDsl::load(query, c),
    }
}

/// Whether the database answers a trivial statement (readiness checks, `check`).
pub fn ping(conn: &mut DbConnection) -> Result<(), DbError> {
    conn.batch_execute("SELECT 1").map_err(DbError::from)
}

/// Longest one piece of database work may take before the request is answered 503 (and
/// PostgreSQL's `statement_timeout`).
pub const WORK_TIMEOUT: Duration = Duration::from_secs(10);

/// Run blocking database work on actix's blocking thread pool with a pooled connection.
/// Every handler and service reaches the database through here.
///
/// Work that fails because its connection was lost runs once more on another connection (the
/// pool replaces dead ones), unless it wrote something first: reads, and writes that never
/// committed, are safe to run again.
pub async fn run<F, T, E>(pool: &DbPool, mut f: F) -> Result<T, E>
where
    F: FnMut(&mut DbConnection) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<DbError> + DbFailure + Send + 'static,
{
    crate::telemetry::count_db_trip();
    let pool = pool.clone();
    // The request's id goes along, so that log lines from the blocking thread carry it.
    let request_id = crate::telemetry::logging::current();
    let work = actix_web::web::block(move || {
        let _request = crate::telemetry::logging::enter(request_id);
        WROTE.set(false);
        let done = run_here(&pool, &mut f);
        let checkpoint = WROTE.get()
            && pool
                .sqlite
                .as_ref()
                .is_some_and(|side| side.writers.committed());
        (done, checkpoint.then_some(pool))
    });
    match actix_web::rt::time::timeout(WORK_TIMEOUT, work).await {
        Ok(Ok((done, checkpoint))) => {
            if let Some(pool) = checkpoint {
                start_checkpoint(pool);
            }
            done
        }
        Ok(Err(e)) => Err(E::from(DbError::Unavailable(format!("blocking pool: {e}")))),
        Err(_) => Err(E::from(DbError::Unavailable(format!(
            "the database did not answer within {} s",
            WORK_TIMEOUT.as_secs()
        )))),
    }
}

/// `run`'s work, on the blocking thread.
fn run_here<T, E>(
    pool: &DbPool,
    f: &mut impl FnMut(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<DbError> + DbFailure,
{
    let _writer = WriterTurn::offer(pool.sqlite.as_ref().map(|s| s.writers.clone()));
    let waited = std::time::Instant::now();
    let got = pool.get();
    crate::telemetry::metrics::get().pool_wait(waited.elapsed(), got.is_ok());
    let mut conn = got.map_err(DbError::from)?;
    let first = f(&mut conn);
    let Err(e) = first else { return first };
    if !e.db_unavailable() {
        return Err(e);
    }
    if conn.answers() {
        return Err(e);
    }
    conn.dead = true;
    drop(conn);
    if WROTE.get() {
        return Err(e);
    }
    // Its idle siblings were most likely cut too: ping each one handed out until one
    // answers (a new connection, at worst), then run the work once more on that.
    log::warn!("event=db.connection_lost retry=1");
    let mut fresh = pool.get().map_err(DbError::from)?;
    for _ in 0..pool.max_size() {
        if fresh.answers() {
            break;
        }
        fresh.dead = true;
        drop(fresh);
        fresh = pool.get().map_err(DbError::from)?;
    }
    let second = f(&mut fresh);
    if second.as_ref().is_err_and(|e| e.db_unavailable()) && !fresh.answers() {
        fresh.dead = true;
    }
    second
}

/// A checkpoint of the SQLite database of `pool`, beside the request that asked for it (its
/// answer does not wait) and beside the writers (see `Writers`).
fn start_checkpoint(pool: DbPool) {
    let Some(side) = pool.sqlite.clone() else {
        return;
    };
    drop(tokio::task::spawn_blocking(move || {
        if let Err(e) = side.writers.checkpoint(&pool) {
            log::warn!("event=db.checkpoint.failed error=\"{e}\"");
        }
    }));
}

/// Run work that only reads, and in bounded time (a lookup by key, a page along an index;
/// never a search or a scan), as [`run`] would, but on SQLite at once on the calling thread
/// (the HTTP worker): there, a page is a few reads of a local file that a WAL reader never
/// waits for, shorter than the crossing to the blocking pool and back. It uses one of the
/// pool's read-only connections (`query_only`, no `busy_timeout`). Work that turns out to need
/// more fails at once there and goes through [`run`] instead, from the start: a write (such as
/// a session's last-seen time), a lock, a database fault, or no idle read-only connection. On
/// PostgreSQL, whose every statement is a network round trip, this is [`run`].
pub async fn read<F, T, E>(pool: &DbPool, mut f: F) -> Result<T, E>
where
    F: FnMut(&mut DbConnection) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<DbError> + DbFailure + Send + 'static,
{
    if let Some(mut conn) = pool.readers().and_then(Pool::try_get) {
        match f(&mut conn) {
            Err(e) if e.db_unavailable() || e.db_busy() => {}
            done => {
                crate::telemetry::count_db_trip();
                return done;
            }
        }
    }
    run(pool, f).await
}

/// Whether the database answers within `within` (readiness: a probe should get its 503
/// sooner than the pool's own timeout).
pub async fn ready(pool: &DbPool, within: Duration) -> Result<(), DbError> {
    crate::telemetry::count_db_trip();
    let pool = pool.clone();
    let check = actix_web::web::block(move || {
        let mut conn = pool.get_timeout(within).map_err(DbError::from)?;
        ping(&mut conn)
    });
    match actix_web::rt::time::timeout(within + Duration::from_secs(1), check).await {
        Ok(done) => done.map_err(|e| DbError::Unavailable(format!("blocking pool: {e}")))?,
        Err(_) => Err(DbError::Unavailable(
            "the database did not answer".to_owned(),
        )),
    }
}

thread_local! {
    /// Set by `transaction_with_retry` when a transaction committed (or may have: its COMMIT's
    /// answer was lost), so that `run` never runs that work again. `run` and the transaction
    /// share the blocking thread.
    static WROTE: Cell<bool> = const { Cell::new(false) };
    /// The writers' turn of the SQLite database `run` is working on, for its transactions.
    static WRITER: RefCell<Option<Arc<Writers>>> = const { RefCell::new(None) };
}

/// Offers `run`'s work the writers' turn of its database, until dropped.
struct WriterTurn;

impl WriterTurn {
    fn offer(writer: Option<Arc<Writers>>) -> WriterTurn {
        WRITER.set(writer);
        WriterTurn
    }
}

impl Drop for WriterTurn {
    fn drop(&mut self) {
        WRITER.set(None);
    }
}

/// How long a SQLite writer waits for the one before it (SQLite's `busy_timeout`).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a SQLite transaction is retried for a concurrent writer: its writers already wait
/// `busy_timeout` for the lock, so a "locked" after that is final.
const RETRY_FOR: Duration = Duration::from_millis(1000);

/// Run `f` in a write transaction, running it again (briefly backing off; on SQLite for at
/// most `RETRY_FOR`) when it fails with an error `retry` accepts: a concurrent writer (SQLite
/// busy, a serialization failure or deadlock) or a unique-constraint race whose loser should
/// re-read.
///
/// SQLite has one writer at a time. Under `run`, this process's writers first take turns on a
/// mutex, so each starts as soon as the one before it is done; at SQLite's own lock they poll
/// it instead, sleeping 1, 2, 5, 10 ... ms between tries (its busy handler). Other processes'
/// writers still meet ours at SQLite's lock. A transaction inside another keeps the outer
/// one's turn.
pub fn transaction_with_retry<T, E>(
    conn: &mut DbConnection,
    retry: impl Fn(&E) -> bool,
    f: impl FnMut(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error> + From<DbError> + DbFailure,
{
    let writer = match conn {
        DbConnection::Sqlite(_) => WRITER.take(),
        DbConnection::Postgresql(_) => None,
    };
    let done = match &writer {
        Some(writers) => match writers.turn.try_lock_for(BUSY_TIMEOUT) {
            Some(_turn) => transaction_retried(conn, retry, f),
            // As long as SQLite's own lock would have been waited for.
            None => Err(E::from(DbError::Busy(
                "another writer of this process held the database past busy_timeout".to_owned(),
            ))),
        },
        None => transaction_retried(conn, retry, f),
    };
    if writer.is_some() {
        WRITER.set(writer);
    }
    done
}

fn transaction_retried<T, E>(
    conn: &mut DbConnection,
    retry: impl Fn(&E) -> bool,
    mut f: impl FnMut(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error> + From<DbError> + DbFailure,
{
    const ATTEMPTS: u64 = 8;
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut work_done = false;
        let result = conn.transaction(|conn| {
            if let DbConnection::Sqlite(c) = conn {
                // Take SQLite's write lock before reading, as BEGIN IMMEDIATE would: writers then
                // queue on busy_timeout instead of failing when their read snapshot goes stale
                // under a concurrent writer ("database is locked" at the first write).
                diesel::RunQueryDsl::execute(TakeWriteLock, c)?;
            }
            let done = f(conn);
            work_done = done.is_ok();
            done
        });
        match result {
            Ok(done) => {
                WROTE.set(true);
                return Ok(done);
            }
            Err(e) if work_done && e.db_unavailable() => {
                // The work succeeded and the COMMIT went out; whether it arrived is unknown.
                WROTE.set(true);
                return Err(E::from(DbError::CommitUnknown(
                    "the connection was lost during COMMIT".to_owned(),
                )));
            }
            // SQLite's writers waited `busy_timeout` already; PostgreSQL's conflicts (a
            // deadlock is detected after `deadlock_timeout`, 1 s by default) clear on retry.
            Err(e)
                if attempt < ATTEMPTS
                    && (started.elapsed() < RETRY_FOR
                        || matches!(conn, DbConnection::Postgresql(_)))
                    && retry(&e) =>
            {
                std::thread::sleep(Duration::from_millis(5 * attempt));
            }
            other => return other,
        }
    }
}

/// `UPDATE users SET id = id WHERE 0`: SQLite's write lock, taken by a statement compiled once
/// per connection (diesel compiles every UPDATE it writes again each time, and this one runs
/// before every write).
#[derive(diesel::query_builder::QueryId)]
struct TakeWriteLock;

impl diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite> for TakeWriteLock {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>,
    ) -> diesel::QueryResult<()> {
        out.push_sql("UPDATE users SET id = id WHERE 0");
        Ok(())
    }
}

impl diesel::RunQueryDsl<SqliteConnection> for TakeWriteLock {}

/// Now, as stored in TIMESTAMP columns (UTC, microseconds, no time zone).
pub fn now() -> chrono::NaiveDateTime {
    let now = chrono::Utc::now().naive_utc();
    // Both backends keep microseconds; truncating here makes values round-trip unchanged.
    chrono::DurationRound::duration_trunc(now, chrono::TimeDelta::microseconds(1)).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_urls_get_bounds_unless_they_set_them() {
        let url = with_libpq_bounds(
            "postgres://u@db.internal:5432/app?sslmode=require&connect_timeout=3",
            Duration::from_secs(5),
        );
        assert!(
            url.starts_with("postgres://u@db.internal:5432/app?sslmode=require&connect_timeout=3&"),
            "{url}"
        );
        assert_eq!(url.matches("connect_timeout").count(), 1, "{url}");
        assert!(url.contains("keepalives=1"), "{url}");
        assert!(url.contains("tcp_user_timeout=10000"), "{url}");
        // libpq reads "+" literally: the space in the options is %20.
        assert!(
            url.contains("options=-c%20statement_timeout%3D10000"),
            "{url}"
        );
        assert_eq!(url.matches("sslmode").count(), 1, "{url}");
    }

    #[test]
    fn a_server_of_this_machine_is_reached_without_tls_unless_the_url_asks() {
        let timeout = Duration::from_secs(5);
        for local in [
            "postgres://u@127.0.0.1:5432/app",
            "postgres://u@localhost/app",
            "postgresql://u@[::1]:5432/app",
            "postgres://u@127.0.0.2/app?connect_timeout=3",
        ] {
            let url = with_libpq_bounds(local, timeout);
            assert!(url.contains("sslmode=disable"), "{url}");
        }
        for kept in [
            "postgres://u@db.internal:5432/app",
            "postgres://u@10.0.0.5/app",
            "postgres://u@127.0.0.1/app?sslmode=require",
            "postgres://u@localhost/app?host=db.internal",
        ] {
            let url = with_libpq_bounds(kept, timeout);
            assert!(!url.contains("sslmode=disable"), "{url}");
        }
    }

    /// Connections opened while migrations write a fresh SQLite database (as the pool does
    /// at start-up) wait for the writer instead of failing with "database is locked".
    #[test]
    fn sqlite_connections_open_while_migrations_run() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().expect("tempdir");
            let url = DatabaseUrl::parse(&format!("sqlite://{}/t.db", dir.path().display()))
                .expect("url");
            let manager = std::sync::Arc::new(DbManager {
                url,
                timeout: Duration::from_secs(5),
                read_only: false,
            });
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
