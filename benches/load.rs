//! Load benchmark: `cargo bench --bench load` (needs `wrk`: `apt-get install wrk`).
//!
//! Starts the release `kakao-login` binary as a child process on loopback, pointed at the
//! built-in Kakao stand-in (served from the benchmark's own process, so that the app's memory
//! and CPU figures are the app's alone), seeds users through a bulk SQL path, signs a staff user in through the real
//! flow, and measures throughput and latency (p50, p99) over keep-alive connections at several
//! concurrency levels. Every figure is also given as a fraction of `GET /healthz` (no I/O) on
//! the same server in the same run, so results compare across noisy machines.
//!
//! The load comes from wrk, one thread: a C event loop that spends a few microseconds per
//! request, against tens of microseconds in the app. Each row reports the cores used by the
//! app, by the generator and by PostgreSQL, the cores the hypervisor stole meanwhile (a row
//! with much steal measured a busy host, not the app), and the app's CPU time per request; a generator
//! well under one core while the app is busy shows the generator is not the bottleneck.
//! Complete sign-ins follow redirects, cookies and a consent form, so they are driven by awc.
//!
//! Settings (environment): `BENCH_SIZES` (users, default `10000,100000,1000000`),
//! `BENCH_BACKENDS` (`sqlite,postgres`), `BENCH_CONNECTIONS` (`16,64`), `BENCH_SECS` (seconds
//! per measurement, default 4), `BENCH_DATABASE_URL` (PostgreSQL admin URL, default
//! `postgres://postgres@127.0.0.1:5432/test`), `BENCH_ONLY` (comma-separated parts of request
//! names to measure, such as `profile,api`; default all), `BENCH_POOL_SIZE` (the app's
//! `DATABASE_POOL_SIZE`; default the app's own default). Results: a table on stdout and
//! `target/bench/load.json`.
//!
//! On PostgreSQL it also runs pgbench (one thread, prepared statements) with the SQL behind
//! `/profile/` and behind the API's first page: what the database alone can answer on the same
//! cores, with no app in between.

mod common;

use common::{
    Jar, WRK_FORWARDED_FOR, WRK_SCRIPT, WrkSummary, free_port, location, machine_cpu_secs,
    next_client_address,
};

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::json;

/// A child process stopped when dropped.
struct Server {
    child: Child,
    base: String,
    /// The Kakao stand-in's base URL.
    kakao: String,
    startup: Duration,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Peak resident memory so far (VmHWM), in MiB.
    fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    }

    /// CPU seconds the server has used (user + system).
    fn cpu_secs(&self) -> f64 {
        proc_cpu_fields(&format!("/proc/{}/stat", self.child.id()), &[11, 12])
    }
}

/// The sum of some numeric fields of a `/proc/<pid>/stat` file, in seconds (clock ticks / 100).
/// Indexes count from the field after the command name: 11 utime, 12 stime, 13 cutime, 14 cstime.
fn proc_cpu_fields(stat_path: &str, indexes: &[usize]) -> f64 {
    let stat = std::fs::read_to_string(stat_path).unwrap_or_default();
    // The command name may contain spaces; the fields start after the last ") ".
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = indexes
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|f| f.parse::<f64>().ok()))
        .sum();
    ticks / 100.0
}

const CLIENT_ID: &str = "bench-client";
const CLIENT_SECRET: &str = "bench-secret";
const APP_ID: i64 = 1;

/// The built-in Kakao stand-in, served from this process on its own thread (so the app's
/// memory and CPU figures do not include Kakao's side, whose accounts and tokens pile up
/// with every new sign-in). Returns its base URL.
fn start_kakao(redirect_uri: String) -> String {
    use kakao_login::standin::{StandIn, StandInConfig};
    let kakao = StandIn::new(StandInConfig {
        client_id: CLIENT_ID.into(),
        client_secret: Some(CLIENT_SECRET.into()),
        app_id: APP_ID,
        admin_key: Some("bench-admin-key".into()),
        redirect_uris: vec![redirect_uri],
    });
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the Kakao stand-in");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            actix_web::HttpServer::new(move || {
                let kakao = kakao.clone();
                actix_web::App::new().configure(move |cfg| kakao.configure(cfg))
            })
            .workers(2)
            .disable_signals()
            .listen(listener)
            .expect("Kakao stand-in listens")
            .run()
            .await
        })
    });
    base
}

fn start_server(database_url: &str, data_dir: &std::path::Path) -> Server {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let kakao = start_kakao(format!("{base}/kakao/login/callback/"));
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_kakao-login"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("PUBLIC_URL", &base)
        .env("DATABASE_URL", database_url)
        .env("DATA_DIR", data_dir)
        .env("CONFIG_DIR", "/nonexistent")
        .env("RUST_LOG", "error")
        // As behind nginx: the login start is limited per client, and each of the benchmark's
        // sign-ins and login starts comes from an address of its own (`X-Forwarded-For`).
        .env("TRUSTED_PROXIES", "127.0.0.1")
        .envs(
            std::env::var("BENCH_POOL_SIZE")
                .ok()
                .map(|n| ("DATABASE_POOL_SIZE", n)),
        )
        .env("KAKAO_CLIENT_ID", CLIENT_ID)
        .env("KAKAO_CLIENT_SECRET", CLIENT_SECRET)
        .env("KAKAO_APP_ID", APP_ID.to_string())
        .env("KAKAO_AUTH_BASE_URL", &kakao)
        .env("KAKAO_API_BASE_URL", &kakao)
        .stdout(Stdio::null())
        .spawn()
        .expect("start kakao-login (release)");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
    Server {
        child,
        base,
        kakao,
        startup: started.elapsed(),
    }
}

/// Seed `n` users in one statement per backend: a recursive series on SQLite,
/// `generate_series` on PostgreSQL. Emails follow `user{i}@example.com`; a tenth are named Kim.
fn seed(database_url: &str, n: usize) {
    use diesel::connection::SimpleConnection;
    let pool = kakao_login::db::build_pool(database_url, 1, Duration::from_secs(10)).expect("pool");
    let mut conn = pool.get().expect("connection");
    kakao_login::db::run_migrations(&mut conn).expect("migrations");
    let sql = if database_url.starts_with("sqlite") {
        format!(
            "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < {n}) \
             INSERT INTO users (email, name, age, provider, is_active, is_staff, is_superuser, date_joined, last_login) \
             SELECT 'user' || i || '@example.com', CASE WHEN i % 10 = 0 THEN 'Kim ' || i ELSE 'Lee ' || i END, \
                    20 + i % 50, CASE WHEN i % 3 = 0 THEN 'local' ELSE 'kakao' END, i % 20 <> 0, 0, 0, \
                    datetime('2026-01-01', '+' || (i % 86400) || ' seconds'), NULL FROM seq;"
        )
    } else {
        format!(
            "INSERT INTO users (email, name, age, provider, is_active, is_staff, is_superuser, date_joined, last_login) \
             SELECT 'user' || i || '@example.com', CASE WHEN i % 10 = 0 THEN 'Kim ' || i ELSE 'Lee ' || i END, \
                    20 + i % 50, CASE WHEN i % 3 = 0 THEN 'local' ELSE 'kakao' END, i % 20 <> 0, false, false, \
                    TIMESTAMP '2026-01-01' + (i % 86400) * INTERVAL '1 second', NULL \
             FROM generate_series(1, {n}) AS i;"
        )
    };
    if !database_url.starts_with("sqlite") {
        // The pool's connections carry the app's 10 s statement timeout; seeding a million
        // rows with their trigram indexes takes longer on a slow machine.
        conn.batch_execute("SET statement_timeout = 0")
            .expect("lift the statement timeout");
    }
    conn.batch_execute(&sql).expect("seed");
    if !database_url.starts_with("sqlite") {
        // As autovacuum would after a bulk import: statistics for the planner and a fresh
        // visibility map. VACUUM cannot run inside the implicit transaction of a batch.
        conn.batch_execute("VACUUM ANALYZE users").expect("vacuum");
    }
}

/// A blocking HTTP client for setup steps (keeps cookies by hand), as one client address.
struct Setup {
    cookies: Jar,
    forwarded_for: String,
}

impl Setup {
    async fn request(
        &mut self,
        client: &awc::Client,
        method: &str,
        url: &str,
        form: Option<&[(String, String)]>,
    ) -> Result<(u16, String, String), String> {
        let mut req = client.request(
            awc::http::Method::from_bytes(method.as_bytes()).expect("method"),
            url,
        );
        if !self.cookies.is_empty() {
            req = req.insert_header(("cookie", self.cookies.header()));
        }
        req = req.insert_header(("x-forwarded-for", self.forwarded_for.as_str()));
        let mut res = match form {
            Some(f) => req.send_form(&f.to_vec()).await,
            None => req.send().await,
        }
        .map_err(|e| format!("{method} {url}: {e}"))?;
        self.cookies.keep(res.headers());
        let location = location(res.headers());
        let body = res
            .body()
            .limit(1 << 20)
            .await
            .map_err(|e| format!("{method} {url}: reading the body: {e}"))?;
        Ok((
            res.status().as_u16(),
            location,
            String::from_utf8_lossy(&body).into_owned(),
        ))
    }

    /// A request that must answer `want`; the answer's Location and body.
    async fn expect(
        &mut self,
        client: &awc::Client,
        (method, url): (&str, &str),
        form: Option<&[(String, String)]>,
        want: u16,
    ) -> Result<(String, String), String> {
        let (status, location, body) = self.request(client, method, url, form).await?;
        if status != want {
            let body: String = body.chars().take(300).collect();
            return Err(format!("{method} {url}: {status} (wanted {want}): {body}"));
        }
        Ok((location, body))
    }
}

fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find("<input type=\"hidden\" name=\"") {
        rest = &rest[at + 27..];
        let name_end = rest.find('"').unwrap_or(0);
        let name = rest[..name_end].to_owned();
        let v = rest.find("value=\"").map_or(0, |p| p + 7);
        let v_end = rest[v..].find('"').map_or(v, |p| v + p);
        out.push((
            name,
            rest[v..v_end].replace("&#38;", "&").replace("&amp;", "&"),
        ));
        rest = &rest[v_end..];
    }
    out
}

/// Sign in through the whole flow (app -> stand-in consent -> callback); returns the cookie
/// header, or what went wrong. `email` picks the stand-in account (new or returning).
async fn sign_in(
    client: &awc::Client,
    base: &str,
    kakao: &str,
    email: &str,
) -> Result<String, String> {
    let mut s = Setup {
        cookies: Default::default(),
        forwarded_for: next_client_address(),
    };
    let start = format!("{base}/kakao/login/");
    let (authorize, _) = s.expect(client, ("GET", &start), None, 302).await?;
    let (_, page) = s.expect(client, ("GET", &authorize), None, 200).await?;
    let mut form = hidden_inputs(&page);
    for (k, v) in [
        ("account", "new"),
        ("new_nickname", "벤치"),
        ("new_email", email),
        ("new_email_verified", "on"),
        ("new_email_valid", "on"),
        ("share_email", "on"),
        ("action", "agree"),
    ] {
        form.push((k.to_owned(), v.to_owned()));
    }
    let consent = format!("{kakao}/oauth/consent");
    let (callback, _) = s
        .expect(client, ("POST", &consent), Some(&form), 302)
        .await?;
    s.expect(client, ("GET", &callback), None, 303).await?;
    Ok(s.cookies.header())
}

/// One measurement of one request at one concurrency.
struct Measured {
    requests: u64,
    errors: u64,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// CPU cores used on average while measuring: the app, the load generator, PostgreSQL.
    server_cpu: f64,
    generator_cpu: f64,
    db_cpu: f64,
    /// Cores the hypervisor gave to other machines meanwhile: a noisy figure shows here.
    steal_cpu: f64,
}

impl Measured {
    /// The app's own CPU time per request, in microseconds: a cost that does not depend on
    /// how busy the machine was.
    fn server_us_per_request(&self) -> f64 {
        if self.requests == 0 {
            return f64::NAN;
        }
        self.server_cpu * 1e6 / self.rps
    }
}

/// CPU counters read before a measurement; `finish` turns them into cores used.
struct CpuClock {
    started: Instant,
    server: f64,
    generator: f64,
    db: f64,
    steal: f64,
}

impl CpuClock {
    fn start(server: &Server) -> CpuClock {
        CpuClock {
            started: Instant::now(),
            server: server.cpu_secs(),
            generator: own_and_reaped_children_cpu_secs(),
            db: postgres_cpu_secs(),
            steal: machine_cpu_secs().1,
        }
    }

    /// (elapsed seconds, server, generator, db cores, cores the hypervisor stole).
    fn finish(&self, server: &Server) -> (f64, f64, f64, f64, f64) {
        let elapsed = self.started.elapsed().as_secs_f64();
        (
            elapsed,
            (server.cpu_secs() - self.server) / elapsed,
            (own_and_reaped_children_cpu_secs() - self.generator) / elapsed,
            (postgres_cpu_secs() - self.db) / elapsed,
            (machine_cpu_secs().1 - self.steal) / elapsed,
        )
    }
}

/// This process's CPU seconds plus those of its children already waited for (wrk runs).
fn own_and_reaped_children_cpu_secs() -> f64 {
    proc_cpu_fields("/proc/self/stat", &[11, 12, 13, 14])
}

/// CPU seconds of every PostgreSQL process on the machine (0 when there is none), with those
/// of backends that have exited (the postmaster's reaped children: pgbench's connections).
fn postgres_cpu_secs() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| {
            std::fs::read_to_string(e.path().join("comm"))
                .is_ok_and(|c| c.starts_with("postgres") || c.starts_with("postmaster"))
        })
        .map(|e| proc_cpu_fields(&e.path().join("stat").to_string_lossy(), &[11, 12, 13, 14]))
        .sum()
}

/// `connections` keep-alive connections sending one GET for `secs`, generated by wrk (one
/// thread, so the generator uses at most one of the cores and reports how much of it).
/// Any status of 400 or above, and any connection error, counts as an error.
fn measure(
    server: &Server,
    url: &str,
    headers: &[(String, String)],
    connections: usize,
    secs: f64,
    script: &std::path::Path,
) -> Measured {
    let mut cmd = Command::new("wrk");
    cmd.arg("--threads=1")
        .arg(format!("--connections={connections}"))
        .arg(format!("--duration={}s", secs.ceil().max(1.0)))
        .arg("--timeout=10s")
        .arg(format!("--script={}", script.display()));
    for (k, v) in headers {
        cmd.arg(format!("--header={k}: {v}"));
    }
    cmd.arg(url);
    let clock = CpuClock::start(server);
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .expect("run wrk (apt-get install wrk)");
    let (_, server_cpu, generator_cpu, db_cpu, steal_cpu) = clock.finish(server);
    let summary = WrkSummary::from_output(url, &out.stdout);
    let rps = summary.requests as f64 / (summary.duration_us as f64 / 1e6);
    Measured {
        requests: summary.requests,
        errors: summary.errors,
        rps,
        p50_ms: summary.p50_us / 1000.0,
        p99_ms: summary.p99_us / 1000.0,
        server_cpu,
        generator_cpu,
        db_cpu,
        steal_cpu,
    }
}

/// (label, URL, request headers).
type Case = (String, String, Vec<(String, String)>);

/// Sign-ins of one loop: latencies of the complete ones, and the failed ones.
struct SignIns {
    done: Histogram<u64>,
    failed: u64,
    first_error: Option<String>,
}

impl SignIns {
    fn new() -> SignIns {
        SignIns {
            done: Histogram::new(3).expect("histogram"),
            failed: 0,
            first_error: None,
        }
    }

    fn fail(&mut self, error: String) {
        self.failed += 1;
        self.first_error.get_or_insert(error);
    }

    fn add(&mut self, other: SignIns) {
        let _ = self.done.add(&other.done);
        self.failed += other.failed;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// Complete sign-ins through the stand-in: `connections` people signing in over and over for
/// `secs`, each a fresh Kakao account (`returning` false) or the same account again (true).
/// Every request of the flow counts (4 per sign-in). The flow needs cookies and a form read
/// from the consent page, which wrk cannot follow, so this loop drives it with awc on two
/// threads.
fn measure_sign_ins(server: &Server, connections: usize, secs: f64, returning: bool) -> Measured {
    const THREADS: usize = 2;
    let stop = Arc::new(AtomicBool::new(false));
    let clock = CpuClock::start(server);
    let handles: Vec<_> = (0..THREADS)
        .map(|thread| {
            let stop = stop.clone();
            let base = server.base.clone();
            let kakao = server.kakao.clone();
            let tasks = connections / THREADS + usize::from(thread < connections % THREADS);
            std::thread::spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let tasks: Vec<_> = (0..tasks)
                        .map(|task| {
                            let stop = stop.clone();
                            let base = base.clone();
                            let kakao = kakao.clone();
                            actix_web::rt::spawn(async move {
                                // One client per person: connections are kept alive between
                                // sign-ins; the cookies of each sign-in are its own.
                                let client = awc::Client::builder().disable_redirects().finish();
                                let mut outcome = SignIns::new();
                                let mut n = 0u64;
                                while !stop.load(Ordering::Relaxed) {
                                    n += 1;
                                    let pid = std::process::id();
                                    let email = if returning {
                                        format!("returning-{thread}-{task}@example.com")
                                    } else {
                                        format!("new-{thread}-{task}-{n}-{pid}@example.com")
                                    };
                                    let t0 = Instant::now();
                                    match sign_in(&client, &base, &kakao, &email).await {
                                        Ok(_) => {
                                            let _ = outcome
                                                .done
                                                .record(t0.elapsed().as_micros() as u64);
                                        }
                                        Err(e) => outcome.fail(e),
                                    }
                                }
                                outcome
                            })
                        })
                        .collect();
                    let mut outcome = SignIns::new();
                    for t in tasks {
                        if let Ok(o) = t.await {
                            outcome.add(o);
                        }
                    }
                    outcome
                })
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    let mut outcome = SignIns::new();
    for h in handles {
        outcome.add(h.join().expect("sign-in thread"));
    }
    let (elapsed, server_cpu, generator_cpu, db_cpu, steal_cpu) = clock.finish(server);
    if let Some(e) = &outcome.first_error {
        eprintln!("{} sign-ins failed; the first: {e}", outcome.failed);
    }
    let hist = outcome.done;
    Measured {
        requests: hist.len() * REQUESTS_PER_SIGN_IN,
        errors: outcome.failed,
        rps: (hist.len() * REQUESTS_PER_SIGN_IN) as f64 / elapsed,
        p50_ms: hist.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: hist.value_at_quantile(0.99) as f64 / 1000.0,
        server_cpu,
        generator_cpu,
        db_cpu,
        steal_cpu,
    }
}

/// What PostgreSQL alone can do on this machine: the queries behind `/profile/` (the session's
/// user) and behind the API's first page (that, then 51 rows), sent by pgbench with no app in
/// between, as pgbench scripts. The app's rows for those pages are best read against these.
fn database_only_cases(database_url: &str) -> Vec<(&'static str, String)> {
    use diesel::prelude::*;
    use kakao_login::db::schema::user_sessions;
    let pool = kakao_login::db::build_pool(database_url, 1, Duration::from_secs(10)).expect("pool");
    let mut conn = pool.get().expect("connection");
    // The staff member's session: the only one when the benchmark starts, a hex digest.
    let session: String = user_sessions::table
        .select(user_sessions::id)
        .order(user_sessions::created_at)
        .first(&mut **conn)
        .expect("a session");
    let user_of_session = format!(
        "SELECT users.* FROM user_sessions INNER JOIN users ON user_sessions.user_id = users.id \
         WHERE user_sessions.id = '{session}' AND user_sessions.expires_at > now()::timestamp \
         AND user_sessions.epoch = users.session_epoch AND users.is_active;\n"
    );
    let first_page = "SELECT users.* FROM users WHERE 1 = 1 ORDER BY id ASC LIMIT 51;\n";
    vec![
        ("pgbench: /profile/'s query", user_of_session.clone()),
        (
            "pgbench: first page's two",
            format!("{user_of_session}{first_page}"),
        ),
    ]
}

/// pgbench running `sql` (one transaction per run of the script) over `connections` for
/// `secs`, one thread, prepared statements; latencies from its per-transaction log.
fn measure_pgbench(
    server: &Server,
    database_url: &str,
    sql: &str,
    connections: usize,
    secs: f64,
) -> Measured {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("script.sql");
    std::fs::write(&script, sql).expect("write pgbench script");
    let clock = CpuClock::start(server);
    let out = Command::new("pgbench")
        .current_dir(dir.path())
        .args(["--no-vacuum", "--protocol=prepared", "--jobs=1", "--log"])
        .arg("--log-prefix=txn")
        .arg(format!("--client={connections}"))
        .arg(format!("--time={}", secs.ceil().max(1.0)))
        .arg(format!("--file={}", script.display()))
        // The URL the app's pooled connections use (on this machine: no TLS).
        .arg(kakao_login::db::with_libpq_bounds(
            database_url,
            Duration::from_secs(5),
        ))
        .stderr(Stdio::inherit())
        .output()
        .expect("run pgbench (apt-get install postgresql-client)");
    let (elapsed, server_cpu, generator_cpu, db_cpu, steal_cpu) = clock.finish(server);
    assert!(out.status.success(), "pgbench failed");
    // Each log line: client, transaction number, latency in µs, script, epoch s, µs.
    let mut hist = Histogram::<u64>::new(3).expect("histogram");
    for entry in std::fs::read_dir(dir.path())
        .expect("pgbench logs")
        .flatten()
    {
        if !entry.file_name().to_string_lossy().starts_with("txn") {
            continue;
        }
        let log = std::fs::read_to_string(entry.path()).unwrap_or_default();
        for latency in log.lines().filter_map(|l| l.split_whitespace().nth(2)) {
            if let Ok(us) = latency.parse::<u64>() {
                let _ = hist.record(us);
            }
        }
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    // A figure of pgbench's summary: the first word after `label` on its line.
    fn figure<T: std::str::FromStr>(stdout: &str, label: &str) -> Option<T> {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(label))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    }
    let tps = figure(&stdout, "tps = ").unwrap_or_else(|| hist.len() as f64 / elapsed);
    let failed = figure(&stdout, "number of failed transactions: ").unwrap_or(0);
    Measured {
        requests: hist.len(),
        errors: failed,
        rps: tps,
        p50_ms: hist.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: hist.value_at_quantile(0.99) as f64 / 1000.0,
        server_cpu,
        generator_cpu,
        db_cpu,
        steal_cpu,
    }
}

/// Requests in one complete sign-in: start, Kakao consent page, consent, callback.
const REQUESTS_PER_SIGN_IN: u64 = 4;

/// Print one table row and return it as JSON.
fn report(
    backend: &str,
    size: usize,
    name: &str,
    conns: usize,
    m: &Measured,
    ceiling: f64,
) -> serde_json::Value {
    let fraction = m.rps / ceiling;
    let errors = if m.errors > 0 {
        format!("  ({} errors)", m.errors)
    } else {
        String::new()
    };
    println!(
        "{backend:<8} {size:>7} {name:<26} {conns:>5} {:>8.0} {:>7.2} {:>7.2} {:>5.0}% {:>7.0} {:>5.2} {:>5.2} {:>5.2} {:>5.2}{errors}",
        m.rps,
        m.p50_ms,
        m.p99_ms,
        fraction * 100.0,
        m.server_us_per_request(),
        m.server_cpu,
        m.generator_cpu,
        m.db_cpu,
        m.steal_cpu,
    );
    json!({
        "backend": backend, "users": size, "request": name, "connections": conns,
        "requests": m.requests, "errors": m.errors, "rps": m.rps,
        "p50_ms": m.p50_ms, "p99_ms": m.p99_ms, "fraction_of_ceiling": fraction,
        "app_cpu_us_per_request": m.server_us_per_request(),
        "app_cpu_cores": m.server_cpu, "generator_cpu_cores": m.generator_cpu,
        "postgres_cpu_cores": m.db_cpu, "steal_cores": m.steal_cpu,
    })
}

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

fn main() {
    kakao_login::app::init_crypto();
    // `cargo bench` passes `--bench`; anything else (like a filter) is not used.
    let sizes: Vec<usize> = env_list("BENCH_SIZES", "10000,100000,1000000")
        .iter()
        .map(|s| s.parse().expect("BENCH_SIZES"))
        .collect();
    let backends = env_list("BENCH_BACKENDS", "sqlite,postgres");
    let connections: Vec<usize> = env_list("BENCH_CONNECTIONS", "16,64")
        .iter()
        .map(|s| s.parse().expect("BENCH_CONNECTIONS"))
        .collect();
    let secs: f64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4.0);
    let pg_admin = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());

    // Substrings of the request names to measure; the ceiling is always measured.
    let only = env_list("BENCH_ONLY", "");
    let wanted = |name: &str| {
        only.is_empty()
            || name.contains("ceiling")
            || only.iter().any(|o| name.contains(o.as_str()))
    };
    let runtime = actix_web::rt::System::new();
    let mut rows: Vec<serde_json::Value> = Vec::new();
    let script = tempfile::NamedTempFile::new().expect("wrk script");
    std::fs::write(script.path(), WRK_SCRIPT).expect("write wrk script");
    let per_client_script = tempfile::NamedTempFile::new().expect("wrk script");
    std::fs::write(
        per_client_script.path(),
        format!("{WRK_FORWARDED_FOR}{WRK_SCRIPT}"),
    )
    .expect("write wrk script");
    println!(
        "{:<8} {:>7} {:<26} {:>5} {:>8} {:>7} {:>7} {:>6} {:>7} {:>5} {:>5} {:>5} {:>5}",
        "backend",
        "users",
        "request",
        "conns",
        "req/s",
        "p50 ms",
        "p99 ms",
        "ceil",
        "µs/req",
        "app",
        "gen",
        "db",
        "steal"
    );
    for backend in &backends {
        for &size in &sizes {
            let dir = tempfile::tempdir().expect("tempdir");
            let (url, _guard) = match backend.as_str() {
                "sqlite" => (format!("sqlite://{}/bench.db", dir.path().display()), None),
                "postgres" => {
                    let name = format!("kl_bench_{}", std::process::id());
                    let guard = PgDatabase::create(&pg_admin, &name);
                    (guard.url.clone(), Some(guard))
                }
                other => panic!("unknown backend {other}"),
            };
            let seeded = Instant::now();
            seed(&url, size);
            let seed_secs = seeded.elapsed().as_secs_f64();
            let server = start_server(&url, dir.path());
            let base = server.base.clone();
            let cookie = runtime.block_on(async {
                let client = awc::Client::builder().disable_redirects().finish();
                sign_in(&client, &base, &server.kakao, "staff@example.com")
                    .await
                    .expect("the staff member signs in")
            });
            make_staff(&url, "staff@example.com");
            let database_only = if backend == "postgres" {
                database_only_cases(&url)
            } else {
                Vec::new()
            };

            let cookie_header = vec![("cookie".to_owned(), cookie.clone())];
            let mut cases: Vec<Case> = vec![
                (
                    "GET /healthz (ceiling)".into(),
                    format!("{base}/healthz"),
                    vec![],
                ),
                ("GET / (login page)".into(), format!("{base}/"), vec![]),
                (
                    "GET /kakao/login/".into(),
                    format!("{base}/kakao/login/"),
                    vec![],
                ),
                (
                    "GET /profile/".into(),
                    format!("{base}/profile/"),
                    cookie_header.clone(),
                ),
                (
                    "GET /api/users/ first page".into(),
                    format!("{base}/api/users/"),
                    cookie_header.clone(),
                ),
                (
                    "GET /api/users/ deep page".into(),
                    deep_page(&base, size),
                    cookie_header.clone(),
                ),
                (
                    "GET /api/users/?search=".into(),
                    format!("{base}/api/users/?search=kim%2012"),
                    cookie_header.clone(),
                ),
                (
                    "GET /admin/users/".into(),
                    format!("{base}/admin/users/"),
                    cookie_header.clone(),
                ),
                (
                    "GET /admin/users/?q=".into(),
                    format!("{base}/admin/users/?q=kim%2012"),
                    cookie_header.clone(),
                ),
            ];
            cases.retain(|(name, _, _)| wanted(name));
            for &conns in &connections {
                let mut ceiling = f64::NAN;
                for (name, url, headers) in &cases {
                    // Login starts are limited per client: each from an address of its own.
                    let script = if name == "GET /kakao/login/" {
                        per_client_script.path()
                    } else {
                        script.path()
                    };
                    let m = measure(&server, url, headers, conns, secs, script);
                    if name.contains("ceiling") {
                        ceiling = m.rps;
                    }
                    rows.push(report(backend, size, name, conns, &m, ceiling));
                }
                for (name, returning) in [
                    ("sign-ins: new people", false),
                    ("sign-ins: returning", true),
                ] {
                    if !wanted(name) {
                        continue;
                    }
                    let m = measure_sign_ins(&server, conns, secs, returning);
                    let mut row = report(backend, size, name, conns, &m, ceiling);
                    let per_sec = m.rps / REQUESTS_PER_SIGN_IN as f64;
                    row["sign_ins_per_sec"] = json!(per_sec);
                    println!("{:>48} = {per_sec:.0} complete sign-ins/s", "");
                    rows.push(row);
                }
                for (name, sql) in &database_only {
                    if wanted(name) {
                        let m = measure_pgbench(&server, &url, sql, conns, secs);
                        rows.push(report(backend, size, name, conns, &m, ceiling));
                    }
                }
            }
            rows.push(json!({
                "backend": backend, "users": size, "seed_secs": seed_secs,
                "startup_ms": server.startup.as_secs_f64() * 1000.0,
                "peak_rss_mib": server.peak_rss_mib(),
            }));
            println!(
                "{backend:<10} {size:>8} seeded in {seed_secs:.1} s; start-up {:.0} ms; peak RSS {:.1} MiB",
                server.startup.as_secs_f64() * 1000.0,
                server.peak_rss_mib()
            );
            drop(server);
        }
    }
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("bench");
    std::fs::create_dir_all(&out).expect("target/bench");
    let report = json!({
        "machine": machine(),
        "date": chrono::Utc::now().to_rfc3339(),
        "results": rows,
    });
    std::fs::write(
        out.join("load.json"),
        serde_json::to_string_pretty(&report).unwrap_or_default(),
    )
    .expect("write load.json");
    println!("wrote target/bench/load.json");
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {cpu}")
}

fn make_staff(database_url: &str, email: &str) {
    use diesel::prelude::*;
    use kakao_login::db::schema::users;
    let pool = kakao_login::db::build_pool(database_url, 1, Duration::from_secs(10)).expect("pool");
    let mut conn = pool.get().expect("connection");
    diesel::update(users::table.filter(users::email.eq(email)))
        .set((users::is_staff.eq(true), users::is_superuser.eq(true)))
        .execute(&mut **conn)
        .expect("make staff");
}

/// The URL of a page deep in the list: a cursor at the middle id, as `next` links carry.
fn deep_page(base: &str, size: usize) -> String {
    use kakao_login::users::query::{Cursor, Direction};
    let middle = (size / 2).max(1) as i64;
    let cursor = Cursor {
        direction: Direction::After,
        ordering: "id".into(),
        value: middle.to_string(),
        id: middle,
    };
    format!("{base}/api/users/?cursor={}", cursor.encode())
}

/// A fresh PostgreSQL database for one run, dropped afterwards.
struct PgDatabase {
    admin: String,
    name: String,
    url: String,
}

impl PgDatabase {
    fn create(admin: &str, name: &str) -> PgDatabase {
        use diesel::prelude::*;
        let mut conn =
            diesel::pg::PgConnection::establish(admin).expect("PostgreSQL (BENCH_DATABASE_URL)");
        let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn);
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .expect("create database");
        let mut url = url::Url::parse(admin).expect("url");
        url.set_path(&format!("/{name}"));
        PgDatabase {
            admin: admin.to_owned(),
            name: name.to_owned(),
            url: url.to_string(),
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        use diesel::prelude::*;
        if let Ok(mut conn) = diesel::pg::PgConnection::establish(&self.admin) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn);
        }
    }
}
