//! `db::read`: on SQLite, work that only reads runs on the calling thread on a read-only
//! connection; work that writes is run again through the blocking pool, and saved there.

use diesel::prelude::*;
use kakao_login::db::schema::users;
use kakao_login::db::{self, DbError};

use crate::support::{TestDb, pool_create_user};

#[actix_web::test]
async fn reads_stay_on_the_calling_thread_and_writes_go_through_the_pool() {
    let db = TestDb::new();
    let pool = db.pool();
    let user = pool_create_user(&pool, "thread@example.com", "처음");
    if let Some(readers) = pool.readers() {
        // They open in the background when the pool is built.
        for _ in 0..500 {
            if readers.state().idle_connections > 0 {
                break;
            }
            actix_web::rt::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
    let here = std::thread::current().id();

    let (name, read_on) = db::read(&pool, move |conn| {
        let name: Option<String> = users::table
            .find(user.id)
            .select(users::name)
            .first(conn)
            .map_err(DbError::from)?;
        Ok::<_, DbError>((name, std::thread::current().id()))
    })
    .await
    .expect("read");
    assert_eq!(name.as_deref(), Some("처음"));
    assert_eq!(
        read_on == here,
        pool.readers().is_some(),
        "only SQLite reads on the calling thread"
    );

    let attempts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = attempts.clone();
    let written_on = db::read(&pool, move |conn| {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        diesel::update(users::table.find(user.id))
            .set(users::name.eq(Some("나중")))
            .execute(conn)
            .map_err(DbError::from)?;
        Ok::<_, DbError>(std::thread::current().id())
    })
    .await
    .expect("the write is saved, not refused");
    assert_ne!(written_on, here, "the write ran on a blocking thread");
    let expected_attempts = if pool.readers().is_some() { 2 } else { 1 };
    assert_eq!(
        attempts.load(std::sync::atomic::Ordering::SeqCst),
        expected_attempts,
        "SQLite's read-only attempt was refused before the pool's"
    );
    let saved: Option<String> = users::table
        .find(user.id)
        .select(users::name)
        .first(&mut **pool.get().expect("connection"))
        .expect("reload");
    assert_eq!(saved.as_deref(), Some("나중"));
}

/// Writers of one process take turns before SQLite's lock (a mutex per database): many at
/// once all commit, and a transaction inside another keeps the outer one's turn instead of
/// waiting for itself.
#[actix_web::test]
async fn concurrent_and_nested_writers_all_commit() {
    let db = TestDb::new();
    let pool = db.pool();
    let user = pool_create_user(&pool, "turns@example.com", "차례");
    let writes = (0..8).map(|_| {
        let pool = pool.clone();
        async move {
            for _ in 0..10 {
                db::run(&pool, move |conn| {
                    db::transaction_with_retry(conn, DbError::is_busy, |conn| {
                        db::transaction_with_retry(conn, DbError::is_busy, |conn| {
                            diesel::update(users::table.find(user.id))
                                .set(users::age.eq(users::age + 1))
                                .execute(conn)
                                .map_err(DbError::from)
                        })
                    })
                })
                .await
                .expect("write");
            }
        }
    });
    diesel::update(users::table.find(user.id))
        .set(users::age.eq(Some(0)))
        .execute(&mut **pool.get().expect("connection"))
        .expect("start at 0");
    futures_util::future::join_all(writes).await;
    let age: Option<i32> = users::table
        .find(user.id)
        .select(users::age)
        .first(&mut **pool.get().expect("connection"))
        .expect("reload");
    assert_eq!(age, Some(80), "every write committed once");
}

/// On SQLite, `run` checkpoints the WAL beside the writers every so many writes (SQLite's own
/// checkpoint would run inside one writer's COMMIT, all the others waiting for it). Seen in
/// the database file itself, opened as immutable so that the WAL is not read: it has the
/// writes up to the last checkpoint, not only those before the first.
#[actix_web::test]
async fn sqlite_writes_reach_the_database_file_by_checkpoints_beside_the_writers() {
    let db = TestDb::new();
    let Some(path) = db.url.strip_prefix("sqlite://") else {
        return; // PostgreSQL has no WAL of ours to checkpoint.
    };
    let pool = db.pool();
    let user = pool_create_user(&pool, "checkpoint@example.com", "기록");
    // The user's age as the database file has it (a read torn by a checkpoint copying pages
    // meanwhile is an error, and is tried again).
    let in_file = || -> Option<i32> {
        let mut file =
            diesel::sqlite::SqliteConnection::establish(&format!("file:{path}?immutable=1"))
                .ok()?;
        users::table
            .find(user.id)
            .select(users::age)
            .first::<Option<i32>>(&mut file)
            .ok()
            .flatten()
    };
    for age in 1..=150 {
        db::run(&pool, move |conn| {
            db::transaction_with_retry(conn, DbError::is_busy, |conn| {
                diesel::update(users::table.find(user.id))
                    .set(users::age.eq(Some(age)))
                    .execute(conn)
                    .map_err(DbError::from)
            })
        })
        .await
        .expect("write");
    }
    // The checkpoint runs beside the writer that asked for it, which does not wait for it.
    let mut seen = None;
    for _ in 0..200 {
        seen = in_file();
        if seen.is_some_and(|age| age >= 90) {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let age = seen.expect("a checkpoint copied the writes into the file");
    assert!(
        (90..=150).contains(&age),
        "checkpointed at about the 100th write, not only at close: {age}"
    );
}
