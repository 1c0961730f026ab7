//! The dashboard's counts and charts.

use diesel::prelude::*;
use kakao_login::db::schema::users;

use crate::support::{Role, TestApp};

#[actix_web::test]
async fn the_dashboard_counts_users_and_draws_sign_ups_without_script() {
    let app = TestApp::spawn().await;
    let (staff, _) = app.signed_in_as(Role::Staff, "staff@example.com").await;
    app.create_user("a@example.com", "a");
    let old = app.create_user("old@example.com", "old");
    {
        let mut conn = app.conn();
        diesel::update(users::table.find(old.id))
            .set((
                users::date_joined.eq(kakao_login::db::now() - chrono::TimeDelta::days(20)),
                users::is_active.eq(false),
            ))
            .execute(&mut **conn)
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
