//! The JSON API under /api/ (mirroring `src/web/api/`).

mod auth;
mod openapi;
mod users;

use crate::support::{Browser, Resp, Role, TestApp};

/// A signed-in API client: a cookie session plus its CSRF token.
pub struct Client {
    pub browser: Browser,
    pub csrf: String,
    pub id: i64,
    pub kakao_id: i64,
}

impl Client {
    /// `call` with a body.
    pub async fn send(
        &self,
        app: &TestApp,
        method: &str,
        path: &str,
        body: serde_json::Value,
    ) -> Resp {
        self.call(app, method, path, Some(body)).await
    }

    /// A JSON call with this session and its CSRF token.
    pub async fn call(
        &self,
        app: &TestApp,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Resp {
        let body = body.map(|b| b.to_string());
        self.browser
            .request(
                method,
                &app.url(path),
                body.as_deref(),
                &[
                    ("content-type", "application/json"),
                    ("x-csrf-token", &self.csrf),
                ],
            )
            .await
    }
}

/// A person of `role`, signed in, as an API client.
pub async fn client(app: &TestApp, role: Role, email: &str) -> Client {
    let (browser, user) = app.signed_in_as(role, email).await;
    let me = browser.get(&app.url("/api/users/me/")).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.json()["id"].as_i64(), Some(user.id));
    let kakao_id = app.kakao_id(user.id).expect("linked to Kakao");
    let id = user.id;
    let csrf = browser.get(&app.url("/api/auth/csrf/")).await.json()["csrf_token"]
        .as_str()
        .expect("csrf")
        .to_owned();
    Client {
        browser,
        csrf,
        id,
        kakao_id,
    }
}
