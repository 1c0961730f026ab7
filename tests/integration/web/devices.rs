//! Each person's signed-in devices: `/profile/sessions/` and the list on the admin's user
//! detail.

use crate::support::{Role, TestApp};

const PHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

/// The device ids listed on a page, in order.
fn device_ids(body: &str) -> Vec<String> {
    body.split("data-device=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

#[actix_web::test]
async fn a_person_sees_their_devices_and_signs_out_the_other_one() {
    let app = TestApp::spawn().await;
    let (laptop, kakao_id) = app.signed_in("기기", "devices@example.com").await;
    let user = app.user_by_email("devices@example.com").expect("user");
    let phone = app.browser();
    let start = phone
        .get_with(&app.url("/kakao/login/"), &[("user-agent", PHONE)])
        .await;
    let back = app
        .authorize_with(
            &phone,
            &start.location(),
            kakao_login::standin::Consent::Agree {
                kakao_id,
                share_email: true,
            },
        )
        .await;
    let done = phone.get_with(&back, &[("user-agent", PHONE)]).await;
    assert_eq!(done.status, 303, "{}", done.body);

    let page = laptop.get(&app.url("/profile/sessions/")).await;
    assert_eq!(page.status, 200);
    let ids = device_ids(&page.body);
    assert_eq!(ids.len(), 2, "{}", page.body);
    assert_eq!(page.body.matches("data-this-device=\"1\"").count(), 1);
    assert!(
        page.body.contains("iPhone"),
        "the phone is named: {}",
        page.body
    );
    let phone_id = ids
        .iter()
        .find(|id| {
            let at = page
                .body
                .find(&format!("data-device=\"{id}\""))
                .unwrap_or(0);
            !page.body[at..at + 120].contains("data-this-device")
        })
        .expect("the other device")
        .clone();

    // CSRF is required.
    let refused = laptop
        .post_form(
            &app.url("/profile/sessions/"),
            &[("csrf_token", "wrong"), ("device", &phone_id)],
        )
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(phone.get(&app.url("/api/users/me/")).await.status, 200);

    let mark = app.audit_mark();
    let token = page.input_value("csrf_token").expect("csrf");
    let out = laptop
        .post_form(
            &app.url("/profile/sessions/"),
            &[("csrf_token", &token), ("device", &phone_id)],
        )
        .await;
    assert_eq!(out.status, 303);
    assert_eq!(out.location(), "/profile/sessions/?ended=1");
    assert_eq!(phone.get(&app.url("/api/users/me/")).await.status, 401);
    assert_eq!(laptop.get(&app.url("/api/users/me/")).await.status, 200);
    let rows = app.audit_since(mark);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (
            rows[0].action.as_str(),
            rows[0].actor_id,
            rows[0].via.as_str()
        ),
        ("end_session", Some(user.id), "profile")
    );

    // "All other devices" from the laptop: the laptop stays signed in.
    let again = app.browser();
    app.login_agreeing(&again, kakao_id, None).await;
    let out = laptop
        .post_form(
            &app.url("/profile/sessions/"),
            &[("csrf_token", &token), ("others", "1")],
        )
        .await;
    assert_eq!(out.location(), "/profile/sessions/?ended=1");
    assert_eq!(again.get(&app.url("/api/users/me/")).await.status, 401);
    assert_eq!(laptop.get(&app.url("/api/users/me/")).await.status, 200);
    // Someone else's device id ends nothing.
    let (other, _) = app.signed_in("남", "other@example.com").await;
    let other_page = other.get(&app.url("/profile/sessions/")).await;
    let other_id = device_ids(&other_page.body).remove(0);
    let out = laptop
        .post_form(
            &app.url("/profile/sessions/"),
            &[("csrf_token", &token), ("device", &other_id)],
        )
        .await;
    assert_eq!(out.location(), "/profile/sessions/?ended=0");
    assert_eq!(other.get(&app.url("/api/users/me/")).await.status, 200);
}

#[actix_web::test]
async fn staff_see_a_users_devices_and_end_one() {
    let app = TestApp::spawn().await;
    let (member, _) = app.signed_in("회원", "member@example.com").await;
    let user = app.user_by_email("member@example.com").expect("user");
    let (staff, staff_user) = app.signed_in_as(Role::Staff, "staff@example.com").await;
    let page = staff
        .get(&app.url(&format!("/admin/users/{}/", user.id)))
        .await;
    let ids = device_ids(&page.body);
    assert_eq!(ids.len(), 1, "{}", page.body);
    let token = page.input_value("csrf_token").expect("csrf");
    let mark = app.audit_mark();
    let out = staff
        .post_form(
            &app.url(&format!("/admin/users/{}/sessions/", user.id)),
            &[("csrf_token", &token), ("device", &ids[0])],
        )
        .await;
    assert_eq!(out.status, 303, "{}", out.body);
    assert_eq!(member.get(&app.url("/api/users/me/")).await.status, 401);
    let rows = app.audit_since(mark);
    assert_eq!(
        rows.iter()
            .map(|r| (r.action.as_str(), r.actor_id, r.target_id))
            .collect::<Vec<_>>(),
        [("end_session", Some(staff_user.id), Some(user.id))]
    );
    // A member cannot end another's device through the admin.
    let (other, _) = app.signed_in_as(Role::Member, "nosy@example.com").await;
    let token = app.csrf(&other, "/profile/").await;
    let refused = other
        .post_form(
            &app.url(&format!("/admin/users/{}/sessions/", staff_user.id)),
            &[("csrf_token", &token), ("device", &ids[0])],
        )
        .await;
    assert_eq!(refused.status, 403);
}

/// A page that only reads still notes when a session was last seen: the note is a write,
/// which the page's read-only first attempt (SQLite) cannot make, so the page is read again
/// through the pool.
#[actix_web::test]
async fn a_page_that_only_reads_still_notes_when_the_session_was_last_seen() {
    use diesel::prelude::*;
    use kakao_login::db::schema::user_sessions;
    let app = TestApp::spawn().await;
    let (browser, _) = app.signed_in("본지오래", "seen@example.com").await;
    let long_ago = kakao_login::db::now() - chrono::TimeDelta::hours(1);
    diesel::update(user_sessions::table)
        .set(user_sessions::last_seen_at.eq(Some(long_ago)))
        .execute(&mut **app.conn())
        .expect("backdate");
    let page = browser.get(&app.url("/profile/")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let seen: Vec<Option<chrono::NaiveDateTime>> = user_sessions::table
        .select(user_sessions::last_seen_at)
        .load(&mut **app.conn())
        .expect("sessions");
    assert_eq!(seen.len(), 1);
    assert!(
        seen[0].is_some_and(|at| at > long_ago + chrono::TimeDelta::minutes(30)),
        "{seen:?}"
    );
}
