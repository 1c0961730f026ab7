//! The staff admin at /admin/: access control, every action through the services with its
//! audit row, CSRF, escaping, the last-superuser rule, list search and pages, CSV, bulk
//! actions, creating users, the dashboard and the break-glass sign-in.

use std::io::Write;
use std::process::{Command, Stdio};

use diesel::prelude::*;
use kakao_login::db::DbConnection;
use kakao_login::db::schema::{audit_log, users};
use kakao_login::standin::{Endpoint, Fault};
use kakao_login::users::audit::AuditEntry;
use kakao_login::users::manager::{CreateUser, UserManager};
use kakao_login::users::model::User;

use crate::support::{Browser, TestApp};

/// Sign a Kakao user in and give them the flags.
async fn signed_in_with(
    app: &TestApp,
    nickname: &str,
    email: &str,
    staff: bool,
    superuser: bool,
) -> (Browser, User) {
    let (browser, _) = app.signed_in(nickname, email).await;
    let mut conn = app.conn();
    let user = diesel::update(users::table.filter(users::email.eq(email)))
        .set((users::is_staff.eq(staff), users::is_superuser.eq(superuser)))
        .get_result::<User>(&mut *conn as &mut DbConnection)
        .expect("set flags");
    (browser, user)
}

fn user(app: &TestApp, id: i64) -> Option<User> {
    let mut conn = app.conn();
    users::table
        .find(id)
        .first::<User>(&mut *conn as &mut DbConnection)
        .optional()
        .expect("user")
}

fn audit_rows(app: &TestApp) -> Vec<AuditEntry> {
    let mut conn = app.conn();
    audit_log::table
        .order(audit_log::id)
        .load::<AuditEntry>(&mut *conn as &mut DbConnection)
        .expect("audit rows")
}

fn create(app: &TestApp, email: &str, name: &str) -> User {
    let mut conn = app.conn();
    UserManager::create_user(
        &mut conn,
        &CreateUser {
            email: email.into(),
            name: Some(name.into()),
            provider: "local".into(),
            ..CreateUser::default()
        },
    )
    .expect("create user")
}

/// The CSRF token of `browser`'s session, read from an admin (or profile) form.
async fn csrf(app: &TestApp, browser: &Browser, path: &str) -> String {
    let page = browser.get(&app.url(path)).await;
    page.input_value("csrf_token")
        .unwrap_or_else(|| panic!("no csrf token on {path}: {}", page.body))
}

#[actix_web::test]
async fn anonymous_people_go_to_the_login_page_and_members_get_403() {
    let app = TestApp::spawn().await;
    let (member, me) = signed_in_with(&app, "회원", "member@example.com", false, false).await;
    let other = create(&app, "other@example.com", "남");
    let anon = app.browser();
    let id = other.id;
    let pages = [
        "/admin/".to_owned(),
        "/admin/users/".to_owned(),
        "/admin/users/?q=a".to_owned(),
        format!("/admin/users/{id}/"),
        format!("/admin/users/{id}/delete/"),
        "/admin/users/new/".to_owned(),
        "/admin/audit/".to_owned(),
        "/admin/users.csv".to_owned(),
    ];
    for path in &pages {
        let res = anon.get(&app.url(path)).await;
        assert_eq!(res.status, 303, "{path}");
        let next = url::form_urlencoded::byte_serialize(path.as_bytes()).collect::<String>();
        assert_eq!(res.location(), format!("/?next={next}"), "{path}");
        let res = member.get(&app.url(path)).await;
        assert_eq!(res.status, 403, "{path}: {}", res.body);
        assert_eq!(res.error_code().as_deref(), Some("forbidden"), "{path}");
    }
    // Actions, even with the member's own valid token, are refused and change nothing.
    let token = csrf(&app, &member, "/profile/").await;
    for action in ["deactivate/", "sign-out/", "delete/", ""] {
        let res = member
            .post_form(
                &app.url(&format!("/admin/users/{id}/{action}")),
                &[("csrf_token", &token), ("name", "hacked")],
            )
            .await;
        assert_eq!(res.status, 403, "{action}: {}", res.body);
    }
    for (path, form) in [
        (
            "/admin/users/new/",
            vec![("email", "x@example.com"), ("role", "member")],
        ),
        ("/admin/users/bulk/", vec![("action", "deactivate")]),
    ] {
        let mut form = form;
        form.push(("csrf_token", &token));
        assert_eq!(member.post_form(&app.url(path), &form).await.status, 403);
    }
    let res = anon
        .post_form(&app.url(&format!("/admin/users/{id}/deactivate/")), &[])
        .await;
    assert_eq!(res.status, 303);
    assert_eq!(user(&app, id), Some(other));
    assert_eq!(user(&app, me.id).map(|u| u.is_active), Some(true));
    assert!(audit_rows(&app).is_empty());
    // The member's own pages have no admin link; staff get one.
    assert!(
        !member
            .get(&app.url("/profile/"))
            .await
            .body
            .contains("/admin/")
    );
}

#[actix_web::test]
async fn staff_deactivate_and_activate_a_member_with_audit_rows() {
    let app = TestApp::spawn().await;
    let (staff, staff_user) = signed_in_with(&app, "직원", "staff@example.com", true, false).await;
    let (member, target) = signed_in_with(&app, "회원", "member@example.com", false, false).await;
    assert!(
        staff
            .get(&app.url("/profile/"))
            .await
            .body
            .contains("href=\"/admin/\"")
    );
    let token = csrf(&app, &staff, "/admin/users/").await;
    let res = staff
        .post_form(
            &app.url(&format!("/admin/users/{}/deactivate/", target.id)),
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(
        res.location(),
        format!("/admin/users/{}/?saved=1", target.id)
    );
    assert_eq!(user(&app, target.id).map(|u| u.is_active), Some(false));
    // Deactivation ends the member's sessions at once.
    assert_eq!(member.get(&app.url("/profile/")).await.status, 303);
    let rows = audit_rows(&app);
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.actor_id, Some(staff_user.id));
    assert_eq!(row.actor_email, "staff@example.com");
    assert_eq!(row.target_id, Some(target.id));
    assert_eq!(row.action, "deactivate");
    let changes = row.field_changes();
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (
            changes[0].field.as_str(),
            changes[0].old.as_str(),
            changes[0].new.as_str()
        ),
        ("is_active", "true", "false")
    );

    let res = staff
        .post_form(
            &app.url(&format!("/admin/users/{}/activate/", target.id)),
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(res.status, 303);
    assert_eq!(user(&app, target.id).map(|u| u.is_active), Some(true));
    let rows = audit_rows(&app);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].action, "activate");

    // The user's page shows their history; the audit page filters by target and action.
    let page = staff
        .get(&app.url(&format!("/admin/users/{}/", target.id)))
        .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("비활성화") && page.body.contains("활성화"));
    assert!(
        page.body
            .contains(&format!("data-audit-id=\"{}\"", rows[0].id))
    );
    let audit = staff
        .get(&app.url(&format!(
            "/admin/audit/?target={}&action=activate",
            target.id
        )))
        .await;
    assert_eq!(audit.status, 200);
    assert!(
        audit
            .body
            .contains(&format!("data-audit-id=\"{}\"", rows[1].id))
    );
    assert!(
        !audit
            .body
            .contains(&format!("data-audit-id=\"{}\"", rows[0].id))
    );
}

#[actix_web::test]
async fn admin_posts_without_this_sessions_token_or_from_another_site_are_refused() {
    let app = TestApp::spawn().await;
    let (staff, _) = signed_in_with(&app, "직원", "staff@example.com", true, false).await;
    let (other_staff, _) = signed_in_with(&app, "직원2", "staff2@example.com", true, false).await;
    let target = create(&app, "member@example.com", "회원");
    let url = app.url(&format!("/admin/users/{}/deactivate/", target.id));
    let res = staff.post_form(&url, &[]).await;
    assert_eq!(res.status, 403);
    assert_eq!(res.error_code().as_deref(), Some("csrf_invalid"));
    let stolen = csrf(&app, &other_staff, "/admin/users/").await;
    let res = staff.post_form(&url, &[("csrf_token", &stolen)]).await;
    assert_eq!(res.error_code().as_deref(), Some("csrf_invalid"));
    let token = csrf(&app, &staff, "/admin/users/").await;
    let res = staff
        .post_form_with(
            &url,
            &[("csrf_token", &token)],
            &[("origin", "https://evil.example")],
        )
        .await;
    assert_eq!(res.error_code().as_deref(), Some("csrf_invalid"));
    let edit = staff
        .post_form(
            &app.url(&format!("/admin/users/{}/", target.id)),
            &[("csrf_token", "wrong"), ("name", "x")],
        )
        .await;
    assert_eq!(edit.error_code().as_deref(), Some("csrf_invalid"));
    // State never changes on GET.
    assert_eq!(staff.get(&url).await.status, 405);
    assert_eq!(user(&app, target.id), Some(target));
    assert!(audit_rows(&app).is_empty());
    // Tokens travel only in hidden fields, never in links.
    let page = staff.get(&app.url("/admin/users/")).await;
    assert_eq!(
        page.body.matches(token.as_str()).count(),
        page.body
            .matches(&format!("name=\"csrf_token\" value=\"{token}\""))
            .count()
    );
    assert!(!page.body.contains("csrf_token="));
}

#[actix_web::test]
async fn staff_edit_members_but_only_superusers_change_flags_or_touch_superusers() {
    let app = TestApp::spawn().await;
    let (staff, staff_user) = signed_in_with(&app, "직원", "staff@example.com", true, false).await;
    let (root, _) = signed_in_with(&app, "대표", "root@example.com", true, true).await;
    let target = create(&app, "member@example.com", "회원");
    let token = csrf(&app, &staff, "/admin/users/").await;
    let edit_url = app.url(&format!("/admin/users/{}/", target.id));
    let form = staff.get(&edit_url).await;
    assert!(form.body.contains("name=\"email\""));
    assert!(
        !form.body.contains("name=\"is_superuser\""),
        "staff see no flag boxes"
    );
    let res = staff
        .post_form(
            &edit_url,
            &[
                ("csrf_token", &token),
                ("name", "  새 이름 "),
                ("age", "31"),
                ("email", "New@Example.com"),
                ("is_active", "on"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    let changed = user(&app, target.id).expect("user");
    assert_eq!(changed.name.as_deref(), Some("새 이름"));
    assert_eq!(changed.age, Some(31));
    assert_eq!(changed.email, "new@example.com");
    let row = audit_rows(&app).pop().expect("audit row");
    assert_eq!(row.action, "update");
    let fields: Vec<(String, String, String)> = row
        .field_changes()
        .into_iter()
        .map(|c| (c.field, c.old, c.new))
        .collect();
    assert!(fields.contains(&("name".into(), "회원".into(), "새 이름".into())));
    assert!(fields.contains(&("age".into(), "null".into(), "31".into())));
    assert!(fields.contains(&(
        "email".into(),
        "member@example.com".into(),
        "new@example.com".into()
    )));

    // Field errors come back in the form.
    let res = staff
        .post_form(
            &edit_url,
            &[
                ("csrf_token", &token),
                ("name", "ok"),
                ("age", "abc"),
                ("email", "new@example.com"),
            ],
        )
        .await;
    assert_eq!(res.status, 422);
    assert!(res.body.contains("data-error-for=\"age\""));
    let res = staff
        .post_form(
            &edit_url,
            &[
                ("csrf_token", &token),
                ("email", "root@example.com"),
                ("is_active", "on"),
            ],
        )
        .await;
    assert_eq!(res.status, 422);
    assert!(res.body.contains("data-error-for=\"email\""));

    // Staff cannot set flags, nor edit a superuser.
    let before = audit_rows(&app).len();
    let res = staff
        .post_form(
            &edit_url,
            &[
                ("csrf_token", &token),
                ("is_active", "on"),
                ("is_superuser", "on"),
            ],
        )
        .await;
    assert_eq!(res.status, 403, "{}", res.body);
    let root_user = user(&app, staff_user.id + 1).expect("root");
    assert!(root_user.is_superuser);
    let res = staff
        .post_form(
            &app.url(&format!("/admin/users/{}/deactivate/", root_user.id)),
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(res.status, 403);
    let res = staff
        .post_form(
            &app.url(&format!("/admin/users/{}/", root_user.id)),
            &[("csrf_token", &token), ("name", "x")],
        )
        .await;
    assert_eq!(res.status, 403);
    assert_eq!(audit_rows(&app).len(), before);
    assert!(!user(&app, target.id).expect("user").is_superuser);

    // A superuser promotes the member to staff.
    let root_token = csrf(&app, &root, "/admin/users/").await;
    let res = root
        .post_form(
            &edit_url,
            &[
                ("csrf_token", &root_token),
                ("is_active", "on"),
                ("is_staff", "on"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    let promoted = user(&app, target.id).expect("user");
    assert!(promoted.is_staff && !promoted.is_superuser);
    let row = audit_rows(&app).pop().expect("audit row");
    assert_eq!(row.field_changes().len(), 1);
    assert_eq!(row.field_changes()[0].field, "is_staff");
}

#[actix_web::test]
async fn names_and_emails_are_escaped_on_admin_pages() {
    let app = TestApp::spawn().await;
    let (staff, _) = signed_in_with(&app, "직원", "staff@example.com", true, false).await;
    let evil = create(&app, "evil@example.com", "<script>alert(1)</script>");
    let token = csrf(&app, &staff, "/admin/users/").await;
    // Make an audit row carrying the name too.
    staff
        .post_form(
            &app.url(&format!("/admin/users/{}/", evil.id)),
            &[
                ("csrf_token", &token),
                ("name", "\"><img src=x onerror=alert(1)>"),
                ("email", "evil@example.com"),
                ("is_active", "on"),
            ],
        )
        .await;
    for path in [
        "/admin/users/".to_owned(),
        format!("/admin/users/{}/", evil.id),
        "/admin/audit/".to_owned(),
        "/admin/users/?q=%3Cscript%3E".to_owned(),
    ] {
        let page = staff.get(&app.url(&path)).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(!page.body.contains("<script>alert(1)"), "{path}");
        assert!(!page.body.contains("<img src=x"), "{path}");
        let csp = page.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
        assert_eq!(page.header("cache-control"), Some("no-store"));
    }
    let audit = staff.get(&app.url("/admin/audit/")).await;
    assert!(
        audit.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;")
            || audit.body.contains("&#60;script&#62;")
    );
}

#[actix_web::test]
async fn the_last_active_superuser_cannot_be_demoted_deactivated_or_deleted() {
    let app = TestApp::spawn().await;
    let (root, me) = signed_in_with(&app, "대표", "root@example.com", true, true).await;
    let token = csrf(&app, &root, "/admin/users/").await;
    let me_url = |s: &str| app.url(&format!("/admin/users/{}/{s}", me.id));
    let demote = root
        .post_form(
            &me_url(""),
            &[
                ("csrf_token", &token),
                ("is_active", "on"),
                ("is_staff", "on"),
            ],
        )
        .await;
    assert_eq!(demote.status, 409, "{}", demote.body);
    assert_eq!(demote.error_code().as_deref(), Some("last_superuser"));
    let deactivate = root
        .post_form(&me_url("deactivate/"), &[("csrf_token", &token)])
        .await;
    assert_eq!(deactivate.error_code().as_deref(), Some("last_superuser"));
    let delete = root
        .post_form(&me_url("delete/"), &[("csrf_token", &token)])
        .await;
    assert_eq!(delete.status, 409);
    let bulk = root
        .post_form(
            &app.url("/admin/users/bulk/"),
            &[
                ("csrf_token", &token),
                ("action", "deactivate"),
                ("ids", &me.id.to_string()),
            ],
        )
        .await;
    assert_eq!(bulk.status, 303);
    assert!(
        bulk.location().ends_with("bulk_ok=0&bulk_failed=1"),
        "{}",
        bulk.location()
    );
    let still = user(&app, me.id).expect("root");
    assert!(still.is_active && still.is_superuser);
    assert!(
        audit_rows(&app).is_empty(),
        "refused changes leave no audit row"
    );

    // With a second superuser, the first may step down.
    let (_, second) = signed_in_with(&app, "부대표", "second@example.com", true, true).await;
    let ok = root
        .post_form(
            &me_url(""),
            &[
                ("csrf_token", &token),
                ("is_active", "on"),
                ("is_staff", "on"),
            ],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert!(!user(&app, me.id).expect("me").is_superuser);
    assert!(user(&app, second.id).expect("second").is_superuser);
}

#[actix_web::test]
async fn superusers_delete_after_confirmation_and_the_kakao_link_is_cut() {
    let app = TestApp::spawn().await;
    let (staff, _) = signed_in_with(&app, "직원", "staff@example.com", true, false).await;
    let (root, root_user) = signed_in_with(&app, "대표", "root@example.com", true, true).await;
    let (_, leaving) = signed_in_with(&app, "떠남", "leaving@example.com", false, false).await;
    let kakao_id = {
        use kakao_login::db::schema::social_accounts;
        let mut conn = app.conn();
        social_accounts::table
            .filter(social_accounts::user_id.eq(leaving.id))
            .select(social_accounts::uid)
            .first::<i64>(&mut *conn as &mut DbConnection)
            .expect("kakao link")
    };
    let confirm = app.url(&format!("/admin/users/{}/delete/", leaving.id));
    assert_eq!(staff.get(&confirm).await.status, 403);
    let staff_token = csrf(&app, &staff, "/admin/users/").await;
    assert_eq!(
        staff
            .post_form(&confirm, &[("csrf_token", &staff_token)])
            .await
            .status,
        403
    );
    let page = root.get(&confirm).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("leaving@example.com"));
    let token = page.input_value("csrf_token").expect("token");
    let res = root.post_form(&confirm, &[("csrf_token", &token)]).await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(
        res.location(),
        format!("/admin/users/?deleted={}&unlink=ok", leaving.id)
    );
    assert_eq!(user(&app, leaving.id), None);
    assert_eq!(app.kakao.standin.unlinked(), vec![kakao_id]);
    let row = audit_rows(&app).pop().expect("audit row");
    assert_eq!(row.action, "delete");
    assert_eq!(row.actor_id, Some(root_user.id));
    assert_eq!(row.target_id, Some(leaving.id));
    assert_eq!(row.target_email, "leaving@example.com");

    // A failure at Kakao is shown, not hidden; the user is deleted here anyway.
    let (_, second) = signed_in_with(&app, "둘째", "second@example.com", false, false).await;
    app.kakao
        .standin
        .set_fault(Endpoint::Unlink, Some(Fault::Status(500)));
    let res = root
        .post_form(
            &app.url(&format!("/admin/users/{}/delete/", second.id)),
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(res.status, 303);
    assert!(res.location().ends_with("&unlink=failed"));
    assert_eq!(user(&app, second.id), None);
    let list = root.get(&app.url(&res.location())).await;
    assert!(list.body.contains("data-unlink=\"failed\""));
}

#[actix_web::test]
async fn sign_out_everywhere_ends_every_session_of_the_user() {
    let app = TestApp::spawn().await;
    let (staff, _) = signed_in_with(&app, "직원", "staff@example.com", true, false).await;
    let (phone, kakao_id) = app.signed_in("회원", "member@example.com").await;
    let laptop = app.browser();
    let done = app.login_agreeing(&laptop, kakao_id, None).await;
    assert_eq!(done.status, 303);
    let member = app
        .users()
        .into_iter()
        .find(|u| u.email == "member@example.com")
        .expect("member");
    let token = csrf(&app, &staff, "/admin/users/").await;
    let res = staff
        .post_form(
            &app.url(&format!("/admin/users/{}/sign-out/", member.id)),
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(res.status, 303);
    assert_eq!(phone.get(&app.url("/profile/")).await.status, 303);
    assert_eq!(laptop.get(&app.url("/profile/")).await.status, 303);
    assert_eq!(user(&app, member.id).map(|u| u.is_active), Some(true));
    let row = audit_rows(&app).pop().expect("audit row");
    assert_eq!(row.action, "sign_out_everywhere");
    assert_eq!(row.field_changes()[0].old, "2");
}

#[actix_web::test]
async fn the_admin_list_searches_filters_sorts_and_pages() {
    let app = TestApp::spawn().await;
    let (staff, _) = signed_in_with(&app, "직원", "staff@example.com", true, false).await;
    for i in 0..120 {
        let name = match i % 4 {
            0 => "Kim 50%",
            1 => "lee_a",
            2 => "박",
            _ => "KIMCHI",
        };
        create(&app, &format!("user{i:03}@example.com"), name);
    }
    let ids_on = |body: &str| -> Vec<i64> {
        body.split("data-user-id=\"")
            .skip(1)
            .filter_map(|s| s.split('"').next()?.parse().ok())
            .collect()
    };
    // Follow "다음" links through the whole list.
    let mut seen = Vec::new();
    let mut url = app.url("/admin/users/?ordering=email");
    let mut pages = 0;
    loop {
        let page = staff.get(&url).await;
        assert_eq!(page.status, 200, "{}", page.body);
        seen.extend(ids_on(&page.body));
        pages += 1;
        let Some(at) = page.body.find("rel=\"next\" href=\"") else {
            break;
        };
        let rest = &page.body[at + "rel=\"next\" href=\"".len()..];
        let href = rest[..rest.find('"').expect("end")]
            .replace("&#38;", "&")
            .replace("&amp;", "&");
        url = app.url(&href);
    }
    assert_eq!(pages, 3);
    let mut expected: Vec<(String, i64)> =
        app.users().into_iter().map(|u| (u.email, u.id)).collect();
    expected.sort();
    assert_eq!(
        seen,
        expected.into_iter().map(|(_, id)| id).collect::<Vec<_>>()
    );

    // `%` and `_` are literal, and search ignores case.
    let percent = staff.get(&app.url("/admin/users/?q=%25")).await;
    assert_eq!(ids_on(&percent.body).len(), 30);
    let underscore = staff.get(&app.url("/admin/users/?q=_")).await;
    assert_eq!(ids_on(&underscore.body).len(), 30);
    let kim = staff.get(&app.url("/admin/users/?q=kim")).await;
    assert_eq!(ids_on(&kim.body).len(), 50, "both Kim and KIMCHI, one page");
    assert!(kim.body.contains("rel=\"next\""));
    let email = staff.get(&app.url("/admin/users/?q=USER007%40")).await;
    assert_eq!(ids_on(&email.body).len(), 1);
    let staff_only = staff.get(&app.url("/admin/users/?staff=1")).await;
    assert_eq!(ids_on(&staff_only.body).len(), 1);
    let kakao = staff.get(&app.url("/admin/users/?provider=kakao")).await;
    assert_eq!(ids_on(&kakao.body).len(), 1);
    // Bad input is a 400 page, never a 500.
    for bad in [
        "?ordering=password",
        "?cursor=nope",
        "?active=maybe",
        "?provider=x",
    ] {
        let res = staff.get(&app.url(&format!("/admin/users/{bad}"))).await;
        assert_eq!(res.status, 400, "{bad}");
    }
    assert_eq!(staff.get(&app.url("/admin/users/abc/")).await.status, 404);
    assert_eq!(
        staff
            .get(&app.url("/admin/users/99999999999999999999/"))
            .await
            .status,
        404
    );
}

#[actix_web::test]
async fn the_csv_export_streams_the_filtered_list() {
    let app = TestApp::spawn().await;
    let (staff, _) = signed_in_with(&app, "직원", "staff@example.com", true, false).await;
    let a = create(&app, "a@example.com", "Kim, \"the\" first");
    let b = create(&app, "b@example.com", "=HYPERLINK(\"x\")");
    create(&app, "c@example.com", "Lee");
    for i in 0..250 {
        create(&app, &format!("bulk{i:03}@example.org"), "벌크");
    }
    let res = staff
        .get(&app.url("/admin/users.csv?q=%40example.com&ordering=email"))
        .await;
    assert_eq!(res.status, 200);
    assert!(
        res.header("content-type")
            .unwrap_or_default()
            .starts_with("text/csv")
    );
    assert!(
        res.header("content-disposition")
            .unwrap_or_default()
            .contains("users.csv")
    );
    let body = res.body.trim_start_matches('\u{feff}');
    let lines: Vec<&str> = body.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines[0],
        "id,email,name,age,provider,is_active,is_staff,is_superuser,date_joined,last_login"
    );
    assert_eq!(lines.len(), 5, "header + a, b, c, staff: {body}");
    assert!(lines[1].starts_with(&format!(
        "{},a@example.com,\"Kim, \"\"the\"\" first\",,local,true,false,false,",
        a.id
    )));
    assert!(lines[2].starts_with(&format!(
        "{},b@example.com,\"'=HYPERLINK(\"\"x\"\")\",",
        b.id
    )));
    assert!(lines[3].starts_with(&format!("{},c@example.com,Lee,", a.id + 1 + 1)));
    assert!(lines[4].contains("staff@example.com"));
    // More than one page of the underlying query.
    let all = staff.get(&app.url("/admin/users.csv?q=example.org")).await;
    assert_eq!(
        all.body.split("\r\n").filter(|l| !l.is_empty()).count(),
        251
    );
    assert!(all.body.contains("벌크"));
}

#[actix_web::test]
async fn bulk_actions_apply_to_the_selected_users_and_skip_the_refused() {
    let app = TestApp::spawn().await;
    let (staff, _) = signed_in_with(&app, "직원", "staff@example.com", true, false).await;
    let (_, root) = signed_in_with(&app, "대표", "root@example.com", true, true).await;
    let one = create(&app, "one@example.com", "하나");
    let two = create(&app, "two@example.com", "둘");
    let three = create(&app, "three@example.com", "셋");
    let token = csrf(&app, &staff, "/admin/users/").await;
    let back = "/admin/users/?q=example&ordering=email";
    let ids = [one.id, two.id, root.id].map(|i| i.to_string());
    let res = staff
        .post_form(
            &app.url("/admin/users/bulk/"),
            &[
                ("csrf_token", token.as_str()),
                ("action", "deactivate"),
                ("back", back),
                ("ids", &ids[0]),
                ("ids", &ids[1]),
                ("ids", &ids[2]),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(res.location(), format!("{back}&bulk_ok=2&bulk_failed=1"));
    assert!(!user(&app, one.id).expect("one").is_active);
    assert!(!user(&app, two.id).expect("two").is_active);
    assert!(user(&app, three.id).expect("three").is_active);
    assert!(
        user(&app, root.id).expect("root").is_active,
        "staff cannot touch a superuser"
    );
    let rows = audit_rows(&app);
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.action == "deactivate"));
    let page = staff.get(&app.url(&res.location())).await;
    assert!(page.body.contains("2명에게 적용했습니다"));
    // Only our own list is a place to go back to.
    let res = staff
        .post_form(
            &app.url("/admin/users/bulk/"),
            &[
                ("csrf_token", token.as_str()),
                ("action", "activate"),
                ("back", "https://evil.example/"),
                ("ids", &ids[0]),
            ],
        )
        .await;
    assert!(res.location().starts_with("/admin/users/?"));
    assert!(user(&app, one.id).expect("one").is_active);
    let res = staff
        .post_form(
            &app.url("/admin/users/bulk/"),
            &[("csrf_token", token.as_str()), ("action", "drop")],
        )
        .await;
    assert_eq!(res.status, 400);
}

#[actix_web::test]
async fn staff_create_members_and_only_superusers_create_staff() {
    let app = TestApp::spawn().await;
    let (staff, staff_user) = signed_in_with(&app, "직원", "staff@example.com", true, false).await;
    let (root, _) = signed_in_with(&app, "대표", "root@example.com", true, true).await;
    let form_page = staff.get(&app.url("/admin/users/new/")).await;
    assert_eq!(form_page.status, 200);
    assert!(!form_page.body.contains("value=\"superuser\""));
    let token = form_page.input_value("csrf_token").expect("token");
    let res = staff
        .post_form(
            &app.url("/admin/users/new/"),
            &[
                ("csrf_token", &token),
                ("email", "New@Example.com"),
                ("name", "새 회원"),
                ("age", "20"),
                ("role", "member"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    let created = app
        .users()
        .into_iter()
        .find(|u| u.email == "new@example.com")
        .expect("created");
    assert_eq!(created.provider, "local");
    assert!(!created.is_staff);
    assert_eq!(
        res.location(),
        format!("/admin/users/{}/?saved=1", created.id)
    );
    let row = audit_rows(&app).pop().expect("audit row");
    assert_eq!(
        (row.action.as_str(), row.actor_id, row.target_id),
        ("create", Some(staff_user.id), Some(created.id))
    );

    let res = staff
        .post_form(
            &app.url("/admin/users/new/"),
            &[
                ("csrf_token", &token),
                ("email", "s@example.com"),
                ("role", "staff"),
            ],
        )
        .await;
    assert_eq!(res.status, 403);
    let res = staff
        .post_form(
            &app.url("/admin/users/new/"),
            &[
                ("csrf_token", &token),
                ("email", "new@example.com"),
                ("role", "member"),
            ],
        )
        .await;
    assert_eq!(res.status, 422);
    assert!(res.body.contains("data-error-for=\"email\""));
    let res = staff
        .post_form(
            &app.url("/admin/users/new/"),
            &[
                ("csrf_token", &token),
                ("email", "not an email"),
                ("role", "member"),
            ],
        )
        .await;
    assert_eq!(res.status, 422);

    let root_token = csrf(&app, &root, "/admin/users/new/").await;
    let res = root
        .post_form(
            &app.url("/admin/users/new/"),
            &[
                ("csrf_token", &root_token),
                ("email", "boss2@example.com"),
                ("role", "superuser"),
            ],
        )
        .await;
    assert_eq!(res.status, 303);
    let boss = app
        .users()
        .into_iter()
        .find(|u| u.email == "boss2@example.com")
        .expect("boss");
    assert!(boss.is_staff && boss.is_superuser);
}

#[actix_web::test]
async fn the_dashboard_counts_users_and_draws_sign_ups_without_script() {
    let app = TestApp::spawn().await;
    let (staff, _) = signed_in_with(&app, "직원", "staff@example.com", true, false).await;
    create(&app, "a@example.com", "a");
    let old = create(&app, "old@example.com", "old");
    {
        let mut conn = app.conn();
        diesel::update(users::table.find(old.id))
            .set((
                users::date_joined.eq(kakao_login::db::now() - chrono::TimeDelta::days(20)),
                users::is_active.eq(false),
            ))
            .execute(&mut *conn as &mut DbConnection)
            .expect("age a user");
    }
    let page = staff.get(&app.url("/admin/")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    for (key, n) in [
        ("all", 3),
        ("active", 2),
        ("staff", 1),
        ("new_24h", 2),
        ("new_7d", 2),
        ("new_30d", 3),
        ("signins_24h", 1),
    ] {
        assert!(
            page.body.contains(&format!("data-count=\"{key}\">{n}<")),
            "{key}={n}"
        );
    }
    assert!(page.body.contains("<svg") && page.body.contains("role=\"img\""));
    let today = (chrono::Utc::now() + chrono::TimeDelta::hours(9))
        .format("%Y-%m-%d")
        .to_string();
    assert!(page.body.contains(&format!("<title>{today}: 2명</title>")));
    assert!(page.body.contains(&format!("<td>{today}</td><td>2</td>")));
    assert_eq!(page.body.matches("<svg").count(), 2);
    assert!(!page.body.contains("<script") && !page.body.contains("style="));
}

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
    let token = csrf(app, browser, "/admin/login/").await;
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
    let (_, staff_user) = signed_in_with(&app, "직원", "staff@example.com", true, false).await;
    create(&app, "member@example.com", "회원");
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
    let row = audit_rows(&app).pop().expect("audit row");
    assert_eq!(
        (row.action.as_str(), row.actor_id, row.target_id),
        ("set_password", None, Some(staff_user.id))
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
    let token = csrf(&app, &browser, "/kakao/logout/").await;
    browser
        .post_form(&app.url("/kakao/logout/"), &[("csrf_token", &token)])
        .await;
    assert_eq!(browser.get(&app.url("/admin/")).await.status, 303);

    // A deactivated staff member cannot use it.
    {
        let mut conn = app.conn();
        diesel::update(users::table.find(staff_user.id))
            .set(users::is_active.eq(false))
            .execute(&mut *conn as &mut DbConnection)
            .expect("deactivate");
    }
    let inactive = try_password(
        &app,
        &app.browser(),
        "staff@example.com",
        "correct horse battery",
    )
    .await;
    assert_eq!(inactive.status, 401);

    // Per account: five failures, then 429 with Retry-After, even with the right password.
    let guesser = app.browser();
    // The success above cleared this account's count; the inactive attempt was one failure.
    for _ in 0..4 {
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
