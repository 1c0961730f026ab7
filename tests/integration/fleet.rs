//! Several instances as a fleet: two real `kakao-login` processes on one PostgreSQL database
//! and one Redis, with one `SESSION_KEY`, behind no load balancer (the test plays it: the
//! browser's cookies go to whichever instance it asks, as a balancer without sticky sessions
//! would send them). Also what an operator watches from outside: JSON logs with request ids,
//! the metrics listener, and a graceful shutdown with a request in flight.
//!
//! The PostgreSQL cluster and the Redis are the test's own (like the fault tests); without
//! Debian's PostgreSQL server programs or `redis-server` these tests are ignored with a reason,
//! and under CI they fail instead.

use std::io::BufRead as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kakao_login::standin::{
    Consent, Endpoint, Fault, RunningStandIn, StandInConfig, TestUser, WebhookMethod,
};

use crate::support::{Browser, PgCluster, RedisServer, Resp};

const CLIENT_ID: &str = "fleet-rest-api-key";
const CLIENT_SECRET: &str = "fleet-client-secret";
const ADMIN_KEY: &str = "fleet-admin-key";
const APP_ID: i64 = 515_151;
const SESSION_KEY: &str =
    "fleet-session-key-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// One `kakao-login serve` process, killed when dropped; its stderr (the log) goes to a file.
struct Instance {
    base: String,
    child: Child,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Instance {
    /// Start an instance on its own port with `env` on top of the shared settings.
    fn start(port: u16, env: &[(&str, String)]) -> Instance {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("stderr.log");
        let stderr = std::fs::File::create(&log).expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_kakao-login"));
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("BIND", format!("127.0.0.1:{port}"))
            .env("DATA_DIR", dir.path())
            .env("CONFIG_DIR", "/nonexistent")
            .env("WORKERS", "1")
            .env("DATABASE_POOL_SIZE", "4")
            .env("RUST_LOG", "info")
            .env("LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(stderr);
        for (key, value) in env {
            command.env(key, value);
        }
        Instance {
            base: format!("http://127.0.0.1:{port}"),
            child: command.spawn().expect("start kakao-login"),
            log,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Wait until `/readyz` answers 200 (or the process ended: then its log says why).
    async fn ready(&mut self) {
        let client = awc::Client::default();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("instance exited with {status}: {}", self.log_text());
            }
            if let Ok(res) = client.get(self.url("/readyz")).send().await
                && res.status().as_u16() == 200
            {
                return;
            }
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("instance not ready in 30 s: {}", self.log_text());
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Every log line, each parsed as JSON (a line that is not JSON fails the test).
    fn log_lines(&self) -> Vec<serde_json::Value> {
        let file = std::fs::File::open(&self.log).expect("log");
        std::io::BufReader::new(file)
            .lines()
            .map(|line| {
                let line = line.expect("log line");
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
            })
            .collect()
    }

    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Wait for the process to end, at most `within`.
    fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                started.elapsed() < within,
                "still running {within:?} after SIGTERM: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The settings every instance of a fleet shares: one database, one Redis, one session key,
/// one Kakao app (the stand-in), one public address.
fn fleet_env(
    public_url: &str,
    database_url: &str,
    redis_url: Option<&str>,
    kakao: &RunningStandIn,
) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("PUBLIC_URL", public_url.to_owned()),
        ("DATABASE_URL", database_url.to_owned()),
        ("SESSION_KEY", SESSION_KEY.to_owned()),
        ("KAKAO_CLIENT_ID", CLIENT_ID.to_owned()),
        ("KAKAO_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
        ("KAKAO_APP_ID", APP_ID.to_string()),
        ("KAKAO_ADMIN_KEY", ADMIN_KEY.to_owned()),
        ("KAKAO_AUTH_BASE_URL", kakao.base_url.clone()),
        ("KAKAO_API_BASE_URL", kakao.base_url.clone()),
        ("KAKAO_OIDC", "true".to_owned()),
    ];
    if let Some(redis) = redis_url {
        env.push(("REDIS_URL", redis.to_owned()));
    }
    env
}

async fn standin(public_url: &str) -> RunningStandIn {
    kakao_login::standin::StandIn::start(StandInConfig {
        client_id: CLIENT_ID.into(),
        client_secret: Some(CLIENT_SECRET.into()),
        app_id: APP_ID,
        admin_key: Some(ADMIN_KEY.into()),
        redirect_uris: vec![format!("{public_url}/kakao/login/callback/")],
    })
    .await
    .expect("stand-in starts")
}

/// `url` with its scheme, host and port replaced by `base`'s: the balancer sending the
/// request to that instance.
fn on(base: &str, url: &str) -> String {
    let url = url::Url::parse(url).expect("url");
    match url.query() {
        Some(q) => format!("{base}{}?{q}", url.path()),
        None => format!("{base}{}", url.path()),
    }
}

/// Start a Kakao login on `start` and return the callback URL Kakao sends the browser back to
/// (agreeing as `kakao_id`).
async fn consented_callback(
    kakao: &RunningStandIn,
    browser: &Browser,
    start: &Instance,
    kakao_id: i64,
) -> String {
    let begun = browser.get(&start.url("/kakao/login/")).await;
    assert_eq!(begun.status, 302, "{}", begun.body);
    kakao.standin.set_auto_consent(Some(Consent::Agree {
        kakao_id,
        share_email: true,
    }));
    let at_kakao = browser.get(&begun.location()).await;
    kakao.standin.set_auto_consent(None);
    assert_eq!(at_kakao.status, 302, "{}", at_kakao.body);
    at_kakao.location()
}

async fn signed_in(browser: &Browser, at: &Instance) -> bool {
    browser.get(&at.url("/api/users/me/")).await.status == 200
}

async fn csrf(browser: &Browser, page: &str) -> String {
    let page: Resp = browser.get(page).await;
    page.input_value("csrf_token")
        .unwrap_or_else(|| panic!("no csrf token: {} {}", page.status, page.body))
}

#[actix_web::test]
#[cfg_attr(
    all(any(not(has_postgres_server), not(has_redis)), not(ci)),
    ignore = "PostgreSQL's server programs or redis-server are missing: the fleet tests did NOT \
              run (apt-get install postgresql redis-server)"
)]
async fn two_instances_share_sessions_logins_and_limits() {
    let pg = PgCluster::start();
    let redis = RedisServer::start();
    let (port_a, port_b, metrics_port) = (free_port(), free_port(), free_port());
    let public_url = format!("http://127.0.0.1:{port_a}");
    let kakao = standin(&public_url).await;
    let env = fleet_env(&public_url, &pg.admin_url(), Some(&redis.url), &kakao);
    let with_metrics = |mut env: Vec<(&'static str, String)>| {
        env.push(("METRICS_BIND", format!("127.0.0.1:{metrics_port}")));
        env
    };
    // Started together on an empty database: the migrations take turns.
    let mut a = Instance::start(port_a, &with_metrics(env.clone()));
    let mut b = Instance::start(port_b, &env);
    a.ready().await;
    b.ready().await;

    // A session made on A works on B.
    let person = kakao.standin.add_user(TestUser {
        nickname: Some("함께".into()),
        email: Some("fleet@example.com".into()),
        email_verified: true,
        email_valid: true,
    });
    let browser = Browser::new();
    let back = consented_callback(&kakao, &browser, &a, person).await;
    let done = browser.get(&on(&a.base, &back)).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(signed_in(&browser, &b).await, "A's session works on B");

    // The callback completed on A, replayed on B: refused, whoever sends it.
    let replay = browser.get(&on(&b.base, &back)).await;
    assert_eq!(replay.status, 400, "{}", replay.body);
    let stranger = Browser::new();
    assert_eq!(stranger.get(&on(&a.base, &back)).await.status, 400);
    // B refused it because the shared database knows the state was used, not only because
    // the browser's session no longer holds it.
    assert!(
        b.log_lines().iter().any(|l| l["msg"]
            .as_str()
            .is_some_and(|m| m.contains("event=auth.callback.rejected reason=Replayed"))),
        "{}",
        b.log_text()
    );

    // Sign-out on A ends the session on B, also for a copy of the cookie kept from before
    // (the browser itself forgets it).
    let kept = browser.clone_cookies();
    let token = csrf(&browser, &a.url("/kakao/logout/")).await;
    let out = browser
        .post_form(&a.url("/kakao/logout/"), &[("csrf_token", token.as_str())])
        .await;
    assert!(out.status == 303 || out.status == 200, "{}", out.body);
    assert!(!signed_in(&browser, &b).await, "signed out on B too");
    assert!(!signed_in(&kept, &b).await, "the old cookie is dead on B");

    // A login started on A finishes on B.
    let browser = Browser::new();
    let back = consented_callback(&kakao, &browser, &a, person).await;
    let done = browser.get(&on(&b.base, &back)).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(signed_in(&browser, &a).await);

    // Deactivation on B ends the session on A. The superuser is made on the command line and
    // claims their account with Kakao, on B.
    let out = Command::new(env!("CARGO_BIN_EXE_kakao-login"))
        .args([
            "createsuperuser",
            "--email",
            "boss@example.com",
            "--noinput",
        ])
        .env_clear()
        .env("DATABASE_URL", pg.admin_url())
        .env("CONFIG_DIR", "/nonexistent")
        .output()
        .expect("createsuperuser");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let boss = kakao.standin.add_user(TestUser {
        nickname: Some("대표".into()),
        email: Some("boss@example.com".into()),
        email_verified: true,
        email_valid: true,
    });
    let staff = Browser::new();
    let back = consented_callback(&kakao, &staff, &b, boss).await;
    assert_eq!(staff.get(&on(&b.base, &back)).await.status, 303);
    let me = browser.get(&a.url("/api/users/me/")).await;
    let user_id = me.json()["id"].as_i64().expect("id");
    let detail = b.url(&format!("/admin/users/{user_id}/"));
    let token = csrf(&staff, &detail).await;
    let res = staff
        .post_form(
            &b.url(&format!("/admin/users/{user_id}/deactivate/")),
            &[("csrf_token", token.as_str())],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert!(
        !signed_in(&browser, &a).await,
        "deactivated on B, signed out on A"
    );

    // The rate limits count across both: 40 login starts from one client, half on each, get
    // the one allowance of 30 (less the 3 logins above, plus at most what refills meanwhile),
    // not 30 each.
    let mut started = 0;
    for i in 0..40 {
        let at = if i % 2 == 0 { &a } else { &b };
        let res = Browser::new().get(&at.url("/kakao/login/")).await;
        match res.status {
            302 => started += 1,
            429 => {}
            other => panic!("login start answered {other}: {}", res.body),
        }
    }
    assert!((27..=31).contains(&started), "{started} of 40 started");

    // Kakao's unlink webhook reaches A.
    kakao
        .standin
        .set_webhook_targets(Some(a.url("/kakao/webhooks/unlink/")), None);
    let answer = kakao
        .standin
        .send_unlink_webhook(boss, "UNLINK_FROM_APPS", WebhookMethod::Post)
        .await
        .expect("delivered");
    assert_eq!(answer.status, 200, "{}", answer.body);

    // What A reports: metrics on its own listener, never on the public one.
    let scrape = Browser::new()
        .get(&format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await;
    assert_eq!(scrape.status, 200);
    for needle in [
        "kakao_login_sign_ins_total{flow=\"web\",outcome=\"created\"",
        "kakao_login_sign_ins_total{flow=\"web\",outcome=\"refused\",reason=\"state\"}",
        "kakao_login_rate_limit_refusals_total{limit=\"login_start\"}",
        "kakao_login_kakao_requests_total{endpoint=\"/oauth/token\",outcome=\"ok\"}",
        "kakao_login_http_requests_total{method=\"GET\",route=\"/kakao/login/\",status=\"302\"}",
        "kakao_login_db_pool_max_connections 4",
        "kakao_login_webhook_deliveries_total{outcome=\"applied\",webhook=\"unlink\"} 1",
        "kakao_login_db_pool_wait_seconds_count",
        "kakao_login_http_request_duration_seconds_bucket{route=\"/kakao/login/\"",
    ] {
        assert!(
            scrape.body.contains(needle),
            "{needle} not in:\n{}",
            scrape.body
        );
    }
    assert_eq!(Browser::new().get(&a.url("/metrics")).await.status, 404);

    // Every log line is JSON, and every line of a request carries its id.
    let lines = a.log_lines();
    let requests: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| {
            l["msg"]
                .as_str()
                .is_some_and(|m| m.starts_with("event=http "))
        })
        .collect();
    assert!(requests.len() > 20, "{} request lines", requests.len());
    for line in &requests {
        assert!(line["request_id"].is_string(), "no request id: {line}");
    }
    let login = lines
        .iter()
        .find(|l| {
            l["msg"]
                .as_str()
                .is_some_and(|m| m.starts_with("event=auth.login.success"))
        })
        .expect("a sign-in was logged on A");
    assert!(login["request_id"].is_string(), "{login}");
    drop(redis);
}

#[actix_web::test]
async fn request_ids_are_echoed_or_made() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let public_url = format!("http://127.0.0.1:{port}");
    let kakao = standin(&public_url).await;
    let db = format!("sqlite://{}/ids.db", dir.path().display());
    let mut app = Instance::start(port, &fleet_env(&public_url, &db, None, &kakao));
    app.ready().await;
    let browser = Browser::new();
    let kept = browser
        .get_with(&app.url("/healthz"), &[("x-request-id", "lb-7f3a:42")])
        .await;
    assert_eq!(kept.header("x-request-id"), Some("lb-7f3a:42"));
    let made = browser
        .get_with(&app.url("/healthz"), &[("x-request-id", "has space")])
        .await;
    let id = made.header("x-request-id").expect("an id").to_owned();
    assert_eq!(id.len(), 16, "{id}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    let none = browser.get(&app.url("/nope")).await;
    assert_eq!(none.status, 404);
    assert!(none.header("x-request-id").is_some());
    let lines = app.log_lines();
    assert!(
        lines.iter().any(|l| l["request_id"] == "lb-7f3a:42"
            && l["msg"]
                .as_str()
                .is_some_and(|m| m.contains("route=/healthz"))),
        "{lines:?}"
    );
}

#[actix_web::test]
async fn sigterm_drains_finishes_the_request_in_flight_and_exits_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let public_url = format!("http://127.0.0.1:{port}");
    let kakao = standin(&public_url).await;
    let db = format!("sqlite://{}/drain.db", dir.path().display());
    let mut env = fleet_env(&public_url, &db, None, &kakao);
    env.push(("SHUTDOWN_DRAIN_SECS", "1".to_owned()));
    env.push(("SHUTDOWN_TIMEOUT_SECS", "10".to_owned()));
    let mut app = Instance::start(port, &env);
    app.ready().await;

    // A sign-in whose code exchange takes 4 s at Kakao is in flight when SIGTERM comes.
    let person = kakao.standin.add_user(TestUser {
        nickname: Some("느림".into()),
        email: Some("slow@example.com".into()),
        email_verified: true,
        email_valid: true,
    });
    let browser = Browser::new();
    let back = consented_callback(&kakao, &browser, &app, person).await;
    kakao
        .standin
        .fail_next(Endpoint::Token, Fault::Delay(Duration::from_secs(4)), 1);
    let in_flight = {
        let url = back.clone();
        let browser = browser.clone_cookies();
        actix_web::rt::spawn(async move { browser.get(&url).await })
    };
    while kakao.standin.hits(Endpoint::Token) == 0 {
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    let signalled = Instant::now();
    app.terminate();
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    // Draining: still answering, but not ready.
    let ready = Browser::new().get(&app.url("/readyz")).await;
    assert_eq!(ready.status, 503, "{}", ready.body);
    // After the 1 s drain the listener is closed while the request is still in flight: new
    // connections are refused, and the process is still there.
    actix_web::rt::time::sleep(Duration::from_millis(1500)).await;
    let refused = awc::Client::default().get(app.url("/healthz")).send().await;
    assert!(
        refused.is_err(),
        "still accepting after the drain: {refused:?}"
    );
    assert!(
        app.child.try_wait().expect("wait").is_none(),
        "the process must wait for the request in flight"
    );
    let done = in_flight.await.expect("the request task");
    assert_eq!(
        done.status, 303,
        "the request in flight completed: {}",
        done.body
    );
    let status = app.wait_exit(Duration::from_secs(12));
    assert!(status.success(), "exit {status}: {}", app.log_text());
    assert!(signalled.elapsed() < Duration::from_secs(12));
    let log = app.log_text();
    assert!(log.contains("event=server.draining"), "{log}");
    assert!(log.contains("event=server.stopped"), "{log}");
}
