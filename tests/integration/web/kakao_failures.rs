//! Every way a login can fail gets its own page and status, and never a session.

use std::time::Duration;

use kakao_login::standin::{Consent, Endpoint, Fault, TestUser};

use crate::support::{Browser, Resp, TestApp, UserPatch, query_of};

async fn assert_not_signed_in(app: &TestApp, browser: &Browser) {
    let profile = browser.get(&app.url("/profile/")).await;
    assert_eq!(profile.status, 303, "no session was created");
}

/// Log in as a fresh verified user while `fault` is set on `endpoint`.
async fn login_with_fault(app: &TestApp, endpoint: Endpoint, fault: Fault) -> (Browser, Resp) {
    let kakao_id = app.kakao_user("장애", "fault@example.com");
    let browser = app.browser();
    let back = app.consented_callback(&browser, kakao_id).await;
    app.kakao.standin.set_fault(endpoint, Some(fault));
    let done = browser.get(&back).await;
    app.kakao.standin.set_fault(endpoint, None);
    (browser, done)
}

#[actix_web::test]
async fn cancelling_at_kakao_shows_the_cancelled_page() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    let done = app.login_as(&browser, Consent::Cancel, None).await;
    assert_eq!(done.status, 200);
    assert_eq!(done.error_code().as_deref(), Some("cancelled"));
    assert!(done.body.contains("로그인을 취소했습니다"));
    assert!(
        done.body.contains("href=\"/kakao/login/\""),
        "offers to try again"
    );
    assert_not_signed_in(&app, &browser).await;
    assert_eq!(app.kakao.standin.hits(Endpoint::Token), 0);
}

#[actix_web::test]
async fn declining_email_offers_to_ask_kakao_again_and_asking_again_works() {
    let app = TestApp::spawn().await;
    let kakao_id = app.kakao_user("무메일", "noshare@example.com");
    let browser = app.browser();
    let done = app
        .login_as(
            &browser,
            Consent::Agree {
                kakao_id,
                share_email: false,
            },
            Some("/profile/"),
        )
        .await;
    assert_eq!(done.status, 403);
    assert_eq!(done.error_code().as_deref(), Some("email_required"));
    assert!(app.users().is_empty(), "no account without email");
    let ask_again = "/kakao/login/?scope=account_email&#38;next=%2Fprofile%2F";
    assert!(done.body.contains(ask_again), "{}", done.body);

    let start = browser
        .get(&app.url("/kakao/login/?scope=account_email&next=%2Fprofile%2F"))
        .await;
    assert_eq!(start.status, 302);
    let authorize = start.location();
    assert_eq!(query_of(&authorize)["scope"], "account_email openid");
    let back = app
        .authorize_with(
            &browser,
            &authorize,
            Consent::Agree {
                kakao_id,
                share_email: true,
            },
        )
        .await;
    let done = browser.get(&back).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location(), "/profile/");
    assert_eq!(app.users().len(), 1);
}

#[actix_web::test]
async fn unverified_or_invalid_emails_are_refused() {
    let app = TestApp::spawn().await;
    for (verified, valid, code) in [
        (false, true, "email_unverified"),
        (true, false, "email_invalid"),
    ] {
        let kakao_id = app.kakao.standin.add_user(TestUser {
            nickname: Some("미인증".into()),
            email: Some(format!("{code}@example.com")),
            email_verified: verified,
            email_valid: valid,
        });
        let browser = app.browser();
        let done = app.login_agreeing(&browser, kakao_id, None).await;
        assert_eq!(done.status, 403, "{code}");
        assert_eq!(done.error_code().as_deref(), Some(code));
        assert_not_signed_in(&app, &browser).await;
    }
    assert!(app.users().is_empty());
}

#[actix_web::test]
async fn an_inactive_account_cannot_sign_in() {
    let app = TestApp::spawn().await;
    let (_, kakao_id) = app.signed_in("정지", "inactive@example.com").await;
    let user = app.user_by_email("inactive@example.com").expect("user");
    app.change(user.id, UserPatch::active(false));
    let browser = app.browser();
    let done = app.login_agreeing(&browser, kakao_id, None).await;
    assert_eq!(done.status, 403);
    assert_eq!(done.error_code().as_deref(), Some("account_inactive"));
    assert_not_signed_in(&app, &browser).await;
}

#[actix_web::test]
async fn kakao_token_endpoint_failures_show_a_retry_page() {
    let app = TestApp::spawn_with(&[("kakao_timeout_ms", "700")]).await;
    let cases: Vec<(Endpoint, Fault, u16, &str)> = vec![
        (
            Endpoint::Token,
            Fault::Status(500),
            502,
            "kakao_unavailable",
        ),
        (
            Endpoint::Token,
            Fault::Status(503),
            502,
            "kakao_unavailable",
        ),
        (
            Endpoint::Token,
            Fault::MalformedJson,
            502,
            "kakao_unavailable",
        ),
        (Endpoint::Token, Fault::WrongShape, 502, "kakao_unavailable"),
        (
            Endpoint::Token,
            Fault::Delay(Duration::from_millis(2000)),
            504,
            "kakao_timeout",
        ),
        (
            Endpoint::Token,
            Fault::KauthError {
                status: 400,
                error: "invalid_grant".into(),
                error_code: "KOE320".into(),
            },
            400,
            "kakao_rejected",
        ),
        (
            Endpoint::Token,
            Fault::KauthError {
                status: 401,
                error: "invalid_client".into(),
                error_code: "KOE010".into(),
            },
            502,
            "kakao_misconfigured",
        ),
        (
            Endpoint::UserMe,
            Fault::Status(502),
            502,
            "kakao_unavailable",
        ),
        (
            Endpoint::UserMe,
            Fault::MalformedJson,
            502,
            "kakao_unavailable",
        ),
        (
            Endpoint::UserMe,
            Fault::KapiError {
                status: 400,
                code: -1,
            },
            502,
            "kakao_unavailable",
        ),
        (
            Endpoint::UserMe,
            Fault::KapiError {
                status: 401,
                code: -401,
            },
            400,
            "kakao_rejected",
        ),
        (
            Endpoint::UserMe,
            Fault::Delay(Duration::from_millis(2000)),
            504,
            "kakao_timeout",
        ),
    ];
    for (endpoint, fault, status, code) in cases {
        let label = format!("{endpoint:?} {fault:?}");
        let (browser, done) = login_with_fault(&app, endpoint, fault).await;
        assert_eq!(done.status, status, "{label}: {}", done.body);
        assert_eq!(done.error_code().as_deref(), Some(code), "{label}");
        assert_not_signed_in(&app, &browser).await;
    }
    assert!(app.users().is_empty());
}

#[actix_web::test]
async fn redirects_from_kakao_are_never_followed() {
    let app = TestApp::spawn().await;
    // A listener that counts every request; a followed redirect would show up here.
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    let canary = actix_web::HttpServer::new(move || {
        let counter = counter.clone();
        actix_web::App::new().default_service(actix_web::web::to(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { actix_web::HttpResponse::Ok().body("canary") }
        }))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .expect("bind canary");
    let canary_url = format!("http://{}/", canary.addrs()[0]);
    let canary = canary.run();
    let handle = canary.handle();
    actix_web::rt::spawn(canary);
    // The canary really answers, so a zero count means nobody asked.
    assert_eq!(app.browser().get(&canary_url).await.body, "canary");
    hits.store(0, std::sync::atomic::Ordering::SeqCst);
    let (browser, done) =
        login_with_fault(&app, Endpoint::Token, Fault::Redirect(canary_url.clone())).await;
    assert_eq!(done.status, 502, "{}", done.body);
    assert_not_signed_in(&app, &browser).await;
    let (_, done) = login_with_fault(&app, Endpoint::UserMe, Fault::Redirect(canary_url)).await;
    assert_eq!(done.status, 502);
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "never followed"
    );
    handle.stop(false).await;
}

#[actix_web::test]
async fn an_error_redirect_from_kakao_shows_a_retry_page() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    let authorize = app.start_login(&browser, None).await;
    app.kakao.standin.set_fault(
        Endpoint::Authorize,
        Some(Fault::AuthorizeError("server_error".into())),
    );
    let at_kakao = browser.get(&authorize).await;
    app.kakao.standin.set_fault(Endpoint::Authorize, None);
    assert_eq!(at_kakao.status, 302);
    let done = browser.get(&at_kakao.location()).await;
    assert_eq!(done.status, 502);
    assert_eq!(done.error_code().as_deref(), Some("kakao_unavailable"));
    assert_eq!(app.kakao.standin.hits(Endpoint::Token), 0);
}

#[actix_web::test]
async fn a_callback_without_state_is_refused_before_any_call_to_kakao() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    app.start_login(&browser, None).await;
    let done = browser
        .get(&app.url("/kakao/login/callback/?code=FAKECODE-123"))
        .await;
    assert_eq!(done.status, 400);
    assert_eq!(done.error_code().as_deref(), Some("state_missing"));
    assert_eq!(app.kakao.standin.hits(Endpoint::Token), 0);
}

#[actix_web::test]
async fn a_callback_with_another_sessions_state_is_refused() {
    let app = TestApp::spawn().await;
    let kakao_id = app.kakao_user("공격자", "attacker@example.com");
    // The attacker gets a valid code and state for their own session...
    let attacker = app.browser();
    let back = app.consented_callback(&attacker, kakao_id).await;
    // ...and makes the victim's browser open it.
    let victim = app.browser();
    app.start_login(&victim, None).await;
    let done = victim.get(&back).await;
    assert_eq!(done.status, 400);
    assert_eq!(done.error_code().as_deref(), Some("state_mismatch"));
    assert_eq!(app.kakao.standin.hits(Endpoint::Token), 0);
    assert_not_signed_in(&app, &victim).await;
}

#[actix_web::test]
async fn replaying_a_finished_callback_with_a_saved_cookie_is_refused() {
    let app = TestApp::spawn().await;
    let kakao_id = app.kakao_user("재전송", "replay@example.com");
    let browser = app.browser();
    let back = app.consented_callback(&browser, kakao_id).await;
    let saved = browser.clone_cookies(); // the pre-login cookie still holds the state
    assert_eq!(browser.get(&back).await.status, 303);
    let token_calls = app.kakao.standin.hits(Endpoint::Token);
    let replay = saved.get(&back).await;
    assert_eq!(replay.status, 400);
    assert_eq!(replay.error_code().as_deref(), Some("state_replayed"));
    assert_eq!(
        app.kakao.standin.hits(Endpoint::Token),
        token_calls,
        "no second exchange"
    );
    assert_not_signed_in(&app, &saved).await;
}

#[actix_web::test]
async fn an_expired_state_is_refused() {
    let app = TestApp::spawn_with(&[("login_state_ttl_secs", "1")]).await;
    let kakao_id = app.kakao_user("늦음", "late@example.com");
    let browser = app.browser();
    let back = app.consented_callback(&browser, kakao_id).await;
    actix_web::rt::time::sleep(Duration::from_millis(2100)).await;
    let done = browser.get(&back).await;
    assert_eq!(done.status, 400);
    assert_eq!(done.error_code().as_deref(), Some("state_expired"));
    assert_eq!(app.kakao.standin.hits(Endpoint::Token), 0);
}

#[actix_web::test]
async fn oversized_or_repeated_callback_parameters_are_refused() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    app.start_login(&browser, None).await;
    for query in [
        format!("code={}&state=abc", "x".repeat(10_000)),
        "code=a&state=abc&state=def".to_owned(),
        "code=a&state=a%00b".to_owned(),
    ] {
        let done = browser
            .get(&app.url(&format!("/kakao/login/callback/?{query}")))
            .await;
        assert_eq!(done.status, 400, "{query}");
    }
    assert_eq!(app.kakao.standin.hits(Endpoint::Token), 0);
}
