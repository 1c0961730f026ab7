//! Every door into the change service, through HTTP: each change writes exactly one audit row
//! naming its actor, door, target and fields; staff cannot hand a staff account to anyone
//! through any door; every unsafe request needs this session's CSRF token; signing in over
//! someone's session ends it.

use serde_json::json;

use super::api::client;
use crate::support::{Resp, Role, TestApp, UserPatch};

#[actix_web::test]
async fn every_api_change_writes_one_audit_row() {
    let app = TestApp::spawn().await;
    let root = client(&app, Role::Superuser, "root@example.com").await;
    let member = client(&app, Role::Member, "member@example.com").await;
    let r = |id: i64| format!("/api/users/{id}/");

    let mark = app.audit_mark();
    let created = root
        .send(
            &app,
            "POST",
            "/api/users/",
            json!({"email": "new@example.com"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let new_id = created.json()["id"].as_i64().expect("id");
    let steps: Vec<(Resp, &str, i64, i64)> = vec![
        (
            root.send(&app, "PATCH", &r(new_id), json!({"name": "새사람"}))
                .await,
            "update",
            root.id,
            new_id,
        ),
        (
            root.send(
                &app,
                "PUT",
                &r(new_id),
                json!({"name": "새사람", "age": 20, "email": "new@example.com",
                       "is_active": true, "is_staff": false, "is_superuser": true}),
            )
            .await,
            "update",
            root.id,
            new_id,
        ),
        (
            member
                .send(&app, "PATCH", "/api/users/me/", json!({"age": 41}))
                .await,
            "update",
            member.id,
            member.id,
        ),
        (
            root.send(&app, "DELETE", &r(new_id), json!({})).await,
            "delete",
            root.id,
            new_id,
        ),
        (
            member
                .send(&app, "DELETE", "/api/users/me/", json!({}))
                .await,
            "delete",
            member.id,
            member.id,
        ),
    ];
    for (res, ..) in &steps {
        assert_eq!(res.status, 200, "{}", res.body);
    }
    let rows = app.audit_since(mark);
    let got: Vec<(&str, Option<i64>, Option<i64>, &str)> = rows
        .iter()
        .map(|r| (r.action.as_str(), r.actor_id, r.target_id, r.via.as_str()))
        .collect();
    let mut expected = vec![("create", Some(root.id), Some(new_id), "api")];
    expected.extend(
        steps
            .iter()
            .map(|(_, action, actor, target)| (*action, Some(*actor), Some(*target), "api")),
    );
    assert_eq!(got, expected);
    let promoted = &rows[2];
    assert!(
        promoted
            .field_changes()
            .iter()
            .any(|c| c.field == "is_superuser" && c.old == "false" && c.new == "true"),
        "a promotion through the API is in the log: {promoted:?}"
    );
}

#[actix_web::test]
async fn the_profile_page_and_the_admin_write_their_audit_rows_too() {
    let app = TestApp::spawn().await;
    let (staff, staff_user) = app.signed_in_as(Role::Staff, "staff@example.com").await;
    let (member, member_user) = app.signed_in_as(Role::Member, "member@example.com").await;
    let mark = app.audit_mark();
    let token = app.csrf(&member, "/profile/").await;
    let saved = member
        .post_form(
            &app.url("/profile/"),
            &[("csrf_token", &token), ("name", "회원"), ("age", "33")],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let token = app.csrf(&staff, "/admin/users/").await;
    let bulk = staff
        .post_form(
            &app.url("/admin/users/bulk/"),
            &[
                ("csrf_token", token.as_str()),
                ("action", "sign_out"),
                ("ids", &member_user.id.to_string()),
            ],
        )
        .await;
    assert_eq!(bulk.status, 303);
    let rows = app.audit_since(mark);
    let got: Vec<(&str, Option<i64>, &str)> = rows
        .iter()
        .map(|r| (r.action.as_str(), r.actor_id, r.via.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("update", Some(member_user.id), "profile"),
            ("sign_out_everywhere", Some(staff_user.id), "admin"),
        ]
    );
    let fields: Vec<String> = rows[0]
        .field_changes()
        .into_iter()
        .map(|c| c.field)
        .collect();
    assert_eq!(fields, ["name", "age"]);
}

/// A pre-provisioned staff record nobody has claimed yet: whoever signs in with Kakao under its
/// email becomes staff. A staff member must not be able to point it at anyone.
#[actix_web::test]
async fn staff_cannot_point_an_unclaimed_staff_record_at_someone_else() {
    let app = TestApp::spawn().await;
    let staff = client(&app, Role::Staff, "staff@example.com").await;
    let (_, root_user) = app.signed_in_as(Role::Superuser, "root@example.com").await;
    let hire = {
        let user = app.create_user("new-hire@example.com", "신입");
        app.change(
            user.id,
            UserPatch {
                is_staff: Some(true),
                ..Default::default()
            },
        )
    };
    let mark = app.audit_mark();
    let through_api = staff
        .send(
            &app,
            "PATCH",
            &format!("/api/users/{}/", hire.id),
            json!({"email": "attacker@example.com"}),
        )
        .await;
    assert_eq!(through_api.status, 403, "{}", through_api.body);
    assert_eq!(through_api.json()["error"], "permission_denied");
    let token = app.csrf(&staff.browser, "/admin/users/").await;
    let through_admin = staff
        .browser
        .post_form(
            &app.url(&format!("/admin/users/{}/", hire.id)),
            &[("csrf_token", &token), ("email", "attacker@example.com")],
        )
        .await;
    assert_eq!(through_admin.status, 403, "{}", through_admin.body);
    let form = staff
        .browser
        .get(&app.url(&format!("/admin/users/{}/", hire.id)))
        .await;
    assert!(
        !form.body.contains("name=\"email\""),
        "staff are not even offered the field"
    );
    // The superuser's record is out of reach the same way.
    let root = staff
        .send(
            &app,
            "PATCH",
            &format!("/api/users/{}/", root_user.id),
            json!({"email": "attacker@example.com"}),
        )
        .await;
    assert_eq!(root.status, 403);
    // Nor its flags, through any door: the API, the form, the buttons, a bulk action.
    for patch in [
        json!({"is_active": false}),
        json!({"is_staff": false}),
        json!({"name": "x"}),
    ] {
        let r = staff
            .send(
                &app,
                "PATCH",
                &format!("/api/users/{}/", hire.id),
                patch.clone(),
            )
            .await;
        assert_eq!(r.status, 403, "{patch}: {}", r.body);
    }
    let unticked = staff
        .browser
        .post_form(
            &app.url(&format!("/admin/users/{}/", hire.id)),
            &[("csrf_token", &token), ("name", "신입")],
        )
        .await;
    assert_eq!(unticked.status, 403, "{}", unticked.body);
    for action in ["deactivate/", "sign-out/"] {
        let r = staff
            .browser
            .post_form(
                &app.url(&format!("/admin/users/{}/{action}", hire.id)),
                &[("csrf_token", &token)],
            )
            .await;
        assert_eq!(r.status, 403, "{action}");
    }
    let bulk = staff
        .browser
        .post_form(
            &app.url("/admin/users/bulk/"),
            &[
                ("csrf_token", token.as_str()),
                ("action", "deactivate"),
                ("ids", &hire.id.to_string()),
            ],
        )
        .await;
    assert!(
        bulk.location().ends_with("bulk_ok=0&bulk_failed=1"),
        "{}",
        bulk.location()
    );
    assert_eq!(app.user(hire.id), Some(hire));
    assert!(app.audit_since(mark).is_empty());
    // The attacker signing in with that email gets an ordinary account, not the staff one.
    let (_, _) = app.signed_in("attacker", "attacker@example.com").await;
    let attacker = app.user_by_email("attacker@example.com").expect("attacker");
    assert!(!attacker.is_staff);
}

#[actix_web::test]
async fn every_unsafe_request_needs_this_sessions_csrf_token() {
    let app = TestApp::spawn().await;
    let (root, root_user) = app.signed_in_as(Role::Superuser, "root@example.com").await;
    let target = app.create_user("target@example.com", "대상");
    let id = target.id;
    let forms = [
        "/profile/".to_owned(),
        "/kakao/logout/".to_owned(),
        "/admin/users/new/".to_owned(),
        "/admin/users/bulk/".to_owned(),
        format!("/admin/users/{id}/"),
        format!("/admin/users/{id}/activate/"),
        format!("/admin/users/{id}/deactivate/"),
        format!("/admin/users/{id}/sign-out/"),
        format!("/admin/users/{id}/delete/"),
    ];
    for path in &forms {
        for token in ["", "forged"] {
            let res = root
                .post_form(
                    &app.url(path),
                    &[
                        ("csrf_token", token),
                        ("name", "x"),
                        ("email", "x@example.com"),
                        ("role", "member"),
                        ("action", "deactivate"),
                        ("ids", &id.to_string()),
                    ],
                )
                .await;
            assert_eq!(res.status, 403, "{path} {token:?}: {}", res.body);
            assert_eq!(res.error_code().as_deref(), Some("csrf_invalid"), "{path}");
        }
    }
    // Every unsafe operation of the API, as its OpenAPI document lists them (so a new one is
    // covered without this test knowing of it). The mobile sign-in brings its own credentials
    // and acts on no session: it is the one exception.
    let doc = root.get(&app.url("/api/openapi.json")).await.json();
    let mut calls = Vec::new();
    for (path, operations) in doc["paths"].as_object().expect("paths") {
        for method in operations.as_object().expect("operations").keys() {
            let method = method.to_uppercase();
            if ["GET", "HEAD", "OPTIONS"].contains(&method.as_str()) || path == "/api/auth/kakao/" {
                continue;
            }
            calls.push((method, path.replace("{id}", &id.to_string())));
        }
    }
    assert!(calls.len() >= 6, "{calls:?}");
    for (method, path) in &calls {
        let res = root
            .request(
                method,
                &app.url(path),
                Some("{\"name\": \"x\", \"email\": \"y@example.com\"}"),
                &[("content-type", "application/json")],
            )
            .await;
        assert_eq!(res.status, 403, "{method} {path}: {}", res.body);
        assert_eq!(res.json()["error"], "csrf_invalid");
    }
    assert_eq!(app.user(id), Some(target));
    assert!(app.user(root_user.id).is_some());
    assert_eq!(
        root.get(&app.url("/profile/")).await.status,
        200,
        "still signed in"
    );
}

#[actix_web::test]
async fn signing_in_over_someone_elses_session_ends_it() {
    let app = TestApp::spawn().await;
    let (browser, _) = app.signed_in("첫째", "first@example.com").await;
    let first_cookie = browser.clone_cookies();
    assert_eq!(first_cookie.get(&app.url("/profile/")).await.status, 200);
    // A second person signs in on the same browser.
    let second = app.kakao_user("둘째", "second@example.com");
    let done = app.login_agreeing(&browser, second, None).await;
    assert_eq!(done.status, 303);
    let page = browser.get(&app.url("/profile/")).await;
    assert!(page.body.contains("second@example.com"));
    // The first person's saved cookie is worth nothing now.
    let stale = first_cookie.get(&app.url("/profile/")).await;
    assert_eq!(stale.status, 303, "{}", stale.body);
    let api = first_cookie.get(&app.url("/api/users/me/")).await;
    assert_eq!(api.status, 401);
}

/// Errors of the core carry their own status on the API face: a refusal or a missing record
/// is never a 500.
#[actix_web::test]
async fn refusals_keep_their_status_on_the_api() {
    let app = TestApp::spawn().await;
    let root = client(&app, Role::Superuser, "root@example.com").await;
    let staff = client(&app, Role::Staff, "staff@example.com").await;
    for (who, method, path, body, status, code) in [
        (
            &root,
            "PATCH",
            "/api/users/999999/",
            json!({"name": "x"}),
            404,
            "not_found",
        ),
        (
            &root,
            "DELETE",
            "/api/users/999999/",
            json!({}),
            404,
            "not_found",
        ),
        (
            &staff,
            "DELETE",
            "/api/users/999999/",
            json!({}),
            403,
            "permission_denied",
        ),
        (
            &staff,
            "POST",
            "/api/users/",
            json!({"email": "s@example.com", "is_staff": true}),
            403,
            "permission_denied",
        ),
        (
            &root,
            "POST",
            "/api/users/",
            json!({"email": "root@example.com"}),
            409,
            "email_in_use",
        ),
        (
            &root,
            "POST",
            "/api/users/",
            json!({"email": "nope"}),
            400,
            "invalid",
        ),
    ] {
        let res = who.send(&app, method, path, body).await;
        assert_eq!(res.status, status, "{method} {path}: {}", res.body);
        if code != "invalid" {
            assert_eq!(res.json()["error"], code, "{method} {path}");
        } else {
            assert!(res.json()["email"].is_array(), "a field map: {}", res.body);
        }
    }
    let unknown = root.browser.get(&app.url("/api/nothing/here/")).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["error"], "not_found");
}
