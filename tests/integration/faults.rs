//! Faults of the stores the app needs, each test with a server of its own (a PostgreSQL
//! cluster made with `initdb`, a `redis-server`, a locked SQLite file): connections cut,
//! servers stopped and started again, a server missing at start. Every database route
//! answers 503 with `Retry-After` while a store is away, never 500, and the app recovers by
//! itself when it is back.

use std::time::{Duration, Instant};

use crate::support::{Browser, PgCluster, RedisServer, TestApp, TestDb};

/// What a signed-in person and the API see: (page status, API status).
async fn statuses(app: &TestApp, browser: &Browser) -> (u16, u16) {
    let page = browser.get(&app.url("/profile/")).await;
    let api = browser.get(&app.url("/api/users/me/")).await;
    (page.status, api.status)
}

/// An app on a PostgreSQL cluster of its own, and a person signed in to it.
async fn app_on_own_cluster(cluster: &PgCluster) -> (TestApp, Browser) {
    let db = TestDb::on_postgres(&cluster.admin_url());
    let app = TestApp::spawn_on(
        db,
        &[("database_timeout_secs", "1"), ("database_pool_size", "4")],
    )
    .await;
    let (browser, _) = app.signed_in("장애", "fault@example.com").await;
    // Use every pooled connection once, so that all of them are there to be cut.
    for _ in 0..4 {
        assert_eq!(statuses(&app, &browser).await, (200, 200));
    }
    (app, browser)
}

#[actix_web::test]
#[cfg_attr(
    all(not(has_postgres_server), not(ci)),
    ignore = "PostgreSQL's server programs are not installed: the PostgreSQL fault tests did \
              NOT run (apt-get install postgresql; under CI they must run)"
)]
async fn after_backends_are_terminated_the_next_request_succeeds() {
    let cluster = PgCluster::start();
    let (app, browser) = app_on_own_cluster(&cluster).await;
    let name = app.db.pg_name().expect("a PostgreSQL database").to_owned();
    for round in 0..5 {
        let ended = cluster.terminate_backends(&name);
        assert!(ended > 0, "round {round}: the app had connections to cut");
        // Straight away, and again after the pool's connections have sat idle.
        assert_eq!(statuses(&app, &browser).await, (200, 200), "round {round}");
        cluster.terminate_backends(&name);
        actix_web::rt::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            statuses(&app, &browser).await,
            (200, 200),
            "round {round}, idle"
        );
    }
}

/// A server that hangs without closing its connections (a frozen host, a partition that drops
/// packets): requests get 503 in bounded time instead of waiting on TCP, and the app recovers
/// once it answers again.
#[actix_web::test]
#[cfg_attr(
    all(not(has_postgres_server), not(ci)),
    ignore = "PostgreSQL's server programs are not installed: the PostgreSQL fault tests did \
              NOT run (apt-get install postgresql; under CI they must run)"
)]
async fn while_postgresql_hangs_requests_answer_503_in_bounded_time_then_recover() {
    let cluster = PgCluster::start();
    let (app, browser) = app_on_own_cluster(&cluster).await;
    // Past the idle-ping threshold, so the checkout's ping meets the frozen server.
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    let frozen = cluster.freeze();
    for path in ["/api/users/me/", "/profile/"] {
        let started = Instant::now();
        let res = browser.get(&app.url(path)).await;
        assert_eq!(res.status, 503, "{path}: {}", res.body);
        assert!(res.header("retry-after").is_some(), "{path}");
        let took = started.elapsed();
        assert!(
            took <= kakao_login::db::WORK_TIMEOUT + Duration::from_secs(2),
            "{path} answered in {took:?}"
        );
    }
    drop(frozen);
    let thawed = Instant::now();
    loop {
        if statuses(&app, &browser).await == (200, 200) {
            break;
        }
        assert!(
            thawed.elapsed() < Duration::from_secs(15),
            "no recovery within 15 s of the server answering again"
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_web::test]
#[cfg_attr(
    all(not(has_postgres_server), not(ci)),
    ignore = "PostgreSQL's server programs are not installed: the PostgreSQL fault tests did \
              NOT run (apt-get install postgresql; under CI they must run)"
)]
async fn while_postgresql_is_down_every_database_route_answers_503_then_recovers() {
    let cluster = PgCluster::start();
    let (app, browser) = app_on_own_cluster(&cluster).await;
    let staff = app.user_by_email("fault@example.com").expect("user");
    app.change(
        staff.id,
        crate::support::UserPatch {
            is_staff: Some(true),
            ..Default::default()
        },
    );
    let kakao_id = app.kakao_id(staff.id).expect("linked");
    let token = app.kakao.standin.issue_access_token(kakao_id);
    cluster.down();
    for path in [
        "/profile/",
        "/admin/",
        "/admin/users/",
        "/admin/users.csv",
        "/api/users/me/",
        "/api/users/",
        "/readyz",
    ] {
        let started = Instant::now();
        let res = browser.get(&app.url(path)).await;
        assert_eq!(res.status, 503, "{path}: {}", res.body);
        assert!(res.header("retry-after").is_some(), "{path}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{path} answered within the pool's timeout"
        );
        if path.starts_with("/api/") {
            assert_eq!(res.json()["error"], "service_unavailable", "{path}");
        } else if path != "/readyz" && path != "/admin/users.csv" {
            assert_eq!(
                res.error_code().as_deref(),
                Some("service_unavailable"),
                "{path}"
            );
        }
    }
    // A Kakao callback and a bearer call, too.
    let anyone = app.browser();
    let callback = app
        .consented_callback(&anyone, app.kakao_user("새", "new@example.com"))
        .await;
    assert_eq!(anyone.get(&callback).await.status, 503);
    let bearer = Browser::new()
        .get_with(
            &app.url("/api/users/me/"),
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
    assert_eq!(bearer.status, 503, "{}", bearer.body);
    assert_eq!(bearer.json()["error"], "service_unavailable");

    cluster.up();
    assert_eq!(
        statuses(&app, &browser).await,
        (200, 200),
        "the first request after"
    );
    assert_eq!(browser.get(&app.url("/readyz")).await.status, 200);
}

/// A write that waits out SQLite's busy timeout behind another process's writer answers 503,
/// and so does one queued behind it in this process: each waits at most as long.
#[actix_web::test]
async fn a_write_behind_a_long_sqlite_lock_answers_503() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/busy.db", dir.path().display());
    let db = TestDb::sqlite_at(&url, dir);
    let app = TestApp::spawn_on(db, &[]).await;
    let (browser, _) = app.signed_in("바쁨", "busy@example.com").await;
    let token = app.csrf(&browser, "/profile/").await;
    // Another process's writer holds the lock for longer than busy_timeout (5 s).
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (locked, is_locked) = std::sync::mpsc::channel::<()>();
    let path = url.trim_start_matches("sqlite://").to_owned();
    let holder = std::thread::spawn(move || {
        use diesel::Connection;
        use diesel::connection::SimpleConnection;
        let mut conn = diesel::SqliteConnection::establish(&path).expect("open");
        conn.batch_execute("BEGIN IMMEDIATE").expect("lock");
        locked.send(()).expect("tell");
        let _ = released.recv_timeout(Duration::from_secs(30));
        conn.batch_execute("ROLLBACK").expect("unlock");
    });
    is_locked.recv().expect("locked");
    let started = Instant::now();
    let url = app.url("/profile/");
    let form = [
        ("csrf_token", token.as_str()),
        ("name", "기다림"),
        ("age", ""),
    ];
    let (res, queued) = futures_util::future::join(
        browser.post_form(&url, &form),
        browser.post_form(&url, &form),
    )
    .await;
    for res in [res, queued] {
        assert_eq!(res.status, 503, "{}", res.body);
        assert!(res.header("retry-after").is_some());
    }
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "{:?}",
        started.elapsed()
    );
    release.send(()).ok();
    holder.join().ok();
    let saved = browser
        .post_form(
            &app.url("/profile/"),
            &[("csrf_token", &token), ("name", "기다림"), ("age", "")],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
}

#[actix_web::test]
#[cfg_attr(
    all(not(has_redis), not(ci)),
    ignore = "redis-server is not installed: the Redis fault tests did NOT run \
              (apt-get install redis-server; under CI they must run)"
)]
async fn sessions_work_again_within_3_s_of_redis_coming_back() {
    let mut redis = RedisServer::start();
    let app = TestApp::spawn_with(&[("redis_url", &redis.url)]).await;
    let (browser, _) = app.signed_in("레디스", "redis@example.com").await;
    assert_eq!(browser.get(&app.url("/profile/")).await.status, 200);
    redis.stop();
    assert_eq!(browser.get(&app.url("/profile/")).await.status, 503);
    assert_eq!(app.browser().get(&app.url("/readyz")).await.status, 503);
    // Away for a while, so that the client's reconnect schedule has backed off.
    actix_web::rt::time::sleep(Duration::from_secs(4)).await;
    let redis = redis.start_again();
    let back = Instant::now();
    // Redis keeps nothing on disk here: the old session is gone. A login start stores a
    // session, so it works only with Redis.
    loop {
        let res = app.browser().get(&app.url("/kakao/login/")).await;
        if res.status == 302 {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(3),
            "still {}",
            res.status
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    let (again, _) = app.signed_in("다시", "again@example.com").await;
    assert_eq!(again.get(&app.url("/profile/")).await.status, 200);
    assert_eq!(app.browser().get(&app.url("/readyz")).await.status, 200);
    drop(redis);
}

/// Redis missing at start: `serve` gives up with a message and a non-zero exit, in bounded
/// time (as it does when PostgreSQL is missing), instead of hanging on a bound port.
#[test]
fn serve_with_redis_missing_exits_with_a_message() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kakao-login"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("BIND", "127.0.0.1:0")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/r.db", dir.path().display()),
        )
        .env("DATA_DIR", dir.path())
        .env("CONFIG_DIR", "/nonexistent")
        .env("REDIS_URL", format!("redis://127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run kakao-login");
    // Bounded: a regression fails here instead of hanging the suite.
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve still running after 15 s with Redis missing");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("stderr");
    assert!(!status.success());
    assert!(stderr.contains("Redis"), "{stderr}");
}

/// Work whose connection is lost is run once more only if it had not committed anything: a
/// write that committed and then lost its connection is reported (503), never repeated.
#[actix_web::test]
#[cfg_attr(
    all(not(has_postgres_server), not(ci)),
    ignore = "PostgreSQL's server programs are not installed: the PostgreSQL fault tests did \
              NOT run (apt-get install postgresql; under CI they must run)"
)]
async fn work_that_committed_is_not_run_again_when_its_connection_is_lost() {
    use diesel::connection::SimpleConnection;
    use kakao_login::db::{self, DbError};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let cluster = PgCluster::start();
    let test_db = TestDb::on_postgres(&cluster.admin_url());
    let pool = test_db.pool();
    // The connection ends itself, as an administrator's pg_terminate_backend would.
    fn lose(conn: &mut db::DbConnection) -> Result<(), DbError> {
        conn.batch_execute("SELECT pg_terminate_backend(pg_backend_pid())")
            .map_err(DbError::from)
    }
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let wrote = db::run(&pool, move |conn| {
        counted.fetch_add(1, Ordering::SeqCst);
        db::transaction_with_retry(
            conn,
            |_: &DbError| false,
            |c| {
                c.batch_execute(
                    "CREATE TABLE IF NOT EXISTS once (n int); INSERT INTO once VALUES (1)",
                )
                .map_err(DbError::from)
            },
        )?;
        lose(conn)
    })
    .await;
    assert!(wrote.is_err_and(|e| e.is_unavailable()));
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the write was not repeated");

    // Work that wrote nothing is run once more, and succeeds on a fresh connection.
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let read = db::run(&pool, move |conn| {
        if counted.fetch_add(1, Ordering::SeqCst) == 0 {
            lose(conn)?;
        }
        db::ping(conn)
    })
    .await;
    assert!(read.is_ok(), "{read:?}");
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}
