//! The break-glass sign-in at /admin/login/ and the `changepassword` command behind it.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::{Browser, Role, TestApp, UserPatch};

/// Run `kakao-login changepassword` with the password on stdin.
fn change_password(app: &TestApp, email: &str, password: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kakao-login"))
        .args(["changepassword", "--email", email, "--stdin"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &app.db.url)
        .env("DATA_DIR", app.data_dir.path())
        .env("CONFIG_DIR", "/nonexistent")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kakao-login");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("write");
    child.wait_with_output().expect("wait")
}

async fn try_password(
    app: &TestApp,
    browser: &Browser,
    email: &str,
    password: &str,
) -> crate::support::Resp {
    let token = app.csrf(browser, "/admin/login/").await;
    browser
        .post_form(
            &app.url("/admin/login/"),
            &[
                ("csrf_token", &token),
                ("email", email),
                ("password", password),
                ("next", "/admin/users/"),
            ],
        )
        .await
}

#[actix_web::test]
async fn staff_sign_in_with_a_break_glass_password_and_guessing_is_limited() {
    let app = TestApp::spawn().await;
    let (_, staff_user) = app.signed_in_as(Role::Staff, "staff@example.com").await;
    app.create_user("member@example.com", "회원");
    let short = change_password(&app, "staff@example.com", "short");
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("12"));
    let member = change_password(&app, "member@example.com", "a long enough password");
    assert!(!member.status.success(), "members get no password");
    let ok = change_password(&app, "staff@example.com", "correct horse battery");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let row = app.audit_rows().pop().expect("audit row");
    assert_eq!(
        (
            row.action.as_str(),
            row.actor_id,
            row.target_id,
            row.via.as_str()
        ),
        ("set_password", None, Some(staff_user.id), "cli")
    );

    let browser = app.browser();
    let wrong = try_password(&app, &browser, "staff@example.com", "wrong password!").await;
    let unknown = try_password(&app, &browser, "nobody@example.com", "wrong password!").await;
    assert_eq!(wrong.status, 401);
    assert_eq!(unknown.status, 401);
    assert_eq!(
        wrong.body.replace("staff@example.com", "E"),
        unknown.body.replace("nobody@example.com", "E"),
        "a wrong password and an unknown email look the same"
    );
    assert_eq!(browser.get(&app.url("/admin/")).await.status, 303);

    let right = try_password(&app, &browser, "STAFF@example.com", "correct horse battery").await;
    assert_eq!(right.status, 303, "{}", right.body);
    assert_eq!(right.location(), "/admin/users/");
    assert_eq!(browser.get(&app.url("/admin/")).await.status, 200);
    // The same server-side session as a Kakao sign-in: signing out ends it.
    let token = app.csrf(&browser, "/kakao/logout/").await;
    browser
        .post_form(&app.url("/kakao/logout/"), &[("csrf_token", &token)])
        .await;
    assert_eq!(browser.get(&app.url("/admin/")).await.status, 303);

    // A deactivated staff member cannot use it.
    app.change(staff_user.id, UserPatch::active(false));
    let inactive = try_password(
        &app,
        &app.browser(),
        "staff@example.com",
        "correct horse battery",
    )
    .await;
    assert_eq!(inactive.status, 401);

    // Per account: five attempts in 15 minutes, then 429 with Retry-After, even with the
    // right password. Every attempt counts: the wrong, the right and the inactive one above.
    let guesser = app.browser();
    for _ in 0..2 {
        assert_eq!(
            try_password(&app, &guesser, "staff@example.com", "guess guess guess")
                .await
                .status,
            401
        );
    }
    let limited = try_password(&app, &guesser, "staff@example.com", "correct horse battery").await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert_eq!(limited.error_code().as_deref(), Some("rate_limited"));
    let retry: u64 = limited
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!(retry > 0 && retry <= 900);
    // Per client: other emails from the same address run out too.
    let mut statuses = Vec::new();
    for i in 0..16 {
        statuses.push(
            try_password(
                &app,
                &guesser,
                &format!("x{i}@example.com"),
                "guess guess guess",
            )
            .await
            .status,
        );
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
}

/// 149 break-glass guesses at one account sent all at once, then the right password: each
/// takes its place in the limit before its password is looked at, so no more passwords are
/// verified than the limit allows.
async fn concurrent_guesses_at_one_account(app: &TestApp) {
    let (_, staff) = app.signed_in_as(Role::Staff, "staff@example.com").await;
    let ok = change_password(app, "staff@example.com", "correct horse battery");
    assert!(ok.status.success());
    let guesser = app.browser();
    let token = app.csrf(&guesser, "/admin/login/").await;
    let url = app.url("/admin/login/");
    let attempt = |email: String, password: String| {
        let (guesser, token, url) = (&guesser, token.clone(), url.clone());
        async move {
            guesser
                .post_form(
                    &url,
                    &[
                        ("csrf_token", token.as_str()),
                        ("email", email.as_str()),
                        ("password", password.as_str()),
                    ],
                )
                .await
                .status
        }
    };
    let guesses =
        (0..149).map(|i| attempt("staff@example.com".into(), format!("wrong guess {i:03}")));
    let statuses = futures_util::future::join_all(guesses).await;
    let verified = statuses.iter().filter(|s| **s != 429).count();
    assert!(verified <= 5, "{verified} passwords verified: {statuses:?}");
    assert!(
        statuses.iter().all(|s| matches!(s, 401 | 429)),
        "{statuses:?}"
    );
    let right = attempt("staff@example.com".into(), "correct horse battery".into()).await;
    assert_eq!(right, 429, "the right password is refused while limited");
    assert_eq!(
        app.user(staff.id).and_then(|u| u.last_login),
        staff.last_login
    );
}

/// 60 guesses at different accounts from one address, all at once: 20 verified.
async fn concurrent_guesses_from_one_client(app: &TestApp) {
    let guesser = app.browser();
    let token = app.csrf(&guesser, "/admin/login/").await;
    let url = app.url("/admin/login/");
    let attempt = |i: usize| {
        let (guesser, token, url) = (&guesser, token.clone(), url.clone());
        async move {
            guesser
                .post_form(
                    &url,
                    &[
                        ("csrf_token", token.as_str()),
                        ("email", &format!("someone{i}@example.com")),
                        ("password", "wrong guess"),
                    ],
                )
                .await
                .status
        }
    };
    let statuses = futures_util::future::join_all((0..60).map(attempt)).await;
    let verified = statuses.iter().filter(|s| **s == 401).count();
    assert_eq!(verified, 20, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 40);
}

#[actix_web::test]
async fn concurrent_guesses_cannot_outrun_the_limits() {
    concurrent_guesses_at_one_account(&TestApp::spawn().await).await;
    concurrent_guesses_from_one_client(&TestApp::spawn().await).await;
}

#[actix_web::test]
#[cfg_attr(
    all(not(has_redis), not(ci)),
    ignore = "redis-server is not installed: the Redis limit test did NOT run \
              (apt-get install redis-server; under CI it must run)"
)]
async fn concurrent_guesses_cannot_outrun_the_limits_kept_in_redis() {
    // A server each, so that nothing is used up yet.
    let one = crate::support::RedisServer::start();
    concurrent_guesses_at_one_account(&TestApp::spawn_with(&[("redis_url", &one.url)]).await).await;
    let two = crate::support::RedisServer::start();
    concurrent_guesses_from_one_client(&TestApp::spawn_with(&[("redis_url", &two.url)]).await)
        .await;
}

/// Behind a trusted proxy each client is counted by the address the proxy saw; from anyone
/// else `X-Forwarded-For` is ignored, so it cannot buy fresh allowances.
#[actix_web::test]
async fn clients_behind_a_trusted_proxy_are_counted_apart() {
    async fn guesses(app: &TestApp, forwarded_for: &str, n: usize) -> Vec<u16> {
        let browser = app.browser();
        let token = app.csrf(&browser, "/admin/login/").await;
        let mut statuses = Vec::new();
        for i in 0..n {
            let email = format!("someone{i}@example.com");
            let res = browser
                .post_form_with(
                    &app.url("/admin/login/"),
                    &[
                        ("csrf_token", &token),
                        ("email", &email),
                        ("password", "wrong guess"),
                    ],
                    &[("X-Forwarded-For", forwarded_for)],
                )
                .await;
            statuses.push(res.status);
        }
        statuses
    }
    let behind_proxy = TestApp::spawn_with(&[("trusted_proxies", "127.0.0.1/32")]).await;
    // The client sends its own X-Forwarded-For; the proxy appends the address it saw.
    let one = guesses(&behind_proxy, "10.9.9.9, 203.0.113.7", 21).await;
    assert_eq!(one.iter().filter(|s| **s == 401).count(), 20, "{one:?}");
    assert_eq!(one.last(), Some(&429));
    let other = guesses(&behind_proxy, "10.9.9.9, 203.0.113.8", 1).await;
    assert_eq!(other, [401], "another client has its own allowance");
    // Two addresses in one IPv6 /64 are one client.
    let v6 = guesses(&behind_proxy, "2001:db8:1:2::1", 20).await;
    assert!(v6.iter().all(|s| *s == 401), "{v6:?}");
    let same_64 = guesses(&behind_proxy, "2001:db8:1:2:ffff::9", 1).await;
    assert_eq!(same_64, [429]);

    let direct = TestApp::spawn().await;
    let mut statuses = guesses(&direct, "203.0.113.7", 20).await;
    statuses.extend(guesses(&direct, "203.0.113.8", 1).await);
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
}

/// With Redis, every instance counts against the same allowance: attempts at one account on
/// two instances add up.
#[actix_web::test]
#[cfg_attr(
    all(not(has_redis), not(ci)),
    ignore = "redis-server is not installed: the shared-limit test did NOT run \
              (apt-get install redis-server; under CI it must run)"
)]
async fn the_limits_count_across_instances_sharing_redis() {
    let redis = crate::support::RedisServer::start();
    let one = TestApp::spawn_with(&[("redis_url", &redis.url)]).await;
    let two = TestApp::spawn_with(&[("redis_url", &redis.url)]).await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        let app = if i % 2 == 0 { &one } else { &two };
        let browser = app.browser();
        statuses.push(
            try_password(app, &browser, "shared@example.com", "wrong wrong wrong")
                .await
                .status,
        );
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429, 429]);
}
