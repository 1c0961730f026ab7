//! OpenID Connect: the web login's ID token (asked for with a nonce, verified before anyone
//! is signed in) and ID tokens from the mobile SDKs, against the stand-in's signed tokens and
//! keys.

use kakao_login::standin::{Consent, Endpoint, IdTokenFault, TestUser};
use serde_json::json;

use crate::support::{CLIENT_ID, TestApp, query_of};

/// Every way an ID token can be wrong that the stand-in can produce.
const FAULTS: [IdTokenFault; 10] = [
    IdTokenFault::WrongNonce,
    IdTokenFault::WrongAudience,
    IdTokenFault::WrongIssuer,
    IdTokenFault::Expired,
    IdTokenFault::IssuedInFuture,
    IdTokenFault::BadSignature,
    IdTokenFault::UnknownKid,
    IdTokenFault::AlgNone,
    IdTokenFault::Hs256WithPublicKey,
    IdTokenFault::WrongSubject,
];

#[actix_web::test]
async fn the_authorize_request_asks_for_openid_with_a_fresh_nonce() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    let first = query_of(&app.start_login(&browser, None).await);
    let second = query_of(&app.start_login(&browser, None).await);
    assert_eq!(first["scope"], "profile_nickname account_email openid");
    assert!(first["nonce"].len() >= 22, "128 bits: {}", first["nonce"]);
    assert_ne!(first["nonce"], second["nonce"]);
    assert_ne!(first["nonce"], first["state"]);

    // Off: neither openid nor a nonce, and an ID token in the answer is not needed.
    let off = TestApp::spawn_with(&[("kakao_oidc", "false")]).await;
    let browser = off.browser();
    let q = query_of(&off.start_login(&browser, None).await);
    assert_eq!(q["scope"], "profile_nickname account_email");
    assert!(!q.contains_key("nonce"));
    off.kakao
        .standin
        .set_id_token_fault(Some(IdTokenFault::Omit));
    let kakao_id = off.kakao_user("길동", "gildong@example.com");
    let done = off.login_agreeing(&browser, kakao_id, None).await;
    assert_eq!(done.status, 303, "{}", done.body);
}

/// A good ID token signs in; Kakao's keys are fetched once, and once more after the signing
/// key rotates, never per login.
#[actix_web::test]
async fn a_good_id_token_signs_in_and_the_keys_are_fetched_once_per_rotation() {
    let app = TestApp::spawn().await;
    let jwks = || app.kakao.standin.hits(Endpoint::Jwks);
    for i in 0..3 {
        app.signed_in("사람", &format!("person{i}@example.com"))
            .await;
    }
    assert_eq!(jwks(), 1, "one fetch for three logins");
    app.kakao.standin.rotate_signing_key();
    app.signed_in("새키", "rotated@example.com").await;
    assert_eq!(jwks(), 2, "the new kid is fetched once");
    app.signed_in("또", "again@example.com").await;
    assert_eq!(jwks(), 2);
    assert_eq!(app.users().len(), 5);
}

/// Each way an ID token can be wrong refuses the sign-in with `id_token_invalid` before any
/// account is created or signed in.
#[actix_web::test]
async fn every_bad_id_token_is_refused_and_creates_no_user() {
    let app = TestApp::spawn().await;
    // Keys cached first, so that the unknown kid is judged without a fetch too.
    app.signed_in("먼저", "first@example.com").await;
    let mut faults = FAULTS.to_vec();
    faults.push(IdTokenFault::Omit);
    for fault in faults {
        app.kakao.standin.set_id_token_fault(Some(fault));
        let email = format!("{fault:?}@example.com").to_lowercase();
        let kakao_id = app.kakao_user("공격", &email);
        let browser = app.browser();
        let done = app.login_agreeing(&browser, kakao_id, None).await;
        assert_eq!(done.status, 400, "{fault:?}: {}", done.body);
        assert_eq!(
            done.error_code().as_deref(),
            Some("id_token_invalid"),
            "{fault:?}"
        );
        assert!(app.user_by_email(&email).is_none(), "{fault:?}: no user");
        let profile = browser.get(&app.url("/profile/")).await;
        assert_eq!(profile.status, 303, "{fault:?}: not signed in");
    }
    app.kakao.standin.set_id_token_fault(None);
    assert_eq!(app.users().len(), 1);
    // A wrong subject is caught after /v2/user/me; nothing else reached the profile call.
    app.signed_in("다시", "fine@example.com").await;

    // The mobile apps' extra audiences are not accepted on the web login, whose token was
    // issued to the REST API key for this very request.
    let lenient =
        TestApp::spawn_with(&[("kakao_allowed_audiences", "another-apps-rest-api-key")]).await;
    lenient
        .kakao
        .standin
        .set_id_token_fault(Some(IdTokenFault::WrongAudience));
    let kakao_id = lenient.kakao_user("앱", "otherapp@example.com");
    let done = lenient
        .login_agreeing(&lenient.browser(), kakao_id, None)
        .await;
    assert_eq!(done.error_code().as_deref(), Some("id_token_invalid"));
    let token = lenient
        .kakao
        .standin
        .mint_id_token(kakao_id, "another-apps-rest-api-key", None);
    let res = lenient
        .browser()
        .request(
            "POST",
            &lenient.url("/api/auth/kakao/"),
            Some(&json!({ "id_token": token }).to_string()),
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(
        res.status, 200,
        "the same key is fine from a mobile app: {}",
        res.body
    );
}

/// The mobile SDKs' ID tokens: the same checks, with `aud` the REST API key or one of
/// `KAKAO_ALLOWED_AUDIENCES`, and the app's nonce when it sends one.
#[actix_web::test]
async fn mobile_id_tokens_pass_the_same_checks() {
    let app =
        TestApp::spawn_with(&[("kakao_allowed_audiences", "ios-native-key, android-key")]).await;
    let standin = &app.kakao.standin;
    let kakao_id = app.kakao_user("모바일", "mobile@example.com");
    let post = |body: serde_json::Value| {
        let browser = app.browser();
        let url = app.url("/api/auth/kakao/");
        async move {
            let res = browser
                .request(
                    "POST",
                    &url,
                    Some(&body.to_string()),
                    &[("content-type", "application/json")],
                )
                .await;
            (res, browser)
        }
    };

    let token = standin.mint_id_token(kakao_id, CLIENT_ID, Some("app-nonce"));
    let (res, browser) = post(json!({"id_token": token.clone(), "nonce": "app-nonce"})).await;
    assert_eq!(res.status, 200, "{}", res.body);
    // An ID token signs in once.
    let (replay, _) = post(json!({"id_token": token, "nonce": "app-nonce"})).await;
    assert_eq!(replay.status, 401, "{}", replay.body);
    assert_eq!(res.json()["email"], "mobile@example.com");
    let me = browser.get(&app.url("/api/users/me/")).await;
    assert_eq!(me.status, 200, "the session cookie works");
    // The nonce is optional; another allowed key is accepted as the audience.
    let token = standin.mint_id_token(kakao_id, "ios-native-key", None);
    let (res, _) = post(json!({"id_token": token})).await;
    assert_eq!(res.status, 200, "{}", res.body);

    // (A token for another subject is another person's token: there is no profile call to
    // compare it with, so `WrongSubject` is the web flow's case only.)
    for fault in FAULTS
        .into_iter()
        .filter(|f| *f != IdTokenFault::WrongSubject)
    {
        let token = standin.mint_id_token_with(kakao_id, CLIENT_ID, Some("n"), fault);
        let (res, _) = post(json!({"id_token": token, "nonce": "n"})).await;
        assert_eq!(res.status, 401, "{fault:?}: {}", res.body);
        assert_eq!(res.json()["error"], "invalid_token", "{fault:?}");
    }
    let cases = [
        (
            "an audience not allowed",
            standin.mint_id_token(kakao_id, "someone-else", None),
            Some("x"),
        ),
        (
            "a nonce that differs",
            standin.mint_id_token(kakao_id, CLIENT_ID, Some("a")),
            Some("b"),
        ),
        (
            "a nonce the token lacks",
            standin.mint_id_token(kakao_id, CLIENT_ID, None),
            Some("b"),
        ),
        ("not a JWT", "not-a-jwt".to_owned(), None),
    ];
    for (what, token, nonce) in cases {
        let mut body = json!({ "id_token": token });
        if let Some(n) = nonce {
            body["nonce"] = json!(n);
        }
        let (res, _) = post(body).await;
        assert_eq!(res.status, 401, "{what}: {}", res.body);
    }
    let (res, _) = post(json!({"id_token": "x", "access_token": "y"})).await;
    assert_eq!(res.status, 400, "one token at a time");
    let (res, _) = post(json!({"access_token": "y", "nonce": "n"})).await;
    assert_eq!(res.status, 400, "a nonce goes with an ID token");

    // No email in the token (the account has none): the identity rules ask for one.
    let no_email = standin.add_user(TestUser {
        nickname: Some("무메일".into()),
        email: None,
        email_verified: false,
        email_valid: false,
    });
    let token = standin.mint_id_token(no_email, CLIENT_ID, None);
    let (res, _) = post(json!({"id_token": token})).await;
    assert_eq!(res.status, 403, "{}", res.body);
    assert_eq!(res.json()["error"], "email_required");
    assert_eq!(app.users().len(), 1);
}

/// Kakao's keys unreachable: the token is not judged (503 for the app, the retry page in the
/// browser), and nobody is signed in.
#[actix_web::test]
async fn when_the_keys_cannot_be_fetched_nobody_is_signed_in() {
    let app = TestApp::spawn().await;
    app.kakao.standin.set_fault(
        Endpoint::Jwks,
        Some(kakao_login::standin::Fault::Status(503)),
    );
    let kakao_id = app.kakao_user("키없음", "nokeys@example.com");
    let browser = app.browser();
    let done = app.login_agreeing(&browser, kakao_id, None).await;
    assert_eq!(done.status, 502, "{}", done.body);
    assert_eq!(done.error_code().as_deref(), Some("kakao_unavailable"));
    let token = app.kakao.standin.mint_id_token(kakao_id, CLIENT_ID, None);
    let res = app
        .browser()
        .request(
            "POST",
            &app.url("/api/auth/kakao/"),
            Some(&json!({ "id_token": token }).to_string()),
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(res.status, 503, "{}", res.body);
    assert!(app.users().is_empty());
    // Logins right after a failure do not queue behind fetches of their own.
    let fetches = app.kakao.standin.hits(Endpoint::Jwks);
    let again = app.login_agreeing(&app.browser(), kakao_id, None).await;
    assert_eq!(again.status, 502);
    assert_eq!(
        app.kakao.standin.hits(Endpoint::Jwks),
        fetches,
        "backing off"
    );
    // Back: once the back-off is over, the next login fetches and succeeds.
    app.kakao.standin.set_fault(Endpoint::Jwks, None);
    actix_web::rt::time::sleep(kakao_login::kakao::oidc::FAILURE_BACKOFF).await;
    let consent = Consent::Agree {
        kakao_id,
        share_email: true,
    };
    let done = app.login_as(&app.browser(), consent, None).await;
    assert_eq!(done.status, 303, "{}", done.body);
}
