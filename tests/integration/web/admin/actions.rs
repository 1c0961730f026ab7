//! The action buttons: (de)activate, sign out everywhere, delete (with Kakao unlink), and the
//! last-superuser guard on each.

use kakao_login::standin::{Endpoint, Fault};

use crate::support::{Role, TestApp};

/// The `<tr>` of audit entry `id` on a page.
fn history_row(body: &str, id: i64) -> &str {
    let start = body
        .find(&format!("<tr data-audit-id=\"{id}\""))
        .unwrap_or_else(|| panic!("no audit row {id} on the page"));
    let end = body[start..]
        .find("</tr>")
        .map_or(body.len(), |e| start + e);
    &body[start..end]
}

#[actix_web::test]
async fn staff_deactivate_and_activate_a_member_with_audit_rows() {
    let app = TestApp::spawn().await;
    let (staff, staff_user) = app.signed_in_as(Role::Staff, "staff@example.com").await;
    let (member, target) = app.signed_in_as(Role::Member, "member@example.com").await;
    assert!(
        staff
            .get(&app.url("/profile/"))
            .await
            .body
            .contains("href=\"/admin/\"")
    );
    let token = app.csrf(&staff, "/admin/users/").await;
    let mark = app.audit_mark();
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
    assert_eq!(app.user(target.id).map(|u| u.is_active), Some(false));
    // Deactivation ends the member's sessions at once.
    assert_eq!(member.get(&app.url("/profile/")).await.status, 303);
    let rows = app.audit_since(mark);
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.actor_id, Some(staff_user.id));
    assert_eq!(row.actor_email, "staff@example.com");
    assert_eq!(row.target_id, Some(target.id));
    assert_eq!(row.action, "deactivate");
    assert_eq!(row.via, "admin");
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
    assert_eq!(app.user(target.id).map(|u| u.is_active), Some(true));
    let rows = app.audit_since(mark);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].action, "activate");

    // The user's page shows their history, each entry with its own action and door; the
    // audit page filters by target and action.
    let page = staff
        .get(&app.url(&format!("/admin/users/{}/", target.id)))
        .await;
    assert_eq!(page.status, 200);
    for (row, label) in [(&rows[0], "비활성화"), (&rows[1], "활성화")] {
        let shown = history_row(&page.body, row.id);
        assert!(
            shown.contains(&format!("<td data-label=\"작업\">{label}</td>")),
            "{shown}"
        );
        assert!(shown.contains("관리 화면"), "the door is shown: {shown}");
    }
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
async fn the_last_active_superuser_cannot_be_demoted_deactivated_or_deleted() {
    let app = TestApp::spawn().await;
    let (root, me) = app.signed_in_as(Role::Superuser, "root@example.com").await;
    let token = app.csrf(&root, "/admin/users/").await;
    let me_url = |s: &str| app.url(&format!("/admin/users/{}/{s}", me.id));
    let mark = app.audit_mark();
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
    let still = app.user(me.id).expect("root");
    assert!(still.is_active && still.is_superuser);
    assert!(
        app.audit_since(mark).is_empty(),
        "refused changes leave no audit row"
    );

    // With a second superuser, the first may step down.
    let (_, second) = app
        .signed_in_as(Role::Superuser, "second@example.com")
        .await;
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
    assert!(!app.user(me.id).expect("me").is_superuser);
    assert!(app.user(second.id).expect("second").is_superuser);
}

#[actix_web::test]
async fn superusers_delete_after_confirmation_and_the_kakao_link_is_cut() {
    let app = TestApp::spawn().await;
    let (staff, _) = app.signed_in_as(Role::Staff, "staff@example.com").await;
    let (root, root_user) = app.signed_in_as(Role::Superuser, "root@example.com").await;
    let (_, leaving) = app.signed_in_as(Role::Member, "leaving@example.com").await;
    let kakao_id = app.kakao_id(leaving.id).expect("kakao link");
    let confirm = app.url(&format!("/admin/users/{}/delete/", leaving.id));
    assert_eq!(staff.get(&confirm).await.status, 403);
    let staff_token = app.csrf(&staff, "/admin/users/").await;
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
    let mark = app.audit_mark();
    let res = root.post_form(&confirm, &[("csrf_token", &token)]).await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(
        res.location(),
        format!("/admin/users/?deleted={}&unlink=unlinked", leaving.id)
    );
    assert_eq!(app.user(leaving.id), None);
    assert_eq!(app.kakao.standin.unlinked(), vec![kakao_id]);
    let rows = app.audit_since(mark);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row.action, "delete");
    assert_eq!(row.actor_id, Some(root_user.id));
    assert_eq!(row.target_id, Some(leaving.id));
    assert_eq!(row.target_email, "leaving@example.com");
    assert_eq!(row.via, "admin");
    assert!(
        row.field_changes()
            .iter()
            .any(|c| c.field == "email" && c.old == "leaving@example.com" && c.new == "null"),
        "the deleted values are kept in the log"
    );

    // A failure at Kakao is shown, not hidden; the user is deleted here anyway.
    let (_, second) = app.signed_in_as(Role::Member, "second@example.com").await;
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
    assert_eq!(app.user(second.id), None);
    let list = root.get(&app.url(&res.location())).await;
    assert!(list.body.contains("data-unlink=\"failed\""));
}

#[actix_web::test]
async fn sign_out_everywhere_ends_every_session_of_the_user() {
    let app = TestApp::spawn().await;
    let (staff, _) = app.signed_in_as(Role::Staff, "staff@example.com").await;
    let (phone, kakao_id) = app.signed_in("회원", "member@example.com").await;
    let laptop = app.browser();
    let done = app.login_agreeing(&laptop, kakao_id, None).await;
    assert_eq!(done.status, 303);
    let member = app
        .users()
        .into_iter()
        .find(|u| u.email == "member@example.com")
        .expect("member");
    let token = app.csrf(&staff, "/admin/users/").await;
    let mark = app.audit_mark();
    let res = staff
        .post_form(
            &app.url(&format!("/admin/users/{}/sign-out/", member.id)),
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(res.status, 303);
    assert_eq!(phone.get(&app.url("/profile/")).await.status, 303);
    assert_eq!(laptop.get(&app.url("/profile/")).await.status, 303);
    assert_eq!(app.user(member.id).map(|u| u.is_active), Some(true));
    let rows = app.audit_since(mark);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].action, "sign_out_everywhere");
    let change = &rows[0].field_changes()[0];
    assert_eq!(
        (
            change.field.as_str(),
            change.old.as_str(),
            change.new.as_str()
        ),
        ("session_epoch", "0", "1")
    );
    // Signing in again works: only the sessions that were open ended.
    let again = app.login_agreeing(&phone, kakao_id, None).await;
    assert_eq!(again.status, 303);
    assert_eq!(phone.get(&app.url("/profile/")).await.status, 200);
    assert_eq!(laptop.get(&app.url("/profile/")).await.status, 303);
}
