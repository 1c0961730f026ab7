//! A user's page and its edit form: who may change which field, field errors, escaping.

use crate::support::{Role, TestApp};

#[actix_web::test]
async fn staff_edit_members_but_only_superusers_change_flags_or_touch_superusers() {
    let app = TestApp::spawn().await;
    let (staff, _) = app.signed_in_as(Role::Staff, "staff@example.com").await;
    let (root, _) = app.signed_in_as(Role::Superuser, "root@example.com").await;
    let target = app.create_user("member@example.com", "회원");
    let token = app.csrf(&staff, "/admin/users/").await;
    let edit_url = app.url(&format!("/admin/users/{}/", target.id));
    let mark = app.audit_mark();
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
    let changed = app.user(target.id).expect("user");
    assert_eq!(changed.name.as_deref(), Some("새 이름"));
    assert_eq!(changed.age, Some(31));
    assert_eq!(changed.email, "new@example.com");
    let rows = app.audit_since(mark);
    assert_eq!(rows.len(), 1, "one edit, one row: {rows:?}");
    let row = &rows[0];
    assert_eq!((row.action.as_str(), row.via.as_str()), ("update", "admin"));
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
    let before = app.audit_rows().len();
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
    let root_user = app.user_by_email("root@example.com").expect("root");
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
    assert_eq!(app.audit_rows().len(), before);
    assert!(!app.user(target.id).expect("user").is_superuser);

    // A superuser promotes the member to staff.
    let root_token = app.csrf(&root, "/admin/users/").await;
    let mark = app.audit_mark();
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
    let promoted = app.user(target.id).expect("user");
    assert!(promoted.is_staff && !promoted.is_superuser);
    let rows = app.audit_since(mark);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].field_changes().len(), 1);
    assert_eq!(rows[0].field_changes()[0].field, "is_staff");
}

#[actix_web::test]
async fn names_and_emails_are_escaped_on_admin_pages() {
    let app = TestApp::spawn().await;
    let (staff, _) = app.signed_in_as(Role::Staff, "staff@example.com").await;
    let evil = app.create_user("evil@example.com", "<script>alert(1)</script>");
    let token = app.csrf(&staff, "/admin/users/").await;
    // Make an audit row carrying the name too.
    let saved = staff
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
    assert_eq!(
        saved.status, 303,
        "the hostile name is stored: {}",
        saved.body
    );
    assert_eq!(
        app.user(evil.id).and_then(|u| u.name).as_deref(),
        Some("\"><img src=x onerror=alert(1)>")
    );
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
