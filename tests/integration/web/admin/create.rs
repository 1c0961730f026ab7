//! Creating users from the admin.

use crate::support::{Role, TestApp};

#[actix_web::test]
async fn staff_create_members_and_only_superusers_create_staff() {
    let app = TestApp::spawn().await;
    let (staff, staff_user) = app.signed_in_as(Role::Staff, "staff@example.com").await;
    let (root, _) = app.signed_in_as(Role::Superuser, "root@example.com").await;
    let form_page = staff.get(&app.url("/admin/users/new/")).await;
    assert_eq!(form_page.status, 200);
    assert!(!form_page.body.contains("value=\"superuser\""));
    let token = form_page.input_value("csrf_token").expect("token");
    let mark = app.audit_mark();
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
    let rows = app.audit_since(mark);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(
        (
            row.action.as_str(),
            row.actor_id,
            row.target_id,
            row.via.as_str()
        ),
        ("create", Some(staff_user.id), Some(created.id), "admin")
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

    let root_token = app.csrf(&root, "/admin/users/new/").await;
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
