//! The login and profile pages, security headers, the 404 page, and a 503 page when the
//! database cannot be reached.

use crate::support::TestApp;

#[actix_web::test]
async fn the_profile_requires_sign_in_and_sends_people_to_the_login_page() {
    let app = TestApp::spawn().await;
    let res = app.browser().get(&app.url("/profile/")).await;
    assert_eq!(res.status, 303);
    assert_eq!(res.location(), "/?next=%2Fprofile%2F");
    let login = app.browser().get(&app.url("/?next=%2Fprofile%2F")).await;
    assert_eq!(login.status, 200);
    assert!(
        login
            .body
            .contains("href=\"/kakao/login/?next=%2Fprofile%2F\"")
    );
    assert!(login.body.contains("카카오 로그인"));
}

#[actix_web::test]
async fn signed_in_people_skip_the_login_page() {
    let app = TestApp::spawn().await;
    let (browser, _) = app.signed_in("a", "a@example.com").await;
    let res = browser.get(&app.url("/")).await;
    assert_eq!(res.status, 303);
    assert_eq!(res.location(), "/profile/");
}

#[actix_web::test]
async fn the_profile_form_shows_field_errors_then_saves() {
    let app = TestApp::spawn().await;
    let (browser, _) = app.signed_in("원래이름", "p@example.com").await;
    let token = app.csrf(&browser, "/profile/").await;
    let long_name = "가".repeat(51);
    let bad = browser
        .post_form(
            &app.url("/profile/"),
            &[("csrf_token", &token), ("name", &long_name), ("age", "abc")],
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("data-error-for=\"name\""));
    assert!(bad.body.contains("나이는 숫자로 입력하세요."));
    assert!(
        bad.body.contains(&long_name),
        "what was typed is shown again"
    );
    let bad_age = browser
        .post_form(
            &app.url("/profile/"),
            &[("csrf_token", &token), ("name", "길동"), ("age", "151")],
        )
        .await;
    assert_eq!(bad_age.status, 422);
    assert!(bad_age.body.contains("data-error-for=\"age\""));
    assert_eq!(
        app.users()[0].name.as_deref(),
        Some("원래이름"),
        "nothing saved"
    );

    let ok = browser
        .post_form(
            &app.url("/profile/"),
            &[
                ("csrf_token", &token),
                ("name", " <b>길동</b> "),
                ("age", "30"),
            ],
        )
        .await;
    assert_eq!(ok.status, 303);
    assert_eq!(ok.location(), "/profile/?saved=1");
    let user = &app.users()[0];
    assert_eq!(user.name.as_deref(), Some("<b>길동</b>"));
    assert_eq!(user.age, Some(30));
    let page = browser.get(&app.url("/profile/?saved=1")).await;
    assert!(!page.body.contains("<b>길동</b>"), "names are escaped");
    assert!(
        page.body.contains("&#60;b&#62;길동&#60;/b&#62;"),
        "names are shown escaped"
    );
    assert!(page.body.contains("저장했습니다"));

    let without_token = browser
        .post_form(&app.url("/profile/"), &[("name", "x"), ("age", "1")])
        .await;
    assert_eq!(without_token.status, 403);
}

#[actix_web::test]
async fn pages_carry_security_headers_and_unknown_paths_get_the_404_page() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    let page = browser.get(&app.url("/")).await;
    let csp = page.header("content-security-policy").expect("csp");
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert!(!page.body.contains("<script"), "no inline script");
    assert!(
        !page.body.contains("http://") && !page.body.contains("https://"),
        "no external assets"
    );

    let missing = browser.get(&app.url("/no/such/page")).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.error_code().as_deref(), Some("not_found"));

    let css = browser.get(&app.url("/static/css/app.css")).await;
    assert_eq!(css.status, 200);
    assert!(css.body.contains("#FEE500"));

    let slashless = browser.get(&app.url("/profile")).await;
    assert_eq!(slashless.status, 308);
    assert_eq!(slashless.location(), "/profile/");
    assert_eq!(browser.get(&app.url("/healthz")).await.body, "ok");
    assert_eq!(browser.get(&app.url("/readyz")).await.status, 200);
}

/// Takes every connection the app could use (the pool's, and on SQLite the read-only ones)
/// until the returned sender is used or dropped.
fn hold_connections(app: &TestApp, readers_too: bool) -> std::sync::mpsc::Sender<()> {
    let pool = app.pool.clone();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (taken, is_taken) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let mut held = vec![pool.get().expect("connection")];
        if readers_too && let Some(readers) = pool.readers() {
            held.extend((0..readers.max_size()).map(|_| readers.get().expect("reader")));
        }
        taken.send(()).expect("tell the test");
        let _ = released.recv_timeout(std::time::Duration::from_secs(10));
    });
    is_taken
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the holder has the connections");
    release
}

#[actix_web::test]
async fn the_database_going_away_gives_a_503_page_not_a_crash() {
    let app =
        TestApp::spawn_with(&[("database_timeout_secs", "1"), ("database_pool_size", "1")]).await;
    let (browser, _) = app.signed_in("a", "a@example.com").await;
    let release = hold_connections(&app, true);
    let res = browser.get(&app.url("/profile/")).await;
    assert_eq!(res.status, 503, "{}", res.body);
    assert_eq!(res.error_code().as_deref(), Some("service_unavailable"));
    assert!(res.header("retry-after").is_some());
    drop(release);
    // And once the connections are back, so is the page.
    let mut status = 0;
    for _ in 0..50 {
        status = browser.get(&app.url("/profile/")).await.status;
        if status == 200 {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(status, 200);
}

/// On SQLite, pages that only read use their own read-only connections on the HTTP worker:
/// they answer while every connection of the pool is taken, and writes still wait for one.
#[actix_web::test]
async fn reads_do_not_wait_for_the_pool_on_sqlite() {
    let app =
        TestApp::spawn_with(&[("database_timeout_secs", "1"), ("database_pool_size", "1")]).await;
    if app.pool.readers().is_none() {
        return; // PostgreSQL: every read goes through the pool (the test above).
    }
    let (browser, _) = app.signed_in("읽기", "read@example.com").await;
    let token = app.csrf(&browser, "/profile/").await;
    let release = hold_connections(&app, false);
    let page = browser.get(&app.url("/profile/")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("read@example.com"));
    let write = browser
        .post_form(
            &app.url("/profile/"),
            &[("csrf_token", &token), ("name", "쓰기"), ("age", "")],
        )
        .await;
    assert_eq!(write.status, 503, "{}", write.body);
    drop(release);
    assert_eq!(
        app.users()[0].name.as_deref(),
        Some("읽기"),
        "nothing saved"
    );
}
