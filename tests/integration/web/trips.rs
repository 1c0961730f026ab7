//! One trip to the database per page: the signed-in caller and the page's data are read on one
//! pooled connection in one crossing to the blocking pool, for pages, the admin and the API,
//! with a session or a bearer token. Counted by the app itself: every request's trips go into
//! `kakao_login_http_request_db_trips` by route (and `db=` on its access line).

use std::collections::HashMap;

use serde_json::json;

use super::api::client;
use crate::support::{Browser, Role, TestApp};

/// For each route of this process (`METHOD route`): how many requests it answered, and how
/// many of them in at most one trip, from the app's own histogram. It is process-wide:
/// requests of other tests running beside this one count too, and must keep to one trip as
/// well (only reads and single changes are asserted; a deletion also calls Kakao between its
/// trips).
fn trips() -> HashMap<String, (f64, f64)> {
    let text = kakao_login::telemetry::metrics::get().render((0, 0, 0));
    let label = |series: &str, name: &str| {
        series
            .split(&format!("{name}=\""))
            .nth(1)
            .and_then(|r| r.split('"').next())
            .map(|r| r.replace("\\\\", "\\"))
    };
    let mut routes: HashMap<String, (f64, f64)> = HashMap::new();
    for line in text.lines() {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (Some(route), Some(method)) = (label(series, "route"), label(series, "method")) else {
            continue;
        };
        let entry = routes.entry(format!("{method} {route}")).or_default();
        let value: f64 = value.parse().unwrap_or(f64::NAN);
        if series.starts_with("kakao_login_http_request_db_trips_count{") {
            entry.0 = value;
        } else if series.starts_with("kakao_login_http_request_db_trips_bucket{")
            && series.contains("le=\"1\"")
        {
            entry.1 = value;
        }
    }
    routes.retain(|_, (all, _)| *all > 0.0);
    routes
}

/// Every route asserted to take one trip.
const ONE_TRIP: [&str; 16] = [
    "GET /profile/",
    "POST /profile/",
    "GET /profile/sessions/",
    "GET /profile/leave/",
    "GET /admin/",
    "GET /admin/users/",
    "GET /admin/users/new/",
    "GET /admin/users/{id}/",
    "GET /admin/audit/",
    "GET /admin/webhooks/",
    "GET /api/users/",
    "GET /api/users/{id:\\d+}/",
    "PATCH /api/users/{id:\\d+}/",
    "GET /api/users/me/",
    "PATCH /api/users/me/",
    "GET /kakao/logout/",
];

#[actix_web::test]
async fn each_database_page_makes_one_trip_to_the_database() {
    let app = TestApp::spawn().await;
    let root = client(&app, Role::Superuser, "trips-root@example.com").await;
    let member = client(&app, Role::Member, "trips-member@example.com").await;
    let pages = [
        "/profile/",
        "/profile/sessions/",
        "/profile/leave/",
        "/admin/",
        "/admin/users/",
        "/admin/audit/",
        "/admin/webhooks/",
        "/admin/users/new/",
        "/api/users/",
        "/api/users/?search=trips&ordering=-email&limit=5",
        "/api/users/me/",
    ];
    // Twice each: the first /profile/ asks Kakao for the consent items, the second uses them.
    for _ in 0..2 {
        for path in pages {
            let r = root.browser.get(&app.url(path)).await;
            assert_eq!(r.status, 200, "{path}: {}", r.body);
        }
        let member_page = format!("/admin/users/{}/", member.id);
        assert_eq!(root.browser.get(&app.url(&member_page)).await.status, 200);
        let member_record = format!("/api/users/{}/", member.id);
        assert_eq!(root.browser.get(&app.url(&member_record)).await.status, 200);
        assert_eq!(
            member.browser.get(&app.url(&member_record)).await.status,
            200
        );
    }
    // Changes, and refusals, in one trip too.
    let r = root
        .send(
            &app,
            "PATCH",
            &format!("/api/users/{}/", member.id),
            json!({"name": "한번"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = member
        .send(&app, "PATCH", "/api/users/me/", json!({"age": 30}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        member.browser.get(&app.url("/api/users/")).await.status,
        403
    );
    assert_eq!(
        member.browser.get(&app.url("/admin/users/")).await.status,
        403
    );
    let csrf = app.csrf(&member.browser, "/profile/").await;
    let r = member
        .browser
        .post_form(
            &app.url("/profile/"),
            &[("csrf_token", &csrf), ("name", "두번"), ("age", "31")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    // With a Kakao access token instead of a session.
    let token = app.kakao.standin.issue_access_token(member.kakao_id);
    for path in ["/api/users/me/", &format!("/api/users/{}/", member.id)] {
        let r = Browser::new()
            .get_with(
                &app.url(path),
                &[("authorization", &format!("Bearer {token}"))],
            )
            .await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
    }
    // Nobody signed in: no trip at all.
    assert_eq!(Browser::new().get(&app.url("/profile/")).await.status, 303);

    assert_eq!(
        root.browser.get(&app.url("/kakao/logout/")).await.status,
        200
    );

    // The counter sees more than one trip where there are more: a deletion reads the caller,
    // then removes the account (and would unlink it at Kakao) on trips of its own.
    let doomed = app.create_user("trips-doomed@example.com", "지울사람");
    let r = root
        .send(
            &app,
            "DELETE",
            &format!("/api/users/{}/", doomed.id),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let routes = trips();
    let deletions = "DELETE /api/users/{id:\\d+}/";
    let (all, in_one) = routes.get(deletions).copied().unwrap_or_default();
    assert!(
        all > in_one,
        "{deletions}: {all} requests, {in_one} in one trip"
    );
    for key in ONE_TRIP {
        let Some((all, in_one)) = routes.get(key).copied() else {
            panic!("{key} not counted: {routes:#?}");
        };
        assert_eq!(all, in_one, "{key}: {all} requests, {in_one} in one trip");
    }
}
