//! The CSV export of the filtered list.

use crate::support::{Role, TestApp};

#[actix_web::test]
async fn the_csv_export_streams_the_filtered_list() {
    let app = TestApp::spawn().await;
    let (staff, _) = app.signed_in_as(Role::Staff, "staff@example.com").await;
    let a = app.create_user("a@example.com", "Kim, \"the\" first");
    let b = app.create_user("b@example.com", "=HYPERLINK(\"x\")");
    app.create_user("c@example.com", "Lee");
    for i in 0..250 {
        app.create_user(&format!("bulk{i:03}@example.org"), "벌크");
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
    let c = app.user_by_email("c@example.com").expect("c");
    assert!(lines[3].starts_with(&format!("{},c@example.com,Lee,", c.id)));
    assert!(lines[4].contains("staff@example.com"));
    // More than one page of the underlying query.
    let all = staff.get(&app.url("/admin/users.csv?q=example.org")).await;
    assert_eq!(
        all.body.split("\r\n").filter(|l| !l.is_empty()).count(),
        251
    );
    assert!(all.body.contains("벌크"));
}
