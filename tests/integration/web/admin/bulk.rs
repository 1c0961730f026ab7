//! Bulk actions on the selected users.

use crate::support::{Role, TestApp};

#[actix_web::test]
async fn bulk_actions_apply_to_the_selected_users_and_skip_the_refused() {
    let app = TestApp::spawn().await;
    let (staff, _) = app.signed_in_as(Role::Staff, "staff@example.com").await;
    let (_, root) = app.signed_in_as(Role::Superuser, "root@example.com").await;
    let (_, colleague) = app.signed_in_as(Role::Staff, "colleague@example.com").await;
    let one = app.create_user("one@example.com", "하나");
    let two = app.create_user("two@example.com", "둘");
    let three = app.create_user("three@example.com", "셋");
    let token = app.csrf(&staff, "/admin/users/").await;
    let back = "/admin/users/?q=example&ordering=email";
    let ids = [one.id, two.id, root.id, colleague.id].map(|i| i.to_string());
    let mark = app.audit_mark();
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
                ("ids", &ids[3]),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(res.location(), format!("{back}&bulk_ok=2&bulk_failed=2"));
    assert!(!app.user(one.id).expect("one").is_active);
    assert!(!app.user(two.id).expect("two").is_active);
    assert!(app.user(three.id).expect("three").is_active);
    assert!(
        app.user(root.id).expect("root").is_active,
        "staff cannot touch a superuser"
    );
    assert!(
        app.user(colleague.id).expect("colleague").is_active,
        "nor another staff member"
    );
    let rows = app.audit_since(mark);
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
    assert!(app.user(one.id).expect("one").is_active);
    let res = staff
        .post_form(
            &app.url("/admin/users/bulk/"),
            &[("csrf_token", token.as_str()), ("action", "drop")],
        )
        .await;
    assert_eq!(res.status, 400);
}
