//! The happy paths of 카카오 로그인 and the identity rules.

use kakao_login::standin::{Consent, Endpoint};

use crate::support::{TestApp, query_of};

#[actix_web::test]
async fn login_start_redirects_to_kakao_with_state_pkce_and_scopes() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    let authorize = app.start_login(&browser, None).await;
    assert!(authorize.starts_with(&format!("{}/oauth/authorize?", app.kakao.base_url)));
    let q = query_of(&authorize);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], crate::support::CLIENT_ID);
    assert_eq!(q["redirect_uri"], app.url("/kakao/login/callback/"));
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q["state"].len() >= 22);
    assert_eq!(q["scope"], "profile_nickname account_email openid");
    let cookie = browser.cookies.borrow().clone();
    assert!(
        cookie.contains_key("kakao_login"),
        "session cookie set: {cookie:?}"
    );
}

#[actix_web::test]
async fn a_new_person_signs_in_and_lands_on_their_profile() {
    let app = TestApp::spawn().await;
    let kakao_id = app.kakao_user("홍길동", "Gildong@Example.com");
    assert!(kakao_id > (1_i64 << 53), "stand-in ids exercise 64 bits");
    let browser = app.browser();
    let done = app.login_agreeing(&browser, kakao_id, None).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location(), "/profile/");
    assert_eq!(done.header("referrer-policy"), Some("no-referrer"));

    let users = app.users();
    assert_eq!(users.len(), 1);
    let user = &users[0];
    assert_eq!(user.email, "gildong@example.com");
    assert_eq!(user.name.as_deref(), Some("홍길동"));
    assert_eq!(user.provider, "kakao");
    assert!(user.is_active && !user.is_staff && !user.is_superuser);
    assert!(user.last_login.is_some());
    let linked = social_uid(&app, user.id);
    assert_eq!(linked, Some(kakao_id), "Kakao id stored as 64-bit");
    // Signing up is a door into the change service: one audit row, the person's own.
    let rows = app.audit_rows();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (
            rows[0].action.as_str(),
            rows[0].actor_id,
            rows[0].via.as_str()
        ),
        ("create", Some(user.id), "kakao_login")
    );

    let profile = browser.get(&app.url("/profile/")).await;
    assert_eq!(profile.status, 200);
    assert!(profile.body.contains("gildong@example.com"));
    assert!(profile.body.contains("홍길동"));
    assert_eq!(profile.header("cache-control"), Some("no-store"));
}

#[actix_web::test]
async fn a_returning_person_gets_the_same_account() {
    let app = TestApp::spawn().await;
    let (_, kakao_id) = app.signed_in("길동", "gildong@example.com").await;
    let first = app.users();
    let again = app.browser();
    let done = app.login_agreeing(&again, kakao_id, None).await;
    assert_eq!(done.status, 303);
    let users = app.users();
    assert_eq!(users.len(), 1, "no second account");
    assert_eq!(users[0].id, first[0].id);
    assert_eq!(users[0].date_joined, first[0].date_joined);
    assert!(users[0].last_login >= first[0].last_login);
    assert_eq!(
        app.audit_rows().len(),
        1,
        "coming back changes nothing anyone set"
    );
}

#[actix_web::test]
async fn next_is_honoured_when_it_is_a_path_on_this_site() {
    let app = TestApp::spawn().await;
    let kakao_id = app.kakao_user("a", "a@example.com");
    let browser = app.browser();
    let done = app
        .login_agreeing(&browser, kakao_id, Some("/profile/?tab=1"))
        .await;
    assert_eq!(done.location(), "/profile/?tab=1");
}

#[actix_web::test]
async fn open_redirect_attempts_through_next_land_on_the_profile() {
    let app = TestApp::spawn().await;
    let kakao_id = app.kakao_user("a", "a@example.com");
    for bad in [
        "https://evil.example",
        "//evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "/%2F%2Fevil.example",
        "https:evil.example",
        "javascript:alert(1)",
        "http://app@evil.example",
    ] {
        let browser = app.browser();
        let done = app.login_agreeing(&browser, kakao_id, Some(bad)).await;
        assert_eq!(done.status, 303, "{bad:?}");
        assert_eq!(done.location(), "/profile/", "{bad:?} must not be followed");
    }
    // Header injection does not even reach the login: control characters are refused.
    let injected = app
        .browser()
        .get(&app.url("/kakao/login/?next=%2F%0D%0ALocation%3A%20https%3A%2F%2Fevil.example"))
        .await;
    assert_eq!(injected.status, 400);
    assert_eq!(injected.error_code().as_deref(), Some("control_character"));
    // The callback never reads `next` from its own query.
    let browser = app.browser();
    let back = app.consented_callback(&browser, kakao_id).await;
    let done = browser
        .get(&format!("{back}&next=https://evil.example"))
        .await;
    assert_eq!(done.location(), "/profile/");
}

#[actix_web::test]
async fn a_preprovisioned_superuser_is_claimed_by_the_same_verified_kakao_email() {
    let app = TestApp::spawn().await;
    let out = crate::cli::run_cli(
        &app,
        &[
            "createsuperuser",
            "--email",
            "Boss@Example.com",
            "--name",
            "대표",
            "--noinput",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = app.users();
    assert_eq!(before.len(), 1);
    assert!(before[0].is_superuser && before[0].is_staff);
    assert_eq!(before[0].provider, "local");

    let kakao_id = app.kakao_user("카카오닉", "boss@example.com");
    let browser = app.browser();
    let mark = app.audit_mark();
    let done = app.login_agreeing(&browser, kakao_id, None).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let after = app.users();
    assert_eq!(after.len(), 1, "claimed, not duplicated");
    let rows = app.audit_since(mark);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (
            rows[0].action.as_str(),
            rows[0].actor_id,
            rows[0].via.as_str()
        ),
        ("link", Some(before[0].id), "kakao_login")
    );
    assert_eq!(after[0].id, before[0].id);
    assert!(
        after[0].is_superuser && after[0].is_staff,
        "login never touches flags"
    );
    assert_eq!(
        after[0].name.as_deref(),
        Some("대표"),
        "the operator's name is kept"
    );
    assert_eq!(social_uid(&app, after[0].id), Some(kakao_id));
}

#[actix_web::test]
async fn an_email_linked_to_another_kakao_account_is_refused_with_409() {
    let app = TestApp::spawn().await;
    app.signed_in("first", "shared@example.com").await;
    // A different Kakao account arrives with the same verified email.
    let other = app.kakao_user("second", "other@example.com");
    app.kakao.standin.add_user(kakao_login::standin::TestUser {
        nickname: Some("x".into()),
        email: Some("unused@example.com".into()),
        email_verified: true,
        email_valid: true,
    });
    let intruder = app.kakao_user("intruder", "SHARED@example.com");
    assert_ne!(other, intruder);
    let browser = app.browser();
    let done = app.login_agreeing(&browser, intruder, None).await;
    assert_eq!(done.status, 409, "{}", done.body);
    assert_eq!(done.error_code().as_deref(), Some("email_in_use"));
    assert_eq!(app.users().len(), 1);
    let profile = browser.get(&app.url("/profile/")).await;
    assert_eq!(profile.status, 303, "not signed in as the first user");
}

#[actix_web::test]
async fn twenty_concurrent_first_logins_of_one_person_create_one_user() {
    let app = TestApp::spawn_with(&[("database_pool_size", "12")]).await;
    let kakao_id = app.kakao_user("동시", "race@example.com");
    let consent = Consent::Agree {
        kakao_id,
        share_email: true,
    };
    // Get 20 callback URLs first (each in its own browser), then fire them together.
    let mut pending = Vec::new();
    for _ in 0..20 {
        let browser = app.browser();
        let authorize = app.start_login(&browser, None).await;
        let back = app
            .authorize_with(&browser, &authorize, consent.clone())
            .await;
        pending.push((browser, back));
    }
    let results =
        futures_util::future::join_all(pending.iter().map(|(browser, back)| browser.get(back)))
            .await;
    for r in &results {
        assert_eq!(r.status, 303, "every login succeeds: {}", r.body);
    }
    let users = app.users();
    assert_eq!(users.len(), 1, "exactly one user: {users:?}");
    assert_eq!(social_count(&app), 1);
    assert!(app.kakao.standin.hits(Endpoint::Token) >= 20);
}

pub fn social_uid(app: &TestApp, user_id: i64) -> Option<i64> {
    use diesel::prelude::*;
    use kakao_login::db::schema::social_accounts;
    let mut conn = app.conn();
    social_accounts::table
        .filter(social_accounts::user_id.eq(user_id))
        .select(social_accounts::uid)
        .first::<i64>(&mut **conn)
        .optional()
        .expect("query")
}

fn social_count(app: &TestApp) -> i64 {
    use diesel::prelude::*;
    use kakao_login::db::schema::social_accounts;
    let mut conn = app.conn();
    social_accounts::table
        .count()
        .get_result(&mut **conn)
        .expect("count")
}

#[actix_web::test]
async fn twenty_different_people_signing_up_at_once_all_get_in() {
    let app = TestApp::spawn_with(&[("database_pool_size", "12")]).await;
    let mut pending = Vec::new();
    for i in 0..20 {
        let kakao_id = app.kakao_user(&format!("사람{i}"), &format!("person{i}@example.com"));
        let browser = app.browser();
        let back = app.consented_callback(&browser, kakao_id).await;
        pending.push((browser, back));
    }
    let results =
        futures_util::future::join_all(pending.iter().map(|(browser, back)| browser.get(back)))
            .await;
    for r in &results {
        assert_eq!(
            r.status,
            303,
            "every sign-up succeeds: {}",
            r.error_code().unwrap_or_default()
        );
    }
    assert_eq!(app.users().len(), 20);
}
