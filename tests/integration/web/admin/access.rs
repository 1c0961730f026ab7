//! Who gets into the admin: anonymous visitors go to the login page, members get 403, and
//! no post without this session's token from this site changes anything.

use crate::support::{Role, TestApp};

#[actix_web::test]
async fn anonymous_people_go_to_the_login_page_and_members_get_403() {
    let app = TestApp::spawn().await;
    let (member, me) = app.signed_in_as(Role::Member, "member@example.com").await;
    let other = app.create_user("other@example.com", "남");
    let anon = app.browser();
    let id = other.id;
    let mark = app.audit_mark();
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
        assert_eq!(
            res.error_code().as_deref(),
            Some("permission_denied"),
            "{path}"
        );
    }
    // Actions, even with the member's own valid token, are refused and change nothing.
    let token = app.csrf(&member, "/profile/").await;
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
    assert_eq!(app.user(id), Some(other));
    assert_eq!(app.user(me.id).map(|u| u.is_active), Some(true));
    assert!(app.audit_since(mark).is_empty());
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
async fn admin_posts_without_this_sessions_token_or_from_another_site_are_refused() {
    let app = TestApp::spawn().await;
    let (staff, _) = app.signed_in_as(Role::Staff, "staff@example.com").await;
    let (other_staff, _) = app.signed_in_as(Role::Staff, "staff2@example.com").await;
    let target = app.create_user("member@example.com", "회원");
    let url = app.url(&format!("/admin/users/{}/deactivate/", target.id));
    let mark = app.audit_mark();
    let res = staff.post_form(&url, &[]).await;
    assert_eq!(res.status, 403);
    assert_eq!(res.error_code().as_deref(), Some("csrf_invalid"));
    let stolen = app.csrf(&other_staff, "/admin/users/").await;
    let res = staff.post_form(&url, &[("csrf_token", &stolen)]).await;
    assert_eq!(res.error_code().as_deref(), Some("csrf_invalid"));
    let token = app.csrf(&staff, "/admin/users/").await;
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
    assert_eq!(app.user(target.id), Some(target));
    assert!(app.audit_since(mark).is_empty());
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
