//! The users API: the permission matrix, bodies, CSRF, the last superuser, PUT, leaving, and
//! the list.

use kakao_login::standin::{Endpoint, Fault};
use serde_json::json;

use super::client;
use crate::support::{Browser, Role, TestApp};

#[actix_web::test]
async fn the_permission_matrix_holds_for_every_endpoint() {
    let app = TestApp::spawn().await;
    let member = client(&app, Role::Member, "member@example.com").await;
    let staff = client(&app, Role::Staff, "staff@example.com").await;
    let root = client(&app, Role::Superuser, "root@example.com").await;
    let other = client(&app, Role::Member, "other@example.com").await;
    let anonymous = Browser::new();
    let o = other.id;

    // (method, path, body, [anonymous, member, staff, superuser])
    let cases: Vec<(&str, String, Option<serde_json::Value>, [u16; 4])> = vec![
        ("GET", "/api/users/".into(), None, [401, 403, 200, 200]),
        (
            "GET",
            format!("/api/users/{o}/"),
            None,
            [401, 404, 200, 200],
        ),
        (
            "GET",
            "/api/users/999999/".into(),
            None,
            [401, 404, 404, 404],
        ),
        ("GET", "/api/users/me/".into(), None, [401, 200, 200, 200]),
        (
            "PATCH",
            format!("/api/users/{o}/"),
            Some(json!({"name": "바뀜"})),
            [401, 404, 200, 200],
        ),
        (
            "PATCH",
            format!("/api/users/{o}/"),
            Some(json!({"is_active": true})),
            [401, 400, 200, 200],
        ),
        (
            "PATCH",
            format!("/api/users/{o}/"),
            Some(json!({"is_staff": false})),
            [401, 400, 403, 200],
        ),
        (
            "PATCH",
            "/api/users/me/".into(),
            Some(json!({"age": 33})),
            [401, 200, 200, 200],
        ),
        (
            "POST",
            "/api/users/".into(),
            Some(json!({"email": "new1@example.com"})),
            [401, 403, 201, 409],
        ),
        (
            "POST",
            "/api/users/".into(),
            Some(json!({"email": "new2@example.com", "is_staff": true})),
            [401, 403, 403, 201],
        ),
        (
            "POST",
            "/api/users/".into(),
            Some(json!({"email": "new3@example.com", "is_superuser": true})),
            [401, 403, 403, 201],
        ),
        (
            "DELETE",
            "/api/users/999999/".into(),
            None,
            [401, 403, 403, 404],
        ),
    ];
    for (method, path, body, expected) in cases {
        let text = body.as_ref().map(|b| b.to_string());
        let got = [
            anonymous
                .request(
                    method,
                    &app.url(&path),
                    text.as_deref(),
                    &[("content-type", "application/json")],
                )
                .await,
            member.call(&app, method, &path, body.clone()).await,
            staff.call(&app, method, &path, body.clone()).await,
            root.call(&app, method, &path, body.clone()).await,
        ];
        let statuses = got.iter().map(|r| r.status).collect::<Vec<_>>();
        assert_eq!(
            statuses,
            expected,
            "{method} {path} {body:?}: {:?}",
            got.iter().map(|r| &r.body).collect::<Vec<_>>()
        );
        let anon = &got[0];
        assert!(
            anon.header("www-authenticate").is_some(),
            "401 says how to authenticate"
        );
        assert_eq!(
            anon.json()["error"],
            "not_authenticated",
            "never a redirect for the API"
        );
    }
    // A member's self-record through the id route works like /me.
    let own = member
        .call(&app, "GET", &format!("/api/users/{}/", member.id), None)
        .await;
    assert_eq!(own.status, 200);
    // Only superusers delete, and a deleted user is gone.
    let gone = root
        .call(&app, "DELETE", &format!("/api/users/{o}/"), None)
        .await;
    assert_eq!(gone.status, 200, "{}", gone.body);
    assert_eq!(gone.json()["kakao_unlink"], "unlinked");
    assert_eq!(app.kakao.standin.unlinked(), vec![other.kakao_id]);
    assert_eq!(
        root.call(&app, "GET", &format!("/api/users/{o}/"), None)
            .await
            .status,
        404
    );
}

#[actix_web::test]
async fn the_json_user_has_exactly_the_public_fields() {
    let app = TestApp::spawn().await;
    let member = client(&app, Role::Member, "shape@example.com").await;
    let me = member
        .call(&app, "GET", "/api/users/me/", None)
        .await
        .json();
    let mut keys: Vec<&str> = me
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "age",
            "date_joined",
            "email",
            "id",
            "is_active",
            "is_staff",
            "is_superuser",
            "last_login",
            "name",
            "provider"
        ]
    );
    assert!(me["date_joined"].as_str().expect("time").ends_with('Z'));
}

#[actix_web::test]
async fn mass_assignment_and_bad_bodies_are_refused() {
    let app = TestApp::spawn().await;
    let member = client(&app, Role::Member, "mass@example.com").await;
    let staff = client(&app, Role::Staff, "staffer@example.com").await;
    let me = format!("/api/users/{}/", member.id);
    for body in [
        json!({"is_staff": true}),
        json!({"is_superuser": true}),
        json!({"id": 1}),
        json!({"date_joined": "2020-01-01"}),
        json!({"name": "x", "email_verified": true}),
    ] {
        let r = member
            .call(&app, "PATCH", "/api/users/me/", Some(body.clone()))
            .await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        let r = member.call(&app, "PATCH", &me, Some(body.clone())).await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
    }
    let r = member
        .call(
            &app,
            "PATCH",
            "/api/users/me/",
            Some(json!({"is_staff": true})),
        )
        .await;
    assert!(r.json()["is_staff"].is_array(), "a field map: {}", r.body);
    let r = staff
        .call(&app, "PATCH", &me, Some(json!({"is_superuser": true})))
        .await;
    assert_eq!(r.status, 403);
    let user = &app
        .users()
        .into_iter()
        .find(|u| u.id == member.id)
        .expect("user");
    assert!(!user.is_staff && !user.is_superuser, "nothing was assigned");

    let send = |ct: &'static str, body: String| {
        let member = &member;
        let app = &app;
        async move {
            member
                .browser
                .request(
                    "PATCH",
                    &app.url("/api/users/me/"),
                    Some(&body),
                    &[("content-type", ct), ("x-csrf-token", &member.csrf)],
                )
                .await
        }
    };
    assert_eq!(
        send("application/json", "{\"name\":".into()).await.status,
        400
    );
    assert_eq!(send("application/json", "[1,2]".into()).await.status, 400);
    assert_eq!(
        send("text/plain", "{\"name\":\"x\"}".into()).await.status,
        415
    );
    assert_eq!(
        send("application/x-www-form-urlencoded", "name=x".into())
            .await
            .status,
        415
    );
    let big = format!("{{\"name\":\"{}\"}}", "x".repeat(17 * 1024));
    assert_eq!(send("application/json", big).await.status, 413);
    let typed = send("application/json", "{\"age\":\"20\"}".into()).await;
    assert_eq!(typed.status, 400);
    assert!(typed.json()["age"].is_array(), "{}", typed.body);
    let range = send("application/json", "{\"age\":151}".into()).await;
    assert_eq!(range.status, 400);
    assert!(range.json()["age"].is_array());
    let huge = send("application/json", "{\"age\":9223372036854775808}".into()).await;
    assert_eq!(huge.status, 400);
    let ok = send(
        "application/json",
        "{\"name\":\"  길동 \",\"age\":null}".into(),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["name"], "길동");
    assert!(ok.json()["age"].is_null());
}

#[actix_web::test]
async fn cookie_authenticated_changes_need_the_csrf_header() {
    let app = TestApp::spawn().await;
    let member = client(&app, Role::Member, "csrf@example.com").await;
    let r = member
        .browser
        .request(
            "PATCH",
            &app.url("/api/users/me/"),
            Some("{\"age\":5}"),
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"], "csrf_invalid");
    let r = member
        .browser
        .request(
            "PATCH",
            &app.url("/api/users/me/"),
            Some("{\"age\":5}"),
            &[
                ("content-type", "application/json"),
                ("x-csrf-token", "forged"),
            ],
        )
        .await;
    assert_eq!(r.status, 403);
}

#[actix_web::test]
async fn the_last_active_superuser_cannot_be_demoted_deactivated_or_deleted() {
    let app = TestApp::spawn().await;
    let root = client(&app, Role::Superuser, "only@example.com").await;
    let me = format!("/api/users/{}/", root.id);
    for body in [json!({"is_superuser": false}), json!({"is_active": false})] {
        let r = root.call(&app, "PATCH", &me, Some(body)).await;
        assert_eq!(r.status, 409, "{}", r.body);
        assert_eq!(r.json()["error"], "last_superuser");
    }
    assert_eq!(root.call(&app, "DELETE", &me, None).await.status, 409);
    assert_eq!(
        root.call(&app, "DELETE", "/api/users/me/", None)
            .await
            .status,
        409
    );
    // With a second superuser, the first may step down.
    let second = client(&app, Role::Superuser, "second@example.com").await;
    let r = root
        .call(&app, "PATCH", &me, Some(json!({"is_superuser": false})))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = second
        .call(
            &app,
            "PATCH",
            &format!("/api/users/{}/", second.id),
            Some(json!({"is_active": false})),
        )
        .await;
    assert_eq!(r.status, 409);
}

#[actix_web::test]
async fn put_needs_every_field_the_caller_may_change() {
    let app = TestApp::spawn().await;
    let member = client(&app, Role::Member, "put@example.com").await;
    let me = format!("/api/users/{}/", member.id);
    let r = member
        .call(&app, "PUT", &me, Some(json!({"name": "a"})))
        .await;
    assert_eq!(r.status, 400);
    assert!(r.json()["age"].is_array());
    let r = member
        .call(&app, "PUT", &me, Some(json!({"name": "a", "age": 20})))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[actix_web::test]
async fn a_member_leaving_deletes_the_account_and_unlinks_at_kakao() {
    let app = TestApp::spawn().await;
    let _root = client(&app, Role::Superuser, "root@example.com").await;
    let leaver = client(&app, Role::Member, "leaver@example.com").await;
    let r = leaver.call(&app, "DELETE", "/api/users/me/", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["kakao_unlink"], "unlinked");
    assert_eq!(app.kakao.standin.unlinked(), vec![leaver.kakao_id]);
    assert_eq!(app.users().len(), 1);
    assert_eq!(
        leaver
            .call(&app, "GET", "/api/users/me/", None)
            .await
            .status,
        401
    );

    // A Kakao failure while unlinking is reported, and the account is still gone.
    let unlucky = client(&app, Role::Member, "unlucky@example.com").await;
    app.kakao
        .standin
        .set_fault(Endpoint::Unlink, Some(Fault::Status(500)));
    let r = unlucky.call(&app, "DELETE", "/api/users/me/", None).await;
    app.kakao.standin.set_fault(Endpoint::Unlink, None);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["kakao_unlink"], "failed");
    assert!(r.json()["kakao_error"].is_string());
    assert_eq!(app.users().len(), 1);
}

#[actix_web::test]
async fn list_pages_search_filter_and_order() {
    let app = TestApp::spawn().await;
    let staff = client(&app, Role::Staff, "lister@example.com").await;
    for i in 0..7 {
        let r = staff
            .call(
                &app,
                "POST",
                "/api/users/",
                Some(json!({"email": format!("p{i}@example.com"), "name": format!("Page_{i}")})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let first = staff
        .call(&app, "GET", "/api/users/?limit=3&ordering=-id", None)
        .await
        .json();
    assert_eq!(first["results"].as_array().expect("results").len(), 3);
    assert!(first["previous"].is_null());
    let mut ids: Vec<i64> = first["results"]
        .as_array()
        .expect("r")
        .iter()
        .map(|u| u["id"].as_i64().expect("id"))
        .collect();
    let mut next = first["next"].as_str().map(str::to_owned);
    while let Some(url) = next {
        assert!(url.starts_with(&app.base), "absolute link: {url}");
        let page = staff.browser.get(&url).await.json();
        ids.extend(
            page["results"]
                .as_array()
                .expect("r")
                .iter()
                .map(|u| u["id"].as_i64().expect("id")),
        );
        assert!(page["previous"].is_string());
        next = page["next"].as_str().map(str::to_owned);
    }
    let mut sorted = ids.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted);
    assert_eq!(ids.len(), 8);

    let found = staff
        .call(&app, "GET", "/api/users/?search=PAGE_3", None)
        .await
        .json();
    assert_eq!(found["results"].as_array().expect("r").len(), 1);
    let literal = staff
        .call(&app, "GET", "/api/users/?search=%25", None)
        .await
        .json();
    assert_eq!(
        literal["results"].as_array().expect("r").len(),
        0,
        "% is literal"
    );
    let local = staff
        .call(
            &app,
            "GET",
            "/api/users/?provider=local&is_staff=false",
            None,
        )
        .await
        .json();
    assert_eq!(local["results"].as_array().expect("r").len(), 7);

    for bad in [
        "limit=0",
        "limit=201",
        "limit=x",
        "ordering=password",
        "is_staff=maybe",
        "provider=naver",
        "cursor=nope",
    ] {
        let r = staff
            .call(&app, "GET", &format!("/api/users/?{bad}"), None)
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
}
