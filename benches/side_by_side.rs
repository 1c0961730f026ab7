//! Side-by-side benchmark against the Django peer: `cargo bench --bench side_by_side` (needs
//! `wrk`, `taskset` and Python 3 with venv; the peer's pinned packages come from PyPI).
//!
//! The Django + django-allauth + DRF project that this app replaces
//! (`../shared/peers/django_kakao/`, which may be read-only) is copied to
//! `target/side-by-side/django` and set up there by `benches/side_by_side/setup_django.sh`: a
//! venv with its pinned requirements (kept between runs while `requirements.txt` is unchanged;
//! Debian's `python3-venv` installed only when missing), a fresh SQLite database and the peer's
//! own seeding. This app gets a fresh SQLite database with the same rows: the staff member
//! `admin@example.com`, the member `user@example.com` and `seed0000000@example.com`... named
//! `사용자{i}`, in the same order.
//!
//! One Kakao stand-in serves both apps: the built-in one (`kakao_login::standin`), in this
//! process, registered with the peer's client id and secret and both apps' callback URLs,
//! OpenID Connect off (so neither side verifies ID tokens), and
//! [`Consent::AgreeAsLoginHint`]: each authorize request signs in as the account its
//! `login_hint` names, created on first use, so a fresh email is a new person and a pool of
//! emails signed in once beforehand are returning people. Django sends browsers to
//! `kauth.kakao.com`; the driver sends that path and query to the stand-in instead, as the
//! peer's own driver does, and adds the `login_hint` for both apps.
//!
//! Both servers run on one core (`taskset -c 1`): gunicorn with the peer's 2 sync workers
//! (its `run.sh`), this app with `WORKERS=1` (its default on one core: one worker per core it
//! may use). This process, with the load generators and the stand-in, runs on the other core
//! (`taskset -c 0`). Each row is measured in alternating runs (Django, this app, Django, ...)
//! after a discarded warm-up of each; the table gives the medians and their ratio. The rows:
//! the login page, the start of the Kakao login (a 302 to Kakao), `/profile/` with a member's
//! session, the users API's first page (50 rows) with a staff session (all four with wrk, one
//! thread, keep-alive connections; gunicorn's sync workers close each connection), and complete
//! sign-ins of new and of returning people, driven by awc: the start, Kakao's authorize, the
//! callback (which exchanges the code and reads `/v2/user/me`) and the page it lands on, the same
//! driver for both apps.
//!
//! Settings (environment): `BENCH_USERS` (100000), `BENCH_SECS` (seconds per run, 5),
//! `BENCH_PAIRS` (alternating pairs per row, 3), `BENCH_WARMUP_SECS` (discarded load on each
//! app before a row, default `BENCH_SECS`), `BENCH_CONNECTIONS` (wrk connections, 16),
//! `BENCH_SIGNIN_CONCURRENCY` (people signing in at once, 16), `BENCH_RETURNING_POOL` (200),
//! `BENCH_ONLY` (comma-separated parts of row names, such as `profile,sign-ins`),
//! `BENCH_DJANGO_PEER` (the peer's folder; default `../shared/peers/django_kakao` next to this
//! checkout), `BENCH_SERVER_CPU` (1) and `BENCH_CLIENT_CPU` (0), `PYTHON` (for the venv).
//! Results: a Markdown table on stdout and `target/bench/side_by_side.json`. Every process it
//! starts is stopped by PID when it ends, also when it fails.

mod common;

use common::{
    Jar, WRK_FORWARDED_FOR, WRK_SCRIPT, WrkSummary, free_port, location, machine_cpu_secs,
    next_client_address,
};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use kakao_login::standin::{Consent, StandIn, StandInConfig};
use serde_json::json;

/// The peer's Kakao app (its `settings.py` defaults); this app is configured with the same.
const CLIENT_ID: &str = "dummy-kakao-rest-api-key";
const CLIENT_SECRET: &str = "dummy-kakao-client-secret";
const APP_ID: i64 = 1;

struct Settings {
    users: usize,
    secs: f64,
    /// Seconds of discarded load on each app before a row's runs (Django needs a few seconds:
    /// its first runs come out slower).
    warm_up: f64,
    pairs: usize,
    connections: usize,
    sign_in_concurrency: usize,
    returning_pool: usize,
    only: Vec<String>,
    peer: PathBuf,
    server_cpu: String,
    client_cpu: String,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not valid")),
        Err(_) => default,
    }
}

impl Settings {
    fn from_env() -> Settings {
        let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        Settings {
            users: env_or("BENCH_USERS", 100_000),
            secs: env_or("BENCH_SECS", 5.0),
            warm_up: env_or("BENCH_WARMUP_SECS", env_or("BENCH_SECS", 5.0)),
            pairs: env_or("BENCH_PAIRS", 3usize).max(1),
            connections: env_or("BENCH_CONNECTIONS", 16),
            sign_in_concurrency: env_or("BENCH_SIGNIN_CONCURRENCY", 16usize).max(1),
            returning_pool: env_or("BENCH_RETURNING_POOL", 200usize).max(1),
            only: std::env::var("BENCH_ONLY")
                .unwrap_or_default()
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
            peer: std::env::var("BENCH_DJANGO_PEER").map_or_else(
                |_| manifest.join("../shared/peers/django_kakao"),
                PathBuf::from,
            ),
            server_cpu: env_or("BENCH_SERVER_CPU", "1".to_owned()),
            client_cpu: env_or("BENCH_CLIENT_CPU", "0".to_owned()),
        }
    }

    fn wanted(&self, row: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| row.contains(o.as_str()))
    }
}

/// A process started by the benchmark, stopped by PID when dropped: SIGTERM first (gunicorn's
/// master then stops its workers), SIGKILL after 10 s, and any child still alive after that.
struct Proc {
    child: Child,
    name: &'static str,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its direct children's PIDs (gunicorn's workers).
    fn children(&self) -> Vec<u32> {
        let pid = self.pid();
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
            .flat_map(|c| {
                c.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect::<Vec<u32>>()
            })
            .collect()
    }

    /// CPU seconds used so far by it and its live children.
    fn cpu_secs(&self) -> f64 {
        std::iter::once(self.pid())
            .chain(self.children())
            .map(|pid| proc_cpu_secs(&format!("/proc/{pid}/stat")))
            .sum()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let children = self.children();
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            eprintln!("{} did not stop on SIGTERM; killing it", self.name);
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        for pid in children {
            if Path::new(&format!("/proc/{pid}")).exists() {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

/// utime + stime of a `/proc/<pid>/stat` file, in seconds (clock ticks / 100).
fn proc_cpu_secs(stat_path: &str) -> f64 {
    let stat = std::fs::read_to_string(stat_path).unwrap_or_default();
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|f| f.parse::<f64>().ok()))
        .sum::<f64>()
        / 100.0
}

fn wait_listening(port: u16, what: &str, proc: &mut Proc) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = proc.child.try_wait() {
            panic!("{what} exited before listening: {status}");
        }
        assert!(Instant::now() < deadline, "{what} did not start listening");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Pin this process (every thread so far; later ones inherit it) to `cpu`.
fn pin_self(cpu: &str) {
    let ok = Command::new("taskset")
        .args(["-a", "-p", "-c", cpu, &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "taskset could not pin the benchmark to CPU {cpu}");
}

/// The Kakao stand-in both apps use, on a thread (and actix system) of its own.
fn start_kakao(redirect_uris: Vec<String>) -> (StandIn, String) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let running = StandIn::start(StandInConfig {
                client_id: CLIENT_ID.into(),
                client_secret: Some(CLIENT_SECRET.into()),
                app_id: APP_ID,
                admin_key: None,
                redirect_uris,
            })
            .await
            .expect("start the Kakao stand-in");
            running.standin.set_oidc(false);
            running
                .standin
                .set_auto_consent(Some(Consent::AgreeAsLoginHint));
            let _ = tx.send((running.standin.clone(), running.base_url.clone()));
            std::future::pending::<()>().await;
        });
    });
    rx.recv().expect("the Kakao stand-in started")
}

/// This app's database: migrations, then the peer's rows (its `seed_users`: the staff member
/// and the member first, then `n` people), in one statement each.
fn seed_app(database_url: &str, n: usize) {
    use diesel::connection::SimpleConnection;
    let pool = kakao_login::db::build_pool(database_url, 1, Duration::from_secs(10)).expect("pool");
    let mut conn = pool.get().expect("connection");
    kakao_login::db::run_migrations(&mut conn).expect("migrations");
    let columns =
        "email, name, age, provider, is_active, is_staff, is_superuser, date_joined, last_login";
    conn.batch_execute(&format!(
        "INSERT INTO users ({columns}) VALUES \
           ('admin@example.com', '관리자', 40, 'local', 1, 1, 1, datetime('now'), NULL), \
           ('user@example.com', '홍길동', 30, 'local', 1, 0, 0, datetime('now'), NULL); \
         WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < {n} - 1) \
         INSERT INTO users ({columns}) \
         SELECT printf('seed%07d@example.com', i), '사용자' || i, 14 + (i * 7919) % 67, \
                CASE WHEN i % 2 = 0 THEN 'local' ELSE 'kakao' END, 1, 0, 0, \
                datetime('now'), NULL FROM seq;"
    ))
    .expect("seed");
}

/// One app under test.
struct Target {
    name: &'static str,
    base: String,
    login_page: &'static str,
    start: &'static str,
    /// `Cookie` header values: a member's session and a staff member's.
    member: String,
    staff: String,
    proc: Proc,
}

impl Target {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

fn start_app(dir: &Path, port: u16, kakao: &str, server_cpu: &str) -> Proc {
    let base = format!("http://127.0.0.1:{port}");
    let child = Command::new("taskset")
        .args(["-c", server_cpu])
        .arg(env!("CARGO_BIN_EXE_kakao-login"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("APP_ENV", "development")
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("PUBLIC_URL", &base)
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.join("app.db").display()),
        )
        .env("DATA_DIR", dir)
        .env("CONFIG_DIR", "/nonexistent")
        .env("RUST_LOG", "error")
        .env("WORKERS", "1")
        .env("KAKAO_CLIENT_ID", CLIENT_ID)
        .env("KAKAO_CLIENT_SECRET", CLIENT_SECRET)
        .env("KAKAO_APP_ID", APP_ID.to_string())
        .env("KAKAO_AUTH_BASE_URL", kakao)
        .env("KAKAO_API_BASE_URL", kakao)
        .env("KAKAO_OIDC", "false")
        .env("TRUSTED_PROXIES", "127.0.0.1")
        .stdout(Stdio::null())
        .spawn()
        .expect("start kakao-login (release)");
    let mut proc = Proc {
        child,
        name: "kakao-login",
    };
    wait_listening(port, "kakao-login", &mut proc);
    proc
}

/// The peer's environment: its SQLite database in the scratch copy, Kakao's server-side calls
/// to the stand-in.
fn django_env(cmd: &mut Command, dir: &Path, kakao: &str) {
    cmd.current_dir(dir)
        .env("DB", "sqlite")
        .env("SQLITE_PATH", dir.join("db.sqlite3"))
        .env("KAKAO_AUTH_BASE", kakao)
        .env("KAKAO_API_BASE", kakao);
}

fn start_django(dir: &Path, port: u16, kakao: &str, server_cpu: &str) -> Proc {
    // run.sh execs `taskset -c CPUS gunicorn ...`: the child's PID is gunicorn's master.
    let mut cmd = Command::new("bash");
    cmd.arg("run.sh")
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("WORKERS", "2")
        .env("WORKER_CLASS", "sync")
        .env("CPUS", server_cpu)
        .env("PIDFILE", dir.join("gunicorn.pid"));
    django_env(&mut cmd, dir, kakao);
    let child = cmd
        .stdout(Stdio::null())
        .spawn()
        .expect("start gunicorn (run.sh)");
    let mut proc = Proc {
        child,
        name: "gunicorn",
    };
    wait_listening(port, "gunicorn", &mut proc);
    proc
}

/// `sessionid=...` for a signed-in session of `email`, from the peer's `make_session`.
fn django_session(dir: &Path, kakao: &str, email: &str) -> String {
    let mut cmd = Command::new(dir.join(".venv/bin/python"));
    cmd.args(["manage.py", "make_session", email]);
    django_env(&mut cmd, dir, kakao);
    let out = cmd.output().expect("manage.py make_session");
    assert!(out.status.success(), "make_session {email} failed");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// GET `url` (sending and keeping `jar`'s cookies, if any): status, Location, body.
async fn get(
    client: &awc::Client,
    url: &str,
    jar: Option<&mut Jar>,
    forwarded_for: Option<&str>,
) -> Result<(u16, String, String), String> {
    let mut req = client.get(url);
    if let Some(address) = forwarded_for {
        req = req.insert_header(("x-forwarded-for", address));
    }
    if let Some(jar) = &jar
        && !jar.is_empty()
    {
        req = req.insert_header(("cookie", jar.header()));
    }
    let mut res = req.send().await.map_err(|e| format!("GET {url}: {e}"))?;
    if let Some(jar) = jar {
        jar.keep(res.headers());
    }
    let location = location(res.headers());
    let body = res
        .body()
        .limit(1 << 20)
        .await
        .map_err(|e| format!("GET {url}: body: {e}"))?;
    Ok((
        res.status().as_u16(),
        location,
        String::from_utf8_lossy(&body).into_owned(),
    ))
}

/// One complete sign-in as the Kakao account of `email`, as a browser does it: the app's start
/// (302 to Kakao's authorize), Kakao's authorize at the stand-in with `login_hint` (302 to the
/// callback), the callback (the app exchanges the code and reads the profile; 302 or 303) and
/// the page it lands on (200, showing the email). Returns the app's cookies.
///
/// Every sign-in comes from an address of its own, as `X-Forwarded-For` from the loopback
/// proxy this app is told to trust (`TRUSTED_PROXIES`, as behind nginx): the app limits login
/// starts per client address, and a benchmark from one address would measure that limit.
/// Django ignores the header.
async fn sign_in(
    client: &awc::Client,
    app: &str,
    start: &str,
    kakao: &str,
    email: &str,
) -> Result<String, String> {
    let address = next_client_address();
    let xff = Some(address.as_str());
    let mut jar = Jar::default();
    let (status, location, _) = get(client, &format!("{app}{start}"), Some(&mut jar), xff).await?;
    if status != 302 {
        return Err(format!("start: {status}"));
    }
    let authorize = url::Url::parse(&location).map_err(|e| format!("start: {location}: {e}"))?;
    if authorize.path() != "/oauth/authorize" {
        return Err(format!("start: redirected to {location}"));
    }
    let hint: String = url::form_urlencoded::byte_serialize(email.as_bytes()).collect();
    let at_kakao = format!(
        "{kakao}/oauth/authorize?{}&login_hint={hint}",
        authorize.query().unwrap_or_default()
    );
    let (status, callback, body) = get(client, &at_kakao, None, None).await?;
    if status != 302 || !callback.starts_with(app) {
        let body: String = body.chars().take(300).collect();
        return Err(format!("authorize: {status} {callback}: {body}"));
    }
    let (status, landing, body) = get(client, &callback, Some(&mut jar), xff).await?;
    if status != 302 && status != 303 {
        let body: String = body.chars().take(300).collect();
        return Err(format!("callback: {status}: {body}"));
    }
    let landing = if landing.starts_with('/') {
        format!("{app}{landing}")
    } else {
        landing
    };
    let (status, _, body) = get(client, &landing, Some(&mut jar), xff).await?;
    if status != 200 || !body.contains(email) {
        return Err(format!("landing {landing}: {status}, {email} not shown"));
    }
    Ok(jar.header())
}

fn client() -> awc::Client {
    awc::Client::builder()
        .disable_redirects()
        .timeout(Duration::from_secs(30))
        .finish()
}

/// One run's figures.
#[derive(Clone, Debug, serde::Serialize)]
struct Run {
    /// Requests/s (wrk rows) or complete sign-ins/s.
    rate: f64,
    /// Requests or complete sign-ins in the run.
    completed: u64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
    /// CPU cores used on average: the server (with gunicorn's workers), and this process
    /// (load generator, driver, stand-in) with wrk.
    server_cores: f64,
    generator_cores: f64,
    /// CPU used by everything else on the machine (other tenants of the VM, other jobs), and
    /// time the hypervisor gave to other VMs (steal), in cores: a noisy run shows here.
    other_cores: f64,
    steal_cores: f64,
    /// Sign-ins: calls each app made to the stand-in's token, user/me and token-info endpoints
    /// per complete sign-in (the authorize request is the driver's).
    #[serde(skip_serializing_if = "Option::is_none")]
    kakao_calls_per_sign_in: Option<BTreeMap<&'static str, f64>>,
}

/// How many requests reached each of the stand-in's server-side endpoints so far.
fn kakao_calls(standin: &StandIn) -> [(&'static str, usize); 3] {
    use kakao_login::standin::Endpoint;
    [
        ("token", standin.hits(Endpoint::Token)),
        ("user_me", standin.hits(Endpoint::UserMe)),
        ("token_info", standin.hits(Endpoint::TokenInfo)),
    ]
}

/// CPU counters read before a run; `finish` fills in a [`Run`]'s CPU figures.
struct Clock {
    started: Instant,
    server: f64,
    own: f64,
    machine: (f64, f64),
}

impl Clock {
    fn start(server: &Proc) -> Clock {
        Clock {
            started: Instant::now(),
            server: server.cpu_secs(),
            own: own_cpu_secs(),
            machine: machine_cpu_secs(),
        }
    }

    /// Elapsed seconds and (server, generator, other, steal) cores.
    fn finish(&self, server: &Proc) -> (f64, [f64; 4]) {
        let elapsed = self.started.elapsed().as_secs_f64();
        let server = (server.cpu_secs() - self.server) / elapsed;
        let generator = (own_cpu_secs() - self.own) / elapsed;
        let (busy, steal) = machine_cpu_secs();
        let busy = (busy - self.machine.0) / elapsed;
        let other = (busy - server - generator).max(0.0);
        (
            elapsed,
            [server, generator, other, (steal - self.machine.1) / elapsed],
        )
    }
}

/// CPU seconds of this process plus its reaped children (wrk).
fn own_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    [11, 12, 13, 14]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|f| f.parse::<f64>().ok()))
        .sum::<f64>()
        / 100.0
}

/// wrk, one thread on the client core, `connections` keep-alive connections, for `secs`.
fn run_wrk(
    s: &Settings,
    server: &Proc,
    url: &str,
    cookie: Option<&str>,
    secs: f64,
    script: &Path,
) -> Run {
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", &s.client_cpu, "wrk", "--threads=1"])
        .arg(format!("--connections={}", s.connections))
        .arg(format!("--duration={}s", secs.ceil().max(1.0)))
        .arg("--timeout=10s")
        .arg(format!("--script={}", script.display()));
    if let Some(cookie) = cookie {
        cmd.arg(format!("--header=Cookie: {cookie}"));
    }
    cmd.arg(url);
    let clock = Clock::start(server);
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .expect("run wrk (apt-get install wrk)");
    let (_, [server_cores, generator_cores, other_cores, steal_cores]) = clock.finish(server);
    let summary = WrkSummary::from_output(url, &out.stdout);
    Run {
        rate: summary.requests as f64 / (summary.duration_us as f64 / 1e6),
        completed: summary.requests,
        p50_ms: summary.p50_us / 1000.0,
        p99_ms: summary.p99_us / 1000.0,
        errors: summary.errors,
        server_cores,
        generator_cores,
        other_cores,
        steal_cores,
        kakao_calls_per_sign_in: None,
    }
}

/// Complete sign-ins for `secs`: `concurrency` people at a time, each with its own client
/// (connections kept alive between its sign-ins) and a fresh cookie jar per sign-in. `emails`
/// gives the Kakao account of sign-in `n` of person `task`.
fn run_sign_ins(
    runtime: &actix_web::rt::SystemRunner,
    target: &Target,
    kakao: &str,
    concurrency: usize,
    secs: f64,
    emails: &(dyn Fn(usize, u64) -> String + Sync),
) -> Run {
    let clock = Clock::start(&target.proc);
    let deadline = clock.started + Duration::from_secs_f64(secs);
    let (done, failed, first_error) = runtime.block_on(async {
        let people = (0..concurrency).map(|task| async move {
            let client = client();
            let mut done = Histogram::<u64>::new(3).expect("histogram");
            let (mut failed, mut first_error) = (0u64, None);
            let mut n = 0u64;
            while Instant::now() < deadline {
                let email = emails(task, n);
                n += 1;
                let t0 = Instant::now();
                match sign_in(&client, &target.base, target.start, kakao, &email).await {
                    Ok(_) => {
                        let _ = done.record(t0.elapsed().as_micros() as u64);
                    }
                    Err(e) => {
                        failed += 1;
                        first_error.get_or_insert(e);
                    }
                }
            }
            (done, failed, first_error)
        });
        let mut all = Histogram::<u64>::new(3).expect("histogram");
        let (mut failed, mut first_error) = (0u64, None);
        for (h, f, e) in futures_util::future::join_all(people).await {
            let _ = all.add(&h);
            failed += f;
            if first_error.is_none() {
                first_error = e;
            }
        }
        (all, failed, first_error)
    });
    let (elapsed, [server_cores, generator_cores, other_cores, steal_cores]) =
        clock.finish(&target.proc);
    if let Some(e) = first_error {
        eprintln!("{}: {failed} sign-ins failed; the first: {e}", target.name);
    }
    Run {
        rate: done.len() as f64 / elapsed,
        completed: done.len(),
        p50_ms: done.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: done.value_at_quantile(0.99) as f64 / 1000.0,
        errors: failed,
        server_cores,
        generator_cores,
        other_cores,
        steal_cores,
        kakao_calls_per_sign_in: None,
    }
}

/// What a row measures.
enum Load {
    /// wrk on this path of each app (Django's, ours), with the member's or the staff's cookie.
    Wrk {
        django: &'static str,
        ours: &'static str,
        cookie: Option<fn(&Target) -> &str>,
        /// The status both must answer (checked once before measuring).
        status: u16,
        /// Every request from a client address of its own (`WRK_FORWARDED_FOR`).
        per_client: bool,
    },
    SignIns {
        returning: bool,
    },
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// 80060 -> "80,060"; small figures keep a decimal.
fn figure(x: f64) -> String {
    if !x.is_finite() {
        return "-".to_owned();
    }
    if x < 100.0 {
        return format!("{x:.1}");
    }
    let digits = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `lscpu`'s model name and the number of CPUs this process may use.
fn machine() -> (String, usize) {
    let lscpu = Command::new("lscpu")
        .env("LC_ALL", "C")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let model = lscpu
        .lines()
        .find_map(|l| l.strip_prefix("Model name:"))
        .map(|m| m.trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    (model, cores)
}

fn main() {
    kakao_login::app::init_crypto();
    let s = Settings::from_env();
    let (model, cores) = machine();
    assert!(
        cores >= 2,
        "the side-by-side benchmark needs 2 cores (one for the servers, one for the load)"
    );
    pin_self(&s.client_cpu);
    let started = Instant::now();
    let scratch = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/side-by-side");
    let django_dir = scratch.join("django");
    let app_dir = scratch.join("app");

    // Django: scratch copy, venv, migrations and its seeding.
    let setup = Instant::now();
    let status = Command::new("bash")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/side_by_side/setup_django.sh"))
        .arg(&s.peer)
        .arg(&django_dir)
        .arg(s.users.to_string())
        .stdout(Stdio::null())
        .status()
        .expect("run benches/side_by_side/setup_django.sh");
    assert!(status.success(), "setting up the Django peer failed");
    eprintln!(
        "Django peer set up and seeded in {:.1} s",
        setup.elapsed().as_secs_f64()
    );

    // This app: a fresh database with the same rows.
    let _ = std::fs::remove_dir_all(&app_dir);
    std::fs::create_dir_all(&app_dir).expect("target/side-by-side/app");
    let seeded = Instant::now();
    seed_app(
        &format!("sqlite://{}", app_dir.join("app.db").display()),
        s.users,
    );
    eprintln!(
        "kakao-login seeded in {:.1} s",
        seeded.elapsed().as_secs_f64()
    );

    let (ours_port, django_port) = (free_port(), free_port());
    let ours_base = format!("http://127.0.0.1:{ours_port}");
    let django_base = format!("http://127.0.0.1:{django_port}");
    let (standin, kakao) = start_kakao(vec![
        format!("{ours_base}/kakao/login/callback/"),
        format!("{django_base}/accounts/kakao/login/callback/"),
    ]);
    let runtime = actix_web::rt::System::new();

    let ours_proc = start_app(&app_dir, ours_port, &kakao, &s.server_cpu);
    let django_proc = start_django(&django_dir, django_port, &kakao, &s.server_cpu);
    // This app's sessions come from the real flow (which links the seeded rows to Kakao
    // accounts); Django's from its `make_session`, as the peer's own benchmark does (allauth
    // would not link a social account to an existing local user by email).
    let (member, staff) = runtime.block_on(async {
        let client = client();
        let member = sign_in(
            &client,
            &ours_base,
            "/kakao/login/",
            &kakao,
            "user@example.com",
        )
        .await
        .expect("the member signs in to kakao-login");
        let staff = sign_in(
            &client,
            &ours_base,
            "/kakao/login/",
            &kakao,
            "admin@example.com",
        )
        .await
        .expect("the staff member signs in to kakao-login");
        (member, staff)
    });
    let ours = Target {
        name: "kakao-login",
        base: ours_base,
        login_page: "/",
        start: "/kakao/login/",
        member,
        staff,
        proc: ours_proc,
    };
    let django = Target {
        name: "Django",
        member: django_session(&django_dir, &kakao, "user@example.com"),
        staff: django_session(&django_dir, &kakao, "admin@example.com"),
        base: django_base,
        login_page: "/login/",
        start: "/accounts/kakao/login/?process=login",
        proc: django_proc,
    };

    let rows: Vec<(&str, Load)> = vec![
        (
            "login page",
            Load::Wrk {
                django: django.login_page,
                ours: ours.login_page,
                cookie: None,
                status: 200,
                per_client: false,
            },
        ),
        (
            "Kakao login start",
            Load::Wrk {
                django: django.start,
                ours: ours.start,
                cookie: None,
                status: 302,
                per_client: true,
            },
        ),
        (
            "`/profile/` with a session",
            Load::Wrk {
                django: "/profile/",
                ours: "/profile/",
                cookie: Some(|t| t.member.as_str()),
                status: 200,
                per_client: false,
            },
        ),
        (
            "`GET /api/users/` first page (50 rows), staff",
            Load::Wrk {
                django: "/api/users/",
                ours: "/api/users/",
                cookie: Some(|t| t.staff.as_str()),
                status: 200,
                per_client: false,
            },
        ),
        (
            "complete sign-ins/s: new people",
            Load::SignIns { returning: false },
        ),
        (
            "complete sign-ins/s: returning people",
            Load::SignIns { returning: true },
        ),
    ];

    let plain_script = scratch.join("report.lua");
    std::fs::write(&plain_script, WRK_SCRIPT).expect("write the wrk script");
    let per_client_script = scratch.join("report-per-client.lua");
    std::fs::write(
        &per_client_script,
        format!("{WRK_FORWARDED_FOR}{WRK_SCRIPT}"),
    )
    .expect("write the wrk script");
    let warm_up = s.warm_up;
    let mut results = Vec::new();
    let mut round = 0u64;
    for (name, load) in &rows {
        if !s.wanted(name) {
            continue;
        }
        let mut runs: BTreeMap<&str, Vec<Run>> = BTreeMap::new();
        match load {
            Load::Wrk {
                django: django_path,
                ours: ours_path,
                cookie,
                status,
                per_client,
            } => {
                let both = [(&django, *django_path), (&ours, *ours_path)];
                let script = if *per_client {
                    &per_client_script
                } else {
                    &plain_script
                };
                // Check once that both answer as they should (a wrong cookie would measure a
                // redirect to the login page), then warm up, then alternate.
                runtime.block_on(async {
                    let client = client();
                    for (t, path) in both {
                        let mut req = client.get(t.url(path));
                        if let Some(c) = cookie {
                            req = req.insert_header(("cookie", c(t).to_owned()));
                        }
                        let mut res = req.send().await.expect("check request");
                        let body = res.body().limit(1 << 22).await.unwrap_or_default();
                        assert_eq!(
                            res.status().as_u16(),
                            *status,
                            "{} {path}: {}",
                            t.name,
                            String::from_utf8_lossy(&body)
                                .chars()
                                .take(300)
                                .collect::<String>()
                        );
                        eprintln!(
                            "{name}: {} {path} answers {status}, {} bytes",
                            t.name,
                            body.len()
                        );
                    }
                });
                for (t, path) in both {
                    run_wrk(
                        &s,
                        &t.proc,
                        &t.url(path),
                        cookie.map(|c| c(t)),
                        warm_up,
                        script,
                    );
                }
                for pair in 0..s.pairs {
                    for (t, path) in both {
                        std::thread::sleep(Duration::from_secs(1));
                        let run = run_wrk(
                            &s,
                            &t.proc,
                            &t.url(path),
                            cookie.map(|c| c(t)),
                            s.secs,
                            script,
                        );
                        eprintln!(
                            "{name} [{}/{}] {:<11} {:>9} req/s  p50 {:.2} ms  p99 {:.2} ms  server {:.2} cores  other {:.2}  steal {:.2}  errors {}",
                            pair + 1,
                            s.pairs,
                            t.name,
                            figure(run.rate),
                            run.p50_ms,
                            run.p99_ms,
                            run.server_cores,
                            run.other_cores,
                            run.steal_cores,
                            run.errors
                        );
                        runs.entry(t.name).or_default().push(run);
                    }
                }
            }
            Load::SignIns { returning } => {
                let pool = s.returning_pool;
                if *returning {
                    // Every pool member signs in once to each app, untimed (also the warm-up).
                    runtime.block_on(async {
                        let client = client();
                        for t in [&django, &ours] {
                            for i in 0..pool {
                                sign_in(&client, &t.base, t.start, &kakao, &returning_email(i))
                                    .await
                                    .unwrap_or_else(|e| {
                                        panic!("{}: the returning pool signs in: {e}", t.name)
                                    });
                            }
                        }
                    });
                } else {
                    for t in [&django, &ours] {
                        round += 1;
                        let r = round;
                        run_sign_ins(
                            &runtime,
                            t,
                            &kakao,
                            s.sign_in_concurrency,
                            warm_up,
                            &|task: usize, n: u64| format!("new-{r}-{task}-{n}@example.com"),
                        );
                    }
                }
                for pair in 0..s.pairs {
                    for t in [&django, &ours] {
                        std::thread::sleep(Duration::from_secs(1));
                        round += 1;
                        let r = round;
                        let conc = s.sign_in_concurrency;
                        let new =
                            move |task: usize, n: u64| format!("new-{r}-{task}-{n}@example.com");
                        let again = move |task: usize, n: u64| {
                            returning_email((task + n as usize * conc) % pool)
                        };
                        let emails: &(dyn Fn(usize, u64) -> String + Sync) =
                            if *returning { &again } else { &new };
                        let calls = kakao_calls(&standin);
                        let mut run = run_sign_ins(&runtime, t, &kakao, conc, s.secs, emails);
                        let done = run.completed.max(1) as f64;
                        run.kakao_calls_per_sign_in = Some(
                            kakao_calls(&standin)
                                .iter()
                                .zip(calls)
                                .map(|((k, after), (_, before))| {
                                    (*k, (after - before) as f64 / done)
                                })
                                .collect(),
                        );
                        eprintln!(
                            "{name} [{}/{}] {:<11} {:>9} sign-ins/s  p50 {:.1} ms  p99 {:.1} ms  server {:.2} cores  driver+stand-in {:.2} cores  other {:.2}  steal {:.2}  errors {}  Kakao calls per sign-in: {}",
                            pair + 1,
                            s.pairs,
                            t.name,
                            figure(run.rate),
                            run.p50_ms,
                            run.p99_ms,
                            run.server_cores,
                            run.generator_cores,
                            run.other_cores,
                            run.steal_cores,
                            run.errors,
                            run.kakao_calls_per_sign_in
                                .iter()
                                .flatten()
                                .map(|(k, v)| format!("{k} {v:.2}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        );
                        runs.entry(t.name).or_default().push(run);
                    }
                }
            }
        }
        let med = |who: &str| median(&runs[who].iter().map(|r| r.rate).collect::<Vec<_>>());
        let (o, d) = (med(ours.name), med(django.name));
        let (django_path, ours_path) = match load {
            Load::Wrk { django, ours, .. } => (django.to_string(), ours.to_string()),
            Load::SignIns { .. } => (
                format!("{} + authorize + callback + landing", django.start),
                format!("{} + authorize + callback + landing", ours.start),
            ),
        };
        results.push(json!({
            "request": name, "django_path": django_path, "ours_path": ours_path,
            "unit": if matches!(load, Load::SignIns { .. }) { "complete sign-ins/s" } else { "requests/s" },
            "ours_median": o, "django_median": d, "ratio": o / d,
            "ours_runs": runs[ours.name], "django_runs": runs[django.name],
        }));
    }
    let authorize_hits = standin.hits(kakao_login::standin::Endpoint::Authorize);
    drop(ours);
    drop(django);

    let date = chrono::Utc::now();
    println!();
    println!(
        "Side by side on {}: {model}, {cores} cores. {} users in each app, SQLite. Both servers \
         on CPU {} (Django: gunicorn, 2 sync workers; kakao-login: WORKERS=1), load generators \
         and the shared Kakao stand-in on CPU {}. Medians of {} alternating pairs of {} s runs, after {} s of discarded \
         load on each; \
         wrk: 1 thread, {} connections; sign-ins: {} people at a time, 4 requests each.",
        date.format("%Y-%m-%d"),
        s.users,
        s.server_cpu,
        s.client_cpu,
        s.pairs,
        s.secs,
        s.warm_up,
        s.connections,
        s.sign_in_concurrency
    );
    println!();
    println!("| request | this app | Django | ratio |");
    println!("|---|---|---|---|");
    for r in &results {
        let errors: u64 = ["ours_runs", "django_runs"]
            .iter()
            .flat_map(|k| r[k].as_array().cloned().unwrap_or_default())
            .filter_map(|run| run["errors"].as_u64())
            .sum();
        let note = if errors > 0 {
            format!(" ({errors} errors)")
        } else {
            String::new()
        };
        let ratio = r["ratio"].as_f64().unwrap_or(f64::NAN);
        let ratio = if ratio < 10.0 {
            format!("{ratio:.1}x")
        } else {
            format!("{ratio:.0}x")
        };
        println!(
            "| {}{note} | {} | {} | {ratio} |",
            r["request"].as_str().unwrap_or_default(),
            figure(r["ours_median"].as_f64().unwrap_or(f64::NAN)),
            figure(r["django_median"].as_f64().unwrap_or(f64::NAN)),
        );
    }
    let worst = |key: &str| {
        results
            .iter()
            .flat_map(|r| {
                ["ours_runs", "django_runs"].map(|k| r[k].as_array().cloned().unwrap_or_default())
            })
            .flatten()
            .filter_map(|run| run[key].as_f64())
            .fold(0.0, f64::max)
    };
    println!();
    println!(
        "Other load on the machine during the runs: at most {:.2} cores busy with other work, \
         at most {:.2} cores stolen by the hypervisor (per-run figures on stderr and in the JSON).",
        worst("other_cores"),
        worst("steal_cores")
    );
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&out).expect("target/bench");
    let report = json!({
        "machine": {"model": model, "cores": cores},
        "date": date.to_rfc3339(),
        "settings": {
            "users": s.users, "secs": s.secs, "warm_up_secs": s.warm_up, "pairs": s.pairs, "connections": s.connections,
            "sign_in_concurrency": s.sign_in_concurrency, "returning_pool": s.returning_pool,
            "server_cpu": s.server_cpu, "client_cpu": s.client_cpu,
            "django": "gunicorn, 2 sync workers (the peer's run.sh)",
            "ours": "WORKERS=1, KAKAO_OIDC=false",
        },
        "stand_in_authorize_requests": authorize_hits,
        "total_secs": started.elapsed().as_secs_f64(),
        "results": results,
    });
    std::fs::write(
        out.join("side_by_side.json"),
        serde_json::to_string_pretty(&report).unwrap_or_default(),
    )
    .expect("write side_by_side.json");
    println!(
        "wrote target/bench/side_by_side.json ({:.0} s in all)",
        started.elapsed().as_secs_f64()
    );
}

fn returning_email(i: usize) -> String {
    format!("returning-{i}@example.com")
}
