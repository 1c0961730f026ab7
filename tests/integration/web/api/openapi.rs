//! The OpenAPI document and the routes agree.

use crate::support::{Browser, TestApp};

#[actix_web::test]
async fn the_openapi_document_lists_every_routed_operation_and_nothing_else() {
    let app = TestApp::spawn().await;
    let doc = Browser::new().get(&app.url("/api/openapi.json")).await;
    assert_eq!(doc.status, 200);
    let doc = doc.json();
    assert!(doc["openapi"].as_str().expect("version").starts_with("3."));
    let paths = doc["paths"].as_object().expect("paths");
    let mut documented = Vec::new();
    for (path, ops) in paths {
        for method in ["get", "post", "put", "patch", "delete"] {
            let concrete = path.replace("{id}", "1");
            let r = Browser::new()
                .request(
                    &method.to_uppercase(),
                    &app.url(&concrete),
                    Some("{}"),
                    &[("content-type", "application/json")],
                )
                .await;
            // Unrouted operations fall through to the API's 404; routed ones answer otherwise
            // (401 for anonymous callers, mostly).
            let routed = !(r.status == 404 && r.json()["error"] == "not_found");
            let in_doc = ops.get(method).is_some();
            if in_doc {
                documented.push(format!("{method} {path}"));
            }
            assert_eq!(routed, in_doc, "{method} {path}: {} {}", r.status, r.body);
        }
    }
    documented.sort();
    assert_eq!(
        documented,
        [
            "delete /api/users/me/",
            "delete /api/users/{id}/",
            "get /api/auth/csrf/",
            "get /api/users/",
            "get /api/users/me/",
            "get /api/users/{id}/",
            "patch /api/users/me/",
            "patch /api/users/{id}/",
            "post /api/auth/kakao/",
            "post /api/users/",
            "put /api/users/{id}/",
        ]
    );
}
