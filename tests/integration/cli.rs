//! The command line, run as the real binary.

use std::process::{Command, Output};

use crate::support::{TestApp, TestDb, audit_rows};

/// Run `kakao-login` with the test app's database and data folder.
pub fn run_cli(app: &TestApp, args: &[&str]) -> Output {
    run_with_db(&app.db.url, app.data_dir.path(), args)
}

fn run_with_db(database_url: &str, data_dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kakao-login"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .env("DATA_DIR", data_dir)
        .env("CONFIG_DIR", "/nonexistent")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run kakao-login")
}

#[test]
fn createsuperuser_with_noinput_needs_an_email() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run_with_db(&db.url, dir.path(), &["createsuperuser", "--noinput"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--email"));
}

#[test]
fn createsuperuser_refuses_a_duplicate_and_a_bad_email() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let args = ["createsuperuser", "--email", "a@example.com", "--noinput"];
    assert!(run_with_db(&db.url, dir.path(), &args).status.success());
    // The command line is a door too: one audit row, by the operator.
    let rows = audit_rows(&db.pool());
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (
            rows[0].action.as_str(),
            rows[0].actor_id,
            rows[0].via.as_str()
        ),
        ("create", None, "cli")
    );
    assert!(
        rows[0]
            .field_changes()
            .iter()
            .any(|c| c.field == "is_superuser" && c.new == "true")
    );
    let again = run_with_db(&db.url, dir.path(), &args);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let bad = run_with_db(
        &db.url,
        dir.path(),
        &["createsuperuser", "--email", "nope", "--noinput"],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("email"));
    assert_eq!(audit_rows(&db.pool()).len(), 1, "refusals write nothing");
}

#[test]
fn migrate_and_check_succeed_on_a_good_configuration() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run_with_db(&db.url, dir.path(), &["migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run_with_db(&db.url, dir.path(), &["check"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("ok    database"));
}

#[test]
fn check_reports_every_problem_and_exits_non_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_kakao-login"))
        .arg("check")
        .env_clear()
        .env("APP_ENV", "production")
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .env("DATA_DIR", dir.path())
        .env("CONFIG_DIR", "/nonexistent")
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(stdout.contains("SESSION_KEY"), "{stdout}");
    assert!(stdout.contains("KAKAO_CLIENT_ID"), "{stdout}");
    assert!(stdout.contains("FAIL  database"), "{stdout}");
    assert!(stdout.contains("FAIL  redis"), "{stdout}");
}

#[test]
fn unknown_configuration_keys_stop_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("development.toml"), "databse_url = \"x\"\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_kakao-login"))
        .arg("check")
        .env_clear()
        .env("CONFIG_DIR", dir.path())
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("databse_url"));
}

/// The pool keeps one idle connection, so a command can end while a background thread is still
/// opening one. On PostgreSQL that connection's TLS handshake raced OpenSSL's exit-time clean-up
/// and the process died of SIGSEGV, with nothing on stderr, about once in twenty runs. 120 runs,
/// four at a time, would all but surely hit it again.
#[test]
fn commands_never_die_of_a_signal_on_exit() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let migrate = run_with_db(&db.url, dir.path(), &["migrate"]);
    assert!(migrate.status.success(), "{migrate:?}");
    let failures: Vec<String> = std::thread::scope(|s| {
        let runners: Vec<_> = (0..4)
            .map(|runner| {
                let (url, dir) = (&db.url, dir.path());
                s.spawn(move || {
                    (0..30)
                        .filter_map(|i| {
                            let email = format!("exit-{runner}-{i}@example.com");
                            let args = ["createsuperuser", "--email", &email, "--noinput"];
                            let out = run_with_db(url, dir, &args);
                            (!out.status.success()).then(|| {
                                let stderr = String::from_utf8_lossy(&out.stderr);
                                format!("{email}: {} {stderr:?}", out.status)
                            })
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        runners
            .into_iter()
            .flat_map(|r| r.join().expect("runner"))
            .collect()
    });
    assert!(failures.is_empty(), "{failures:#?}");
}

/// `check` asks Kakao (here the stand-in) about the configured keys: one line per finding,
/// naming what to fix, and a non-zero exit on any problem.
#[actix_web::test]
async fn check_diagnoses_the_kakao_keys() {
    use crate::support::{ADMIN_KEY, APP_ID, CLIENT_ID, CLIENT_SECRET};
    let kakao = kakao_login::standin::StandIn::start(kakao_login::standin::StandInConfig {
        client_id: CLIENT_ID.into(),
        client_secret: Some(CLIENT_SECRET.into()),
        app_id: APP_ID,
        admin_key: Some(ADMIN_KEY.into()),
        redirect_uris: vec!["http://127.0.0.1:9/kakao/login/callback/".into()],
    })
    .await
    .expect("stand-in");
    let db = TestDb::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let check = |client_id: &str, secret: &str, admin_key: &str| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kakao-login"));
        command
            .arg("check")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &db.url)
            .env("DATA_DIR", dir.path())
            .env("CONFIG_DIR", "/nonexistent")
            .env("RUST_LOG", "warn")
            .env("PUBLIC_URL", "http://127.0.0.1:9")
            .env("KAKAO_CLIENT_ID", client_id)
            .env("KAKAO_CLIENT_SECRET", secret)
            .env("KAKAO_ADMIN_KEY", admin_key)
            .env("KAKAO_APP_ID", APP_ID.to_string())
            .env("KAKAO_OIDC", "true")
            .env("KAKAO_AUTH_BASE_URL", &kakao.base_url)
            .env("KAKAO_API_BASE_URL", &kakao.base_url);
        // The stand-in answers on this thread: wait for the command off it.
        async move {
            let out = actix_web::rt::task::spawn_blocking(move || command.output())
                .await
                .expect("joined")
                .expect("run kakao-login");
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
            )
        }
    };
    let (ok, stdout) = check(CLIENT_ID, CLIENT_SECRET, ADMIN_KEY).await;
    assert!(ok, "{stdout}");
    assert!(
        stdout.contains("ok    Kakao accepts KAKAO_CLIENT_ID"),
        "{stdout}"
    );
    assert!(stdout.contains("JWKS is reachable"), "{stdout}");
    assert!(stdout.contains("discovery names the issuer"), "{stdout}");
    assert!(
        stdout.contains("ok    KAKAO_ADMIN_KEY is accepted"),
        "{stdout}"
    );
    assert!(!stdout.contains("FAIL"), "{stdout}");

    let (ok, stdout) = check("not-our-key", CLIENT_SECRET, ADMIN_KEY).await;
    assert!(!ok);
    assert!(
        stdout.contains("FAIL  Kakao token endpoint: KAKAO_CLIENT_ID is not the REST API key"),
        "{stdout}"
    );
    let (ok, stdout) = check(CLIENT_ID, "wrong-secret", ADMIN_KEY).await;
    assert!(!ok);
    assert!(
        stdout.contains("FAIL  Kakao token endpoint: KAKAO_CLIENT_SECRET is wrong or missing"),
        "{stdout}"
    );
    let (ok, stdout) = check(CLIENT_ID, CLIENT_SECRET, "wrong-admin-key").await;
    assert!(!ok);
    assert!(
        stdout.contains("FAIL  KAKAO_ADMIN_KEY is not this app's admin key"),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("FAIL").count(),
        1,
        "one problem, one line: {stdout}"
    );
}
