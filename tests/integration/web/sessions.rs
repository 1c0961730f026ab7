//! Sessions: signing out, saved copies of the cookie, cross-site posts, deactivation, the
//! cookie's attributes, and Redis-backed sessions.

use crate::support::{RedisServer, TestApp, UserPatch};

#[actix_web::test]
async fn signing_out_needs_the_form_and_kills_saved_copies_of_the_cookie() {
    let app = TestApp::spawn().await;
    let (browser, _) = app.signed_in("a", "a@example.com").await;
    let saved = browser.clone_cookies();

    // GET only shows the confirmation form.
    let confirm = browser.get(&app.url("/kakao/logout/")).await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("action=\"/kakao/logout/\""));
    assert_eq!(browser.get(&app.url("/profile/")).await.status, 200);

    // Without the CSRF token nothing happens.
    let refused = browser
        .post_form(&app.url("/kakao/logout/"), &[("csrf_token", "wrong")])
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.error_code().as_deref(), Some("csrf_invalid"));
    assert_eq!(browser.get(&app.url("/profile/")).await.status, 200);

    let token = app.csrf(&browser, "/kakao/logout/").await;
    let out = browser
        .post_form(&app.url("/kakao/logout/"), &[("csrf_token", &token)])
        .await;
    assert_eq!(out.status, 303);
    assert_eq!(out.location(), "/?logged_out=1");
    assert_eq!(browser.get(&app.url("/profile/")).await.status, 303);
    // The saved copy of the signed-in cookie is worthless now, even with cookie sessions.
    let replay = saved.get(&app.url("/profile/")).await;
    assert_eq!(replay.status, 303, "old cookie no longer signs in");
}

#[actix_web::test]
async fn a_cross_site_post_is_refused_even_with_the_token() {
    let app = TestApp::spawn().await;
    let (browser, _) = app.signed_in("a", "a@example.com").await;
    let token = app.csrf(&browser, "/kakao/logout/").await;
    let res = browser
        .post_form_with(
            &app.url("/kakao/logout/"),
            &[("csrf_token", &token)],
            &[("origin", "https://evil.example")],
        )
        .await;
    assert_eq!(res.status, 403);
    assert_eq!(browser.get(&app.url("/profile/")).await.status, 200);
}

#[actix_web::test]
async fn deactivating_a_user_ends_their_open_sessions() {
    let app = TestApp::spawn().await;
    let (browser, _) = app.signed_in("a", "a@example.com").await;
    assert_eq!(browser.get(&app.url("/profile/")).await.status, 200);
    let id = app.users()[0].id;
    app.change(id, UserPatch::active(false));
    assert_eq!(browser.get(&app.url("/profile/")).await.status, 303);
    app.change(id, UserPatch::active(true));
    assert_eq!(
        browser.get(&app.url("/profile/")).await.status,
        303,
        "the session was forgotten, not just paused"
    );
}

#[actix_web::test]
async fn the_session_cookie_is_httponly_and_samesite_lax() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    let res = browser.get(&app.url("/kakao/login/")).await;
    let cookie = res
        .header("set-cookie")
        .expect("cookie set")
        .to_ascii_lowercase();
    assert!(cookie.contains("httponly"), "{cookie}");
    assert!(cookie.contains("samesite=lax"), "{cookie}");
    assert!(cookie.contains("path=/"), "{cookie}");
    assert!(!cookie.contains("secure"), "plain http in tests: {cookie}");
}

#[actix_web::test]
async fn a_tampered_cookie_is_just_anonymous() {
    let app = TestApp::spawn().await;
    let (browser, _) = app.signed_in("a", "a@example.com").await;
    {
        let mut jar = browser.cookies.borrow_mut();
        let value = jar.get_mut("kakao_login").expect("cookie");
        let flipped = if value.ends_with('A') { 'B' } else { 'A' };
        value.pop();
        value.push(flipped);
    }
    let res = browser.get(&app.url("/profile/")).await;
    assert_eq!(res.status, 303);
}

/// The keys of sessions kept in the Redis at `url`.
fn redis_keys(url: &str) -> Vec<String> {
    let client = redis::Client::open(url).expect("client");
    let mut conn = client.get_connection().expect("connection");
    redis::cmd("KEYS")
        .arg("kakao-login:session:*")
        .query(&mut conn)
        .expect("keys")
}

#[actix_web::test]
#[cfg_attr(
    all(not(has_redis), not(ci)),
    ignore = "redis-server is not installed: the Redis session tests did NOT run \
              (apt-get install redis-server; under CI they must run)"
)]
async fn with_redis_sessions_sign_out_deletes_the_session_on_the_server() {
    let redis = RedisServer::start();
    let app = TestApp::spawn_with(&[("redis_url", &redis.url)]).await;
    let (browser, _) = app.signed_in("레디스", "redis@example.com").await;
    let cookie = browser
        .cookies
        .borrow()
        .get("kakao_login")
        .cloned()
        .expect("cookie");
    assert!(
        cookie.len() < 200,
        "the cookie holds only a session key: {cookie}"
    );
    let before = redis_keys(&redis.url);
    assert_eq!(before.len(), 1, "the session lives in Redis: {before:?}");
    let saved = browser.clone_cookies();
    let token = app.csrf(&browser, "/kakao/logout/").await;
    let out = browser
        .post_form(&app.url("/kakao/logout/"), &[("csrf_token", &token)])
        .await;
    assert_eq!(out.status, 303);
    let after = redis_keys(&redis.url);
    assert!(
        !after.contains(&before[0]),
        "sign-out removed the session key from Redis: {after:?}"
    );
    assert_eq!(saved.get(&app.url("/profile/")).await.status, 303);
}

#[actix_web::test]
#[cfg_attr(
    all(not(has_redis), not(ci)),
    ignore = "redis-server is not installed: the Redis session tests did NOT run \
              (apt-get install redis-server; under CI they must run)"
)]
async fn redis_going_away_gives_a_503_page() {
    let mut redis = RedisServer::start();
    let app = TestApp::spawn_with(&[("redis_url", &redis.url)]).await;
    let (browser, _) = app.signed_in("a", "a@example.com").await;
    redis.stop();
    let res = browser.get(&app.url("/profile/")).await;
    assert_eq!(res.status, 503, "{}", res.body);
    assert_eq!(res.error_code().as_deref(), Some("service_unavailable"));
    let api = browser.get(&app.url("/api/users/me/")).await;
    assert_eq!(api.status, 503, "{}", api.body);
    assert_eq!(api.json()["error"], "service_unavailable");
}
