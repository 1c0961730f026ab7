//! Load benchmark: `cargo bench --bench load`.
//!
//! Starts the release `kakao-login` binary as a child process on loopback with its built-in
//! Kakao stand-in, seeds users through a bulk SQL path, signs a staff user in through the real
//! flow, and measures throughput and latency (p50, p99) with keep-alive connections at several
//! concurrency levels. Every figure is also given as a fraction of `GET /healthz` (no I/O) on
//! the same server in the same run, so results compare across noisy machines.
//!
//! Settings (environment): `BENCH_SIZES` (users, default `10000,100000,1000000`),
//! `BENCH_BACKENDS` (`sqlite,postgres`), `BENCH_CONNECTIONS` (`16,64`), `BENCH_SECS` (seconds
//! per measurement, default 4), `BENCH_DATABASE_URL` (PostgreSQL admin URL, default
//! `postgres://postgres@127.0.0.1:5432/test`). Results: a table on stdout and
//! `target/bench/load.json`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::json;

/// A child process stopped when dropped.
struct Server {
    child: Child,
    base: String,
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
        proc_cpu_secs(&format!("/proc/{}/stat", self.child.id()))
    }
}

fn proc_cpu_secs(stat_path: &str) -> f64 {
    let stat = std::fs::read_to_string(stat_path).unwrap_or_default();
    // Fields after the command name (which may contain spaces) start after ") ".
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|f| f.parse::<f64>().ok()))
        .sum();
    ticks / 100.0
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn start_server(database_url: &str, data_dir: &std::path::Path) -> Server {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_kakao-login"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("PUBLIC_URL", &base)
        .env("DATABASE_URL", database_url)
        .env("DATABASE_POOL_SIZE", "16")
        .env("DATA_DIR", data_dir)
        .env("CONFIG_DIR", "/nonexistent")
        .env("RUST_LOG", "error")
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
             FROM generate_series(1, {n}) AS i; ANALYZE users;"
        )
    };
    conn.batch_execute(&sql).expect("seed");
}

/// A blocking HTTP client for setup steps (keeps cookies by hand).
struct Setup {
    cookies: std::collections::BTreeMap<String, String>,
}

impl Setup {
    async fn request(
        &mut self,
        client: &awc::Client,
        method: &str,
        url: &str,
        form: Option<&[(String, String)]>,
    ) -> (u16, String, String) {
        let mut req = client.request(
            awc::http::Method::from_bytes(method.as_bytes()).expect("method"),
            url,
        );
        if !self.cookies.is_empty() {
            let cookie: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            req = req.insert_header(("cookie", cookie.join("; ")));
        }
        let mut res = match form {
            Some(f) => req.send_form(&f.to_vec()).await,
            None => req.send().await,
        }
        .expect("setup request");
        for value in res.headers().get_all("set-cookie") {
            let first = value
                .to_str()
                .unwrap_or_default()
                .split(';')
                .next()
                .unwrap_or_default();
            if let Some((k, v)) = first.split_once('=') {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        let location = res
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = res.body().limit(1 << 20).await.unwrap_or_default();
        (
            res.status().as_u16(),
            location,
            String::from_utf8_lossy(&body).into_owned(),
        )
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
/// header. `email` picks the stand-in account (new or returning).
async fn sign_in(base: &str, email: &str) -> (String, usize) {
    let client = awc::Client::builder().disable_redirects().finish();
    let mut s = Setup {
        cookies: Default::default(),
    };
    let mut requests = 0;
    let (_, authorize, _) = s
        .request(&client, "GET", &format!("{base}/kakao/login/"), None)
        .await;
    let (_, _, page) = s.request(&client, "GET", &authorize, None).await;
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
    let (_, callback, _) = s
        .request(
            &client,
            "POST",
            &format!("{base}/_kakao/oauth/consent"),
            Some(&form),
        )
        .await;
    let (status, _, body) = s.request(&client, "GET", &callback, None).await;
    requests += 4;
    assert_eq!(status, 303, "sign-in failed: {body}");
    let cookie: Vec<String> = s.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
    (cookie.join("; "), requests)
}

/// One measurement: `connections` keep-alive clients hammering one request for `secs`.
struct Measured {
    requests: u64,
    errors: u64,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    generator_cpu: f64,
    server_cpu: f64,
}

fn measure(
    server: &Server,
    url: &str,
    headers: &[(String, String)],
    connections: usize,
    secs: f64,
) -> Measured {
    let stop = Arc::new(AtomicBool::new(false));
    let server_cpu_before = server.cpu_secs();
    let own_before = proc_cpu_secs("/proc/self/stat");
    let started = Instant::now();
    let threads = 2;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let stop = stop.clone();
            let url = url.to_owned();
            let headers = headers.to_vec();
            let per_thread = connections / threads + usize::from(t < connections % threads);
            std::thread::spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let tasks: Vec<_> = (0..per_thread)
                        .map(|_| {
                            let stop = stop.clone();
                            let url = url.clone();
                            let headers = headers.clone();
                            actix_web::rt::spawn(async move {
                                let client = Rc::new(
                                    awc::Client::builder()
                                        .disable_redirects()
                                        .timeout(Duration::from_secs(10))
                                        .finish(),
                                );
                                let mut hist = Histogram::<u64>::new(3).expect("histogram");
                                let mut errors = 0u64;
                                while !stop.load(Ordering::Relaxed) {
                                    let t0 = Instant::now();
                                    let mut req = client.get(&url);
                                    for (k, v) in &headers {
                                        req = req.insert_header((k.as_str(), v.as_str()));
                                    }
                                    match req.send().await {
                                        Ok(mut res) if res.status().as_u16() < 400 => {
                                            let _ = res.body().limit(1 << 20).await;
                                            let _ = hist.record(t0.elapsed().as_micros() as u64);
                                        }
                                        _ => errors += 1,
                                    }
                                }
                                (hist, errors)
                            })
                        })
                        .collect();
                    let mut hist = Histogram::<u64>::new(3).expect("histogram");
                    let mut errors = 0;
                    for t in tasks {
                        if let Ok((h, e)) = t.await {
                            let _ = hist.add(&h);
                            errors += e;
                        }
                    }
                    (hist, errors)
                })
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    let mut hist = Histogram::<u64>::new(3).expect("histogram");
    let mut errors = 0;
    for h in handles {
        let (h, e) = h.join().expect("load thread");
        let _ = hist.add(&h);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Measured {
        requests: hist.len(),
        errors,
        rps: hist.len() as f64 / elapsed,
        p50_ms: hist.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: hist.value_at_quantile(0.99) as f64 / 1000.0,
        generator_cpu: (proc_cpu_secs("/proc/self/stat") - own_before) / elapsed,
        server_cpu: (server.cpu_secs() - server_cpu_before) / elapsed,
    }
}

/// (label, URL, request headers).
type Case = (String, String, Vec<(String, String)>);

/// Complete sign-ins through the stand-in: `connections` people signing in over and over for
/// `secs`, each a fresh Kakao account (`returning` false) or the same account again (true).
/// Every request of the flow counts (4 per sign-in).
fn measure_sign_ins(server: &Server, connections: usize, secs: f64, returning: bool) -> Measured {
    let stop = Arc::new(AtomicBool::new(false));
    let server_cpu_before = server.cpu_secs();
    let own_before = proc_cpu_secs("/proc/self/stat");
    let started = Instant::now();
    let threads = 2;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let stop = stop.clone();
            let base = server.base.clone();
            let per_thread = connections / threads + usize::from(t < connections % threads);
            std::thread::spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let tasks: Vec<_> = (0..per_thread)
                        .map(|task| {
                            let stop = stop.clone();
                            let base = base.clone();
                            actix_web::rt::spawn(async move {
                                let mut hist = Histogram::<u64>::new(3).expect("histogram");
                                let mut n = 0u64;
                                while !stop.load(Ordering::Relaxed) {
                                    n += 1;
                                    let email = if returning {
                                        format!("returning-{t}-{task}@example.com")
                                    } else {
                                        format!(
                                            "new-{t}-{task}-{n}-{}@example.com",
                                            std::process::id()
                                        )
                                    };
                                    let t0 = Instant::now();
                                    sign_in(&base, &email).await;
                                    let _ = hist.record(t0.elapsed().as_micros() as u64);
                                }
                                hist
                            })
                        })
                        .collect();
                    let mut hist = Histogram::<u64>::new(3).expect("histogram");
                    for t in tasks {
                        if let Ok(h) = t.await {
                            let _ = hist.add(&h);
                        }
                    }
                    hist
                })
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    let mut hist = Histogram::<u64>::new(3).expect("histogram");
    for h in handles {
        let _ = hist.add(h.join().expect("sign-in thread"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    Measured {
        requests: hist.len() * 4,
        errors: 0,
        rps: hist.len() as f64 / elapsed,
        p50_ms: hist.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: hist.value_at_quantile(0.99) as f64 / 1000.0,
        generator_cpu: (proc_cpu_secs("/proc/self/stat") - own_before) / elapsed,
        server_cpu: (server.cpu_secs() - server_cpu_before) / elapsed,
    }
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

    let runtime = actix_web::rt::System::new();
    let mut rows: Vec<serde_json::Value> = Vec::new();
    println!(
        "{:<10} {:>8} {:<28} {:>5} {:>10} {:>8} {:>8} {:>9} {:>6} {:>6}",
        "backend",
        "users",
        "request",
        "conns",
        "req/s",
        "p50 ms",
        "p99 ms",
        "of ceil",
        "srvCPU",
        "genCPU"
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
            let (cookie, _) = runtime.block_on(sign_in(&base, "staff@example.com"));
            make_staff(&url, "staff@example.com");

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
            ];
            if std::env::var_os("BENCH_SKIP_ADMIN").is_none() {
                cases.push((
                    "GET /admin/users/".into(),
                    format!("{base}/admin/users/"),
                    cookie_header.clone(),
                ));
                cases.push((
                    "GET /admin/users/?q=".into(),
                    format!("{base}/admin/users/?q=kim%2012"),
                    cookie_header.clone(),
                ));
            }
            for &conns in &connections {
                let mut ceiling = f64::NAN;
                for (name, url, headers) in &cases {
                    let m = measure(&server, url, headers, conns, secs);
                    if name.contains("ceiling") {
                        ceiling = m.rps;
                    }
                    let fraction = m.rps / ceiling;
                    println!(
                        "{:<10} {:>8} {:<28} {:>5} {:>10.0} {:>8.2} {:>8.2} {:>8.0}% {:>6.2} {:>6.2}{}",
                        backend,
                        size,
                        name,
                        conns,
                        m.rps,
                        m.p50_ms,
                        m.p99_ms,
                        fraction * 100.0,
                        m.server_cpu,
                        m.generator_cpu,
                        if m.errors > 0 {
                            format!("  ({} errors)", m.errors)
                        } else {
                            String::new()
                        }
                    );
                    rows.push(json!({
                        "backend": backend, "users": size, "request": name, "connections": conns,
                        "requests": m.requests, "errors": m.errors, "rps": m.rps,
                        "p50_ms": m.p50_ms, "p99_ms": m.p99_ms, "fraction_of_ceiling": fraction,
                        "server_cpu_cores": m.server_cpu, "generator_cpu_cores": m.generator_cpu,
                    }));
                }
                for (name, returning) in [
                    ("sign-ins: new people", false),
                    ("sign-ins: returning", true),
                ] {
                    let m = measure_sign_ins(&server, conns, secs, returning);
                    println!(
                        "{:<10} {:>8} {:<28} {:>5} {:>10.1} {:>8.2} {:>8.2} {:>8.0}% {:>6.2} {:>6.2}  (sign-ins/s; {:.0} req/s)",
                        backend,
                        size,
                        name,
                        conns,
                        m.rps,
                        m.p50_ms,
                        m.p99_ms,
                        m.rps * 4.0 / ceiling * 100.0,
                        m.server_cpu,
                        m.generator_cpu,
                        m.rps * 4.0
                    );
                    rows.push(json!({
                        "backend": backend, "users": size, "request": name, "connections": conns,
                        "sign_ins": m.requests / 4, "sign_ins_per_sec": m.rps,
                        "requests_per_sec": m.rps * 4.0, "p50_ms": m.p50_ms, "p99_ms": m.p99_ms,
                        "fraction_of_ceiling": m.rps * 4.0 / ceiling,
                        "server_cpu_cores": m.server_cpu, "generator_cpu_cores": m.generator_cpu,
                    }));
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
        .execute(&mut *conn)
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
