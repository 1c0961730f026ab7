//! Kakao access tokens: as bearer credentials (validated by Kakao's codes, cached) and for
//! the mobile sign-in.

use serde_json::json;

use super::client;
use kakao_login::standin::{Endpoint, Fault};

use crate::support::{Browser, Resp, Role, TestApp};

async fn bearer(app: &TestApp, token: &str, path: &str) -> Resp {
    Browser::new()
        .get_with(
            &app.url(path),
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await
}

#[actix_web::test]
async fn kakao_access_tokens_are_validated_by_kakaos_code() {
    let app = TestApp::spawn().await;
    let member = client(&app, Role::Member, "bearer@example.com").await;
    let token = app.kakao.standin.issue_access_token(member.kakao_id);
    let ok = bearer(&app, &token, "/api/users/me/").await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["id"], member.id);
    let lower = Browser::new()
        .get_with(
            &app.url("/api/users/me/"),
            &[("authorization", &format!("bearer {token}"))],
        )
        .await;
    assert_eq!(lower.status, 200, "the scheme is case-insensitive");

    let cases: Vec<(Fault, u16, &str)> = vec![
        (
            Fault::KapiError {
                status: 400,
                code: -1,
            },
            503,
            "kakao_unavailable",
        ),
        (
            Fault::KapiError {
                status: 400,
                code: -7,
            },
            503,
            "kakao_unavailable",
        ),
        (Fault::Status(500), 503, "kakao_unavailable"),
        (Fault::MalformedJson, 503, "kakao_unavailable"),
        (
            Fault::KapiError {
                status: 400,
                code: -2,
            },
            400,
            "malformed_token",
        ),
        (
            Fault::KapiError {
                status: 401,
                code: -401,
            },
            401,
            "invalid_token",
        ),
        (
            Fault::KapiError {
                status: 403,
                code: -3,
            },
            401,
            "invalid_token",
        ),
        (Fault::ForeignAppId(777), 401, "app_id_mismatch"),
    ];
    for (fault, status, code) in cases {
        // A fresh token each time, so no cached answer hides the fault.
        let t = app.kakao.standin.issue_access_token(member.kakao_id);
        app.kakao
            .standin
            .set_fault(Endpoint::TokenInfo, Some(fault.clone()));
        let r = bearer(&app, &t, "/api/users/me/").await;
        app.kakao.standin.set_fault(Endpoint::TokenInfo, None);
        assert_eq!(r.status, status, "{fault:?}: {}", r.body);
        assert_eq!(r.json()["error"], code, "{fault:?}");
        match status {
            503 => {
                assert!(r.header("retry-after").is_some());
                assert_eq!(r.json()["temporary"], true);
            }
            401 => assert_eq!(
                r.header("www-authenticate"),
                Some("Bearer error=\"invalid_token\"")
            ),
            _ => {}
        }
        // Negative answers are not cached: the same token works once Kakao does.
        if status == 503 {
            assert_eq!(
                bearer(&app, &t, "/api/users/me/").await.status,
                200,
                "{fault:?}"
            );
        }
    }

    // Expired at Kakao: 401 with the invalid_token challenge.
    let t = app.kakao.standin.issue_access_token(member.kakao_id);
    app.kakao.standin.expire_access_token(&t);
    let r = bearer(&app, &t, "/api/users/me/").await;
    assert_eq!(r.status, 401);
    // Bearer calls need no CSRF token.
    let r = Browser::new()
        .request(
            "PATCH",
            &app.url("/api/users/me/"),
            Some("{\"age\":41}"),
            &[
                ("authorization", &format!("Bearer {token}")),
                ("content-type", "application/json"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Not a Bearer token at all.
    let r = Browser::new()
        .get_with(
            &app.url("/api/users/me/"),
            &[("authorization", "Basic abc")],
        )
        .await;
    assert_eq!(r.status, 401);
}

#[actix_web::test]
async fn positive_token_answers_are_cached_and_unknown_kakao_users_are_refused() {
    let app = TestApp::spawn().await;
    let member = client(&app, Role::Member, "cache@example.com").await;
    let token = app.kakao.standin.issue_access_token(member.kakao_id);
    assert_eq!(bearer(&app, &token, "/api/users/me/").await.status, 200);
    let calls = app.kakao.standin.hits(Endpoint::TokenInfo);
    for _ in 0..3 {
        assert_eq!(bearer(&app, &token, "/api/users/me/").await.status, 200);
    }
    assert_eq!(
        app.kakao.standin.hits(Endpoint::TokenInfo),
        calls,
        "answered from the cache"
    );

    let stranger = app.kakao_user("낯선", "stranger@example.com");
    let t = app.kakao.standin.issue_access_token(stranger);
    let r = bearer(&app, &t, "/api/users/me/").await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"], "not_registered");
}

#[actix_web::test]
async fn mobile_apps_sign_in_with_a_kakao_access_token() {
    let app = TestApp::spawn().await;
    let kakao_id = app.kakao_user("모바일", "Mobile@Example.com");
    let token = app.kakao.standin.issue_access_token(kakao_id);
    let browser = Browser::new();
    let r = browser
        .request(
            "POST",
            &app.url("/api/auth/kakao/"),
            Some(&json!({"access_token": token}).to_string()),
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["email"], "mobile@example.com");
    assert_eq!(r.json()["provider"], "kakao");
    assert_eq!(
        browser.get(&app.url("/profile/")).await.status,
        200,
        "session cookie set"
    );
    assert_eq!(app.users().len(), 1);

    let again = Browser::new()
        .request(
            "POST",
            &app.url("/api/auth/kakao/"),
            Some(&json!({"access_token": token}).to_string()),
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(app.users().len(), 1, "same identity rules as the web flow");

    app.kakao
        .standin
        .set_fault(Endpoint::TokenInfo, Some(Fault::ForeignAppId(1)));
    let other = app.kakao.standin.issue_access_token(kakao_id);
    let r = Browser::new()
        .request(
            "POST",
            &app.url("/api/auth/kakao/"),
            Some(&json!({"access_token": other}).to_string()),
            &[("content-type", "application/json")],
        )
        .await;
    app.kakao.standin.set_fault(Endpoint::TokenInfo, None);
    assert_eq!(
        r.status, 401,
        "a token of another app never signs anyone in"
    );
}

/// The mobile sign-in answers with the same codes as the pages: an unverified or invalid
/// email each has its own, a deactivated account is 403 `account_inactive`, and a cross-site
/// request is refused.
#[actix_web::test]
async fn mobile_sign_in_refusals_say_why() {
    use kakao_login::standin::TestUser;
    let app = TestApp::spawn().await;
    let sign_in = |token: String, origin: Option<&'static str>| {
        let app = &app;
        async move {
            let mut headers = vec![("content-type", "application/json")];
            if let Some(o) = origin {
                headers.push(("origin", o));
            }
            Browser::new()
                .request(
                    "POST",
                    &app.url("/api/auth/kakao/"),
                    Some(&json!({"access_token": token}).to_string()),
                    &headers,
                )
                .await
        }
    };
    for (verified, valid, code) in [
        (false, true, "email_unverified"),
        (true, false, "email_invalid"),
    ] {
        let kakao_id = app.kakao.standin.add_user(TestUser {
            nickname: Some("x".into()),
            email: Some(format!("{code}@example.com")),
            email_verified: verified,
            email_valid: valid,
        });
        let r = sign_in(app.kakao.standin.issue_access_token(kakao_id), None).await;
        assert_eq!(
            (r.status, r.json()["error"].as_str()),
            (403, Some(code)),
            "{}",
            r.body
        );
    }
    let kakao_id = app.kakao_user("정지", "off@example.com");
    let token = app.kakao.standin.issue_access_token(kakao_id);
    assert_eq!(sign_in(token.clone(), None).await.status, 200);
    let user = app.user_by_email("off@example.com").expect("user");
    app.change(user.id, crate::support::UserPatch::active(false));
    let r = sign_in(token.clone(), None).await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (403, Some("account_inactive"))
    );
    let r = bearer(&app, &token, "/api/users/me/").await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (403, Some("account_inactive"))
    );
    let forged = sign_in(token, Some("https://evil.example")).await;
    assert_eq!(
        (forged.status, forged.json()["error"].as_str()),
        (403, Some("csrf_invalid"))
    );
}

/// Junk bearer tokens cost Kakao calls only up to the per-client limit, and a refused token is
/// remembered for a while instead of being sent to Kakao again.
#[actix_web::test]
async fn junk_tokens_cannot_spend_the_apps_kakao_quota() {
    let app = TestApp::spawn().await;
    let before = app.kakao.standin.hits(Endpoint::TokenInfo);
    let mut statuses = Vec::new();
    for i in 0..100 {
        statuses.push(
            bearer(&app, &format!("junk-token-{i:03}"), "/api/users/me/")
                .await
                .status,
        );
    }
    let calls = app.kakao.standin.hits(Endpoint::TokenInfo) - before;
    assert!(calls <= 31, "{calls} token-info calls for 100 junk tokens");
    assert!(
        statuses.iter().all(|s| matches!(s, 401 | 429)),
        "{statuses:?}"
    );
    let limited = bearer(&app, "junk-token-new", "/api/users/me/").await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert_eq!(limited.json()["error"], "rate_limited");
    assert!(limited.header("retry-after").is_some());

    // The same refused token again: answered from memory, no call to Kakao.
    let app = TestApp::spawn().await;
    let first = bearer(&app, "junk-token-again", "/api/users/me/").await;
    assert_eq!(first.status, 401);
    let calls = app.kakao.standin.hits(Endpoint::TokenInfo);
    for _ in 0..20 {
        assert_eq!(
            bearer(&app, "junk-token-again", "/api/users/me/")
                .await
                .status,
            401
        );
    }
    assert_eq!(app.kakao.standin.hits(Endpoint::TokenInfo), calls);
}

#[actix_web::test]
async fn mobile_sign_ins_and_login_starts_are_limited_per_client() {
    let app = TestApp::spawn().await;
    let anyone = Browser::new();
    let mut statuses = Vec::new();
    for i in 0..30 {
        let res = anyone
            .request(
                "POST",
                &app.url("/api/auth/kakao/"),
                Some(&json!({"access_token": format!("junk-{i}")}).to_string()),
                &[("content-type", "application/json")],
            )
            .await;
        statuses.push(res.status);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        10,
        "{statuses:?}"
    );
    let mut starts = Vec::new();
    for _ in 0..40 {
        starts.push(anyone.get(&app.url("/kakao/login/")).await.status);
    }
    assert_eq!(
        starts.iter().filter(|s| **s == 302).count(),
        30,
        "{starts:?}"
    );
    assert_eq!(starts.last(), Some(&429));
}
