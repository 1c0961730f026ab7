//! The admin's user list: search, filters, sorting and keyset pages.

use crate::support::{Role, TestApp};

#[actix_web::test]
async fn the_admin_list_searches_filters_sorts_and_pages() {
    let app = TestApp::spawn().await;
    let (staff, _) = app.signed_in_as(Role::Staff, "staff@example.com").await;
    for i in 0..120 {
        let name = match i % 4 {
            0 => "Kim 50%",
            1 => "lee_a",
            2 => "박",
            _ => "KIMCHI",
        };
        app.create_user(&format!("user{i:03}@example.com"), name);
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
    let staff_only = staff.get(&app.url("/admin/users/?is_staff=1")).await;
    assert_eq!(ids_on(&staff_only.body).len(), 1);
    let kakao = staff.get(&app.url("/admin/users/?provider=kakao")).await;
    assert_eq!(ids_on(&kakao.body).len(), 1);
    // Bad input is a 400 page, never a 500.
    for bad in [
        "?ordering=password",
        "?cursor=nope",
        "?is_active=maybe",
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
