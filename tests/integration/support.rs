//! Test support: a real app on 127.0.0.1:0 with its own database and its own Kakao stand-in,
//! and a small browser (cookie jar, no automatic redirects).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::time::Duration;

use diesel::prelude::*;
use kakao_login::db::DbPool;
use kakao_login::standin::{Consent, RunningStandIn, StandInConfig, TestUser};
use kakao_login::users::audit::AuditEntry;
use kakao_login::users::changes;
pub use kakao_login::users::changes::UserPatch;
use kakao_login::users::manager::CreateUser;
use kakao_login::users::model::User;
use kakao_login::users::permissions::Actor;
pub use kakao_login::users::permissions::Role;
use kakao_login::{Application, Settings};

pub const CLIENT_ID: &str = "test-rest-api-key";
pub const CLIENT_SECRET: &str = "FAKESECRET-test-client-secret";
pub const APP_ID: i64 = 424_242;
pub const ADMIN_KEY: &str = "FAKEADMIN-test-admin-key";
pub const SESSION_KEY: &str =
    "test-session-key-test-session-key-test-session-key-test-session-key-0123456789";

/// A database for one test: a temporary SQLite file, or, when `TEST_DATABASE_URL` names a
/// PostgreSQL server, a fresh database there that is dropped afterwards.
pub struct TestDb {
    pub url: String,
    pg_admin: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

impl TestDb {
    pub fn new() -> TestDb {
        match std::env::var("TEST_DATABASE_URL") {
            Ok(admin) if admin.starts_with("postgres") => TestDb::on_postgres(&admin),
            Ok(other) if !other.is_empty() => {
                panic!("TEST_DATABASE_URL must be a postgres:// URL, not {other:?}")
            }
            _ => {
                let dir = tempfile::tempdir().expect("tempdir");
                let path = dir.path().join("test.db");
                TestDb {
                    url: format!("sqlite://{}", path.display()),
                    pg_admin: None,
                    _dir: dir,
                }
            }
        }
    }

    /// A fresh database on the PostgreSQL server `admin` (a URL that may create databases),
    /// dropped when the test ends.
    pub fn on_postgres(admin: &str) -> TestDb {
        // Before the first PostgreSQL connection of the test process (see `init_crypto`).
        kakao_login::app::init_crypto();
        let name = format!(
            "kl_test_{}",
            kakao_login::token::random_token()
                .to_lowercase()
                .replace(['-', '_'], "")
                .chars()
                .take(16)
                .collect::<String>()
        );
        let mut conn = PgConnection::establish(admin)
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is unreachable: {e}"));
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .expect("create test database");
        let mut url = url::Url::parse(admin).expect("a PostgreSQL URL");
        url.set_path(&format!("/{name}"));
        TestDb {
            url: url.to_string(),
            pg_admin: Some((admin.to_owned(), name)),
            _dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// The SQLite file at `url`, kept in `dir` (a test that opens the file itself).
    pub fn sqlite_at(url: &str, dir: tempfile::TempDir) -> TestDb {
        TestDb {
            url: url.to_owned(),
            pg_admin: None,
            _dir: dir,
        }
    }

    /// The name of this database, when it is a PostgreSQL one.
    pub fn pg_name(&self) -> Option<&str> {
        self.pg_admin.as_ref().map(|(_, name)| name.as_str())
    }

    /// A migrated pool on this database (for tests of the layers below HTTP).
    pub fn pool(&self) -> DbPool {
        let pool =
            kakao_login::db::build_pool(&self.url, 4, Duration::from_secs(10)).expect("pool");
        let mut conn = pool.get().expect("connection");
        kakao_login::db::run_migrations(&mut conn).expect("migrations");
        pool
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = &self.pg_admin
            && let Ok(mut conn) = PgConnection::establish(admin)
        {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn);
        }
    }
}

/// A running app with its stand-in and database.
pub struct TestApp {
    pub base: String,
    pub kakao: RunningStandIn,
    pub db: TestDb,
    pub pool: DbPool,
    pub data_dir: tempfile::TempDir,
    handle: actix_web::dev::ServerHandle,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(&[]).await
    }

    /// Start with extra settings overrides (key, value).
    pub async fn spawn_with(extra: &[(&str, &str)]) -> TestApp {
        Self::spawn_on(TestDb::new(), extra).await
    }

    /// Start on database `db`, with extra settings overrides.
    pub async fn spawn_on(db: TestDb, extra: &[(&str, &str)]) -> TestApp {
        let _ = env_logger::builder().is_test(true).try_init();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let redirect_uri = format!("{base}/kakao/login/callback/");
        let kakao = kakao_login::standin::StandIn::start(StandInConfig {
            client_id: CLIENT_ID.into(),
            client_secret: Some(CLIENT_SECRET.into()),
            app_id: APP_ID,
            admin_key: Some(ADMIN_KEY.into()),
            redirect_uris: vec![redirect_uri],
        })
        .await
        .expect("stand-in starts");
        kakao
            .standin
            .set_logout_redirect_uris(vec![format!("{base}/kakao/logout/callback/")]);
        kakao.standin.set_webhook_targets(
            Some(format!("{base}/kakao/webhooks/unlink/")),
            Some(format!("{base}/kakao/webhooks/events/")),
        );
        let data_dir = tempfile::tempdir().expect("tempdir");
        let data_dir_str = data_dir.path().display().to_string();
        let app_id = APP_ID.to_string();
        let mut overrides: Vec<(&str, &str)> = vec![
            ("bind", "127.0.0.1:0"),
            ("public_url", &base),
            ("database_url", &db.url),
            ("database_pool_size", "8"),
            ("data_dir", &data_dir_str),
            ("workers", "2"),
            ("session_key", SESSION_KEY),
            ("kakao_client_id", CLIENT_ID),
            ("kakao_client_secret", CLIENT_SECRET),
            ("kakao_app_id", &app_id),
            ("kakao_admin_key", ADMIN_KEY),
            ("kakao_auth_base_url", &kakao.base_url),
            ("kakao_api_base_url", &kakao.base_url),
            ("kakao_timeout_ms", "3000"),
            ("kakao_connect_timeout_ms", "1000"),
            // The stand-in signs ID tokens: every test signs in through OpenID Connect unless
            // it turns it off.
            ("kakao_oidc", "true"),
        ];
        overrides.extend_from_slice(extra);
        let settings = Settings::development_with(&overrides).expect("settings");
        let app = Application::build_with_listener(settings, listener)
            .await
            .expect("app builds");
        let pool = app.pool().clone();
        let handle = app.handle();
        actix_web::rt::spawn(app.run());
        TestApp {
            base,
            kakao,
            db,
            pool,
            data_dir,
            handle,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn browser(&self) -> Browser {
        Browser::new()
    }

    /// A Kakao account at the stand-in with a verified, valid email.
    pub fn kakao_user(&self, nickname: &str, email: &str) -> i64 {
        self.kakao.standin.add_user(TestUser {
            nickname: Some(nickname.into()),
            email: Some(email.into()),
            email_verified: true,
            email_valid: true,
        })
    }

    /// Start a login in `browser` and follow it through the stand-in (which answers with
    /// `consent` straight away) back to the callback; returns the callback's answer.
    pub async fn login_as(&self, browser: &Browser, consent: Consent, next: Option<&str>) -> Resp {
        let authorize = self.start_login(browser, next).await;
        let back = self.authorize_with(browser, &authorize, consent).await;
        browser.get(&back).await
    }

    /// Log in as `kakao_id`, agreeing at Kakao and sharing the email; returns the callback's
    /// answer.
    pub async fn login_agreeing(
        &self,
        browser: &Browser,
        kakao_id: i64,
        next: Option<&str>,
    ) -> Resp {
        let consent = Consent::Agree {
            kakao_id,
            share_email: true,
        };
        self.login_as(browser, consent, next).await
    }

    /// `GET /kakao/login/`; returns Kakao's authorize URL it redirected to.
    pub async fn start_login(&self, browser: &Browser, next: Option<&str>) -> String {
        let path = match next {
            Some(n) => format!(
                "/kakao/login/?next={}",
                url::form_urlencoded::byte_serialize(n.as_bytes()).collect::<String>()
            ),
            None => "/kakao/login/".into(),
        };
        let start = browser.get(&self.url(&path)).await;
        assert_eq!(start.status, 302, "login start redirects: {}", start.body);
        start.location()
    }

    /// Visit the authorize URL with auto-consent; returns the callback URL Kakao sent us to.
    pub async fn authorize_with(
        &self,
        browser: &Browser,
        authorize: &str,
        consent: Consent,
    ) -> String {
        self.kakao.standin.set_auto_consent(Some(consent));
        let at_kakao = browser.get(authorize).await;
        self.kakao.standin.set_auto_consent(None);
        assert_eq!(
            at_kakao.status, 302,
            "stand-in redirects back: {}",
            at_kakao.body
        );
        at_kakao.location()
    }

    /// Start a login in `browser` and agree at Kakao as `kakao_id` (sharing the email);
    /// returns the callback URL Kakao sent the browser back to.
    pub async fn consented_callback(&self, browser: &Browser, kakao_id: i64) -> String {
        let authorize = self.start_login(browser, None).await;
        self.authorize_with(
            browser,
            &authorize,
            Consent::Agree {
                kakao_id,
                share_email: true,
            },
        )
        .await
    }

    /// Sign a new Kakao user in; returns their browser and Kakao id.
    pub async fn signed_in(&self, nickname: &str, email: &str) -> (Browser, i64) {
        let kakao_id = self.kakao_user(nickname, email);
        let browser = self.browser();
        let done = self.login_agreeing(&browser, kakao_id, None).await;
        assert_eq!(done.status, 303, "sign-in succeeds: {}", done.body);
        (browser, kakao_id)
    }

    /// A person of `role`, signed in: they sign up through Kakao as anyone does, then the
    /// operator raises their flags through the change service.
    pub async fn signed_in_as(&self, role: Role, email: &str) -> (Browser, User) {
        let nickname = email.split('@').next().unwrap_or("x").to_owned();
        let (browser, _) = self.signed_in(&nickname, email).await;
        let user = self.user_by_email(email).expect("signed up");
        let user = match role {
            Role::Member => user,
            Role::Staff | Role::Superuser => self.change(
                user.id,
                UserPatch {
                    is_staff: Some(true),
                    is_superuser: Some(role == Role::Superuser),
                    ..UserPatch::default()
                },
            ),
        };
        (browser, user)
    }

    /// The CSRF token of `browser`'s session, read from the form on `path`.
    pub async fn csrf(&self, browser: &Browser, path: &str) -> String {
        let page = browser.get(&self.url(path)).await;
        page.input_value("csrf_token")
            .unwrap_or_else(|| panic!("no csrf token on {path}: {} {}", page.status, page.body))
    }

    /// Create a user as the operator would (provider `local`), through the change service.
    pub fn create_user(&self, email: &str, name: &str) -> User {
        pool_create_user(&self.pool, email, name)
    }

    /// Change a user as the operator would, through the change service.
    pub fn change(&self, id: i64, patch: UserPatch) -> User {
        let mut conn = self.conn();
        changes::update_user(&mut conn, &Actor::Cli, id, &patch)
            .expect("change")
            .user
    }

    pub fn conn(&self) -> kakao_login::db::PooledDb {
        self.pool.get().expect("connection")
    }

    pub fn users(&self) -> Vec<User> {
        use kakao_login::db::schema::users;
        let mut conn = self.conn();
        users::table
            .order(users::id)
            .load::<User>(&mut **conn)
            .expect("users")
    }

    pub fn user(&self, id: i64) -> Option<User> {
        self.users().into_iter().find(|u| u.id == id)
    }

    pub fn user_by_email(&self, email: &str) -> Option<User> {
        self.users().into_iter().find(|u| u.email == email)
    }

    /// The Kakao id linked to user `id`, if any.
    pub fn kakao_id(&self, id: i64) -> Option<i64> {
        use kakao_login::db::schema::social_accounts;
        let mut conn = self.conn();
        social_accounts::table
            .filter(social_accounts::user_id.eq(id))
            .select(social_accounts::uid)
            .first::<i64>(&mut **conn)
            .optional()
            .expect("social account")
    }

    /// Every audit row, oldest first.
    pub fn audit_rows(&self) -> Vec<AuditEntry> {
        audit_rows(&self.pool)
    }

    /// The newest audit row's id: `audit_since` it lists what came after.
    pub fn audit_mark(&self) -> i64 {
        self.audit_rows().last().map_or(0, |e| e.id)
    }

    /// The audit rows written after `mark`, oldest first.
    pub fn audit_since(&self, mark: i64) -> Vec<AuditEntry> {
        self.audit_rows()
            .into_iter()
            .filter(|e| e.id > mark)
            .collect()
    }
}

/// Create a user as the operator would, through the change service, on `pool`.
pub fn pool_create_user(pool: &DbPool, email: &str, name: &str) -> User {
    let mut conn = pool.get().expect("connection");
    changes::create_user(
        &mut conn,
        &Actor::Cli,
        &CreateUser {
            email: email.into(),
            name: Some(name.into()),
            provider: "local".into(),
            ..CreateUser::default()
        },
        Role::Member,
    )
    .expect("create user")
}

/// Every audit row on `pool`, oldest first.
pub fn audit_rows(pool: &DbPool) -> Vec<AuditEntry> {
    use kakao_login::db::schema::audit_log;
    let mut conn = pool.get().expect("connection");
    audit_log::table
        .order(audit_log::id)
        .load::<AuditEntry>(&mut **conn)
        .expect("audit rows")
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        let kakao = self.kakao.handle.clone();
        actix_web::rt::spawn(async move {
            handle.stop(false).await;
            kakao.stop(false).await;
        });
    }
}

/// One answer, fully read.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: BTreeMap<String, Vec<String>>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .and_then(|v| v.first())
            .map(String::as_str)
    }

    pub fn location(&self) -> String {
        self.header("location")
            .unwrap_or_else(|| panic!("no Location in {} answer: {}", self.status, self.body))
            .to_owned()
    }

    /// The `data-error` code of an error page.
    pub fn error_code(&self) -> Option<String> {
        let at = self.body.find("data-error=\"")? + "data-error=\"".len();
        let end = self.body[at..].find('"')?;
        Some(self.body[at..at + end].to_owned())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }

    /// The value of a hidden input on the page.
    pub fn input_value(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let at = self.body.find(&marker)? + marker.len();
        let end = self.body[at..].find('"')?;
        Some(self.body[at..at + end].to_owned())
    }
}

/// A browser without JavaScript: keeps cookies, never follows redirects by itself.
pub struct Browser {
    client: awc::Client,
    pub cookies: RefCell<BTreeMap<String, String>>,
}

impl Browser {
    pub fn new() -> Browser {
        Browser {
            client: awc::Client::builder()
                .disable_redirects()
                .timeout(Duration::from_secs(30))
                .finish(),
            cookies: RefCell::new(BTreeMap::new()),
        }
    }

    fn cookie_header(&self) -> Option<String> {
        let jar = self.cookies.borrow();
        if jar.is_empty() {
            return None;
        }
        Some(
            jar.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; "),
        )
    }

    async fn read(
        &self,
        mut res: awc::ClientResponse<
            impl futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>>
            + Unpin,
        >,
    ) -> Resp {
        let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, value) in res.headers() {
            headers
                .entry(name.as_str().to_ascii_lowercase())
                .or_default()
                .push(value.to_str().unwrap_or_default().to_owned());
        }
        for set in headers.get("set-cookie").cloned().unwrap_or_default() {
            let first = set.split(';').next().unwrap_or_default();
            if let Some((name, value)) = first.split_once('=') {
                let expired = set.to_ascii_lowercase().contains("max-age=0") || value.is_empty();
                let mut jar = self.cookies.borrow_mut();
                if expired {
                    jar.remove(name.trim());
                } else {
                    jar.insert(name.trim().to_owned(), value.trim().to_owned());
                }
            }
        }
        let body = res.body().limit(4 * 1024 * 1024).await.expect("body");
        Resp {
            status: res.status().as_u16(),
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    pub async fn get(&self, url: &str) -> Resp {
        self.get_with(url, &[]).await
    }

    pub async fn get_with(&self, url: &str, headers: &[(&str, &str)]) -> Resp {
        let mut req = self.client.get(url);
        if let Some(cookie) = self.cookie_header() {
            req = req.insert_header(("cookie", cookie));
        }
        for (k, v) in headers {
            req = req.insert_header((*k, *v));
        }
        let res = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        self.read(res).await
    }

    pub async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Resp {
        self.post_form_with(url, form, &[]).await
    }

    pub async fn post_form_with(
        &self,
        url: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = self.client.post(url);
        if let Some(cookie) = self.cookie_header() {
            req = req.insert_header(("cookie", cookie));
        }
        for (k, v) in headers {
            req = req.insert_header((*k, *v));
        }
        let res = req
            .send_form(&form.to_vec())
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        self.read(res).await
    }

    /// Any method with an optional raw body and headers (for the JSON API).
    pub async fn request(
        &self,
        method: &str,
        url: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let method = awc::http::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.client.request(method, url);
        if let Some(cookie) = self.cookie_header() {
            req = req.insert_header(("cookie", cookie));
        }
        for (k, v) in headers {
            req = req.insert_header((*k, *v));
        }
        let res = match body {
            Some(b) => req.send_body(b.to_owned()).await,
            None => req.send().await,
        }
        .unwrap_or_else(|e| panic!("{url}: {e}"));
        self.read(res).await
    }

    /// Any method with a body of raw bytes (invalid UTF-8 included) and headers.
    pub async fn request_bytes(
        &self,
        method: &str,
        url: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let method = awc::http::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.client.request(method, url);
        if let Some(cookie) = self.cookie_header() {
            req = req.insert_header(("cookie", cookie));
        }
        for (k, v) in headers {
            req = req.insert_header((*k, *v));
        }
        let res = req
            .send_body(body)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        self.read(res).await
    }

    /// A copy of this browser's cookies (an attacker's saved cookie).
    pub fn clone_cookies(&self) -> Browser {
        let other = Browser::new();
        *other.cookies.borrow_mut() = self.cookies.borrow().clone();
        other
    }
}

/// Query parameters of a URL.
pub fn query_of(url: &str) -> BTreeMap<String, String> {
    url::Url::parse(url)
        .expect("url")
        .query_pairs()
        .into_owned()
        .collect()
}

/// A `redis-server` of the test's own on a free port, stopped when the test ends however it
/// ends (tests never touch a shared Redis).
pub struct RedisServer {
    pub url: String,
    port: u16,
    child: Option<std::process::Child>,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        Self::start_on(port)
    }

    /// A new server on the port this one had (after `stop`): Redis restarted.
    pub fn start_again(mut self) -> RedisServer {
        self.stop();
        Self::start_on(self.port)
    }

    fn start_on(port: u16) -> RedisServer {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("redis-server runs (the Redis tests need Debian's redis-server)");
        let url = format!("redis://127.0.0.1:{port}");
        let server = RedisServer {
            url,
            port,
            child: Some(child),
        };
        for _ in 0..100 {
            if redis::Client::open(server.url.as_str())
                .and_then(|c| c.get_connection())
                .is_ok()
            {
                return server;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {port} did not come up");
    }

    /// Kill the server (a fault test's way of making Redis go away).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A PostgreSQL cluster of the test's own (`initdb` into a temporary folder, listening on a
/// free loopback port), which a fault test may stop, start and cut the connections of without
/// touching the shared server. As root, the server programs run as the `postgres` user.
pub struct PgCluster {
    pub port: u16,
    bin: std::path::PathBuf,
    dir: tempfile::TempDir,
}

impl PgCluster {
    fn bin_dir() -> std::path::PathBuf {
        let mut versions: Vec<std::path::PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL's server programs (Debian's postgresql package)")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("initdb").is_file())
            .collect();
        versions.sort();
        versions.pop().expect("an initdb under /usr/lib/postgresql")
    }

    fn run(&self, program: &str, args: &[&str]) -> std::process::Output {
        let program = self.bin.join(program);
        let mut command = if is_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            std::process::Command::new(&program)
        };
        command
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", program.display()))
    }

    pub fn start() -> PgCluster {
        let dir = tempfile::tempdir().expect("tempdir");
        if is_root() {
            let status = std::process::Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success());
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let cluster = PgCluster {
            port,
            bin: Self::bin_dir(),
            dir,
        };
        let data = cluster.data();
        let out = cluster.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        cluster.up();
        cluster
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// Start the server (again) and wait until it answers.
    pub fn up(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        let out = self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-o",
                &options,
                "-w",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stop the server now (open connections are cut).
    pub fn down(&self) {
        let out = self.run(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Freeze the server and its backends (`SIGSTOP`): connections stay open, nothing answers,
    /// as when its host hangs. It thaws when the guard is dropped.
    pub fn freeze(&self) -> Frozen {
        let pid_file = std::fs::read_to_string(self.dir.path().join("data/postmaster.pid"))
            .expect("postmaster.pid");
        let postmaster = pid_file.lines().next().expect("pid").trim().to_owned();
        let children = std::process::Command::new("pgrep")
            .args(["-P", &postmaster])
            .output()
            .expect("pgrep");
        let mut pids: Vec<String> = String::from_utf8_lossy(&children.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        pids.push(postmaster);
        let frozen = Frozen { pids };
        frozen.signal("-STOP");
        frozen
    }

    /// An admin URL (may create databases).
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Cut every connection to database `name`, as `pg_terminate_backend` does in a failover;
    /// returns how many there were.
    pub fn terminate_backends(&self, name: &str) -> usize {
        let mut conn = PgConnection::establish(&self.admin_url()).expect("admin connection");
        #[derive(diesel::QueryableByName)]
        struct Ended {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            #[expect(dead_code, reason = "the rows are only counted")]
            ended: bool,
        }
        diesel::sql_query(
            "SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind::<diesel::sql_types::Text, _>(name)
        .load::<Ended>(&mut conn)
        .expect("terminate")
        .len()
    }
}

/// A frozen PostgreSQL server; dropping this thaws it (`SIGCONT`).
pub struct Frozen {
    pids: Vec<String>,
}

impl Frozen {
    fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .arg(signal)
            .args(&self.pids)
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} {:?}", self.pids);
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        self.signal("-CONT");
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self.run("pg_ctl", &["-D", &self.data(), "-m", "immediate", "stop"]);
    }
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"))
}
