//! Hostile input on every door: control characters (NUL included) in every query parameter,
//! form field and JSON field answer 400 before any query; names and emails with look-alike or
//! invisible characters are refused with a field error; and a bounded fuzz run over every
//! route, signed in and not, never gets a 5xx.

use std::time::{Duration, Instant};

use serde_json::json;

use super::api::client;
use crate::support::{Browser, Resp, Role, TestApp};

const CONTROLS: [&str; 6] = ["\u{0}", "a\u{0}b", "\u{1}", "a\nb", "\u{7f}", "\u{85}"];

/// Query parameters of every page and list that takes text.
fn query_doors(id: i64) -> Vec<(String, &'static str)> {
    vec![
        ("/".into(), "next"),
        ("/kakao/login/".into(), "next"),
        ("/kakao/login/callback/".into(), "state"),
        ("/admin/login/".into(), "next"),
        ("/admin/users/".into(), "q"),
        ("/admin/users/".into(), "cursor"),
        ("/admin/users/".into(), "ordering"),
        ("/admin/users.csv".into(), "q"),
        ("/admin/audit/".into(), "actor"),
        (format!("/admin/users/{id}/"), "saved"),
        ("/api/users/".into(), "search"),
        ("/api/users/".into(), "cursor"),
        ("/api/users/".into(), "is_active"),
    ]
}

#[actix_web::test]
async fn control_characters_in_any_query_parameter_are_a_400() {
    let app = TestApp::spawn().await;
    let root = client(&app, Role::Superuser, "root@example.com").await;
    for (path, param) in query_doors(root.id) {
        for bad in CONTROLS {
            let q: String = url::form_urlencoded::Serializer::new(String::new())
                .append_pair(param, bad)
                .finish();
            let res = root.browser.get(&app.url(&format!("{path}?{q}"))).await;
            assert_eq!(res.status, 400, "{path}?{q}: {}", res.body);
            if path.starts_with("/api/") {
                assert_eq!(res.json()["error"], "control_character", "{path}");
            } else if !path.ends_with(".csv") {
                assert_eq!(res.error_code().as_deref(), Some("control_character"));
            }
        }
    }
}

#[actix_web::test]
async fn control_characters_in_any_form_or_json_field_are_a_400() {
    let app = TestApp::spawn().await;
    let root = client(&app, Role::Superuser, "root@example.com").await;
    let target = app.create_user("target@example.com", "대상");
    let token = app.csrf(&root.browser, "/admin/users/").await;
    let forms: Vec<(String, Vec<&str>)> = vec![
        ("/profile/".into(), vec!["name", "age"]),
        (
            format!("/admin/users/{}/", target.id),
            vec!["name", "age", "email"],
        ),
        (
            "/admin/users/new/".into(),
            vec!["email", "name", "age", "role"],
        ),
        ("/admin/users/bulk/".into(), vec!["action", "back"]),
    ];
    for (path, fields) in &forms {
        for field in fields {
            for bad in CONTROLS {
                let res = root
                    .browser
                    .post_form(&app.url(path), &[("csrf_token", &token), (field, bad)])
                    .await;
                assert_eq!(res.status, 400, "{path} {field}={bad:?}: {}", res.body);
            }
        }
    }
    // The break-glass form, signed out: refused before it counts against the limit.
    let anon = app.browser();
    let login_token = app.csrf(&anon, "/admin/login/").await;
    for field in ["email", "password", "next"] {
        let res = anon
            .post_form(
                &app.url("/admin/login/"),
                &[
                    ("csrf_token", login_token.as_str()),
                    ("email", "a@example.com"),
                    ("password", "long enough pw"),
                    (field, "a\u{0}b"),
                ],
            )
            .await;
        assert_eq!(res.status, 400, "{field}: {}", res.body);
    }
    let calls: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "POST",
            "/api/users/".into(),
            vec!["email", "name", "provider"],
        ),
        (
            "PATCH",
            format!("/api/users/{}/", target.id),
            vec!["email", "name"],
        ),
        ("PATCH", "/api/users/me/".into(), vec!["name"]),
    ];
    for (method, path, fields) in &calls {
        for field in fields {
            for bad in CONTROLS {
                let res = root.send(&app, method, path, json!({ *field: bad })).await;
                assert_eq!(res.status, 400, "{method} {path} {field}: {}", res.body);
                assert!(res.json()[*field].is_array(), "a field error: {}", res.body);
            }
        }
    }
    let mobile = Browser::new()
        .request(
            "POST",
            &app.url("/api/auth/kakao/"),
            Some(&json!({"access_token": "a\u{0}b"}).to_string()),
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(mobile.status, 400, "{}", mobile.body);
    assert_eq!(app.user(target.id), Some(target), "nothing changed");
}

#[actix_web::test]
async fn look_alike_and_invisible_characters_are_refused_with_a_field_error() {
    let app = TestApp::spawn().await;
    let root = client(&app, Role::Superuser, "root@example.com").await;
    let target = app.create_user("target@example.com", "대상");
    for email in [
        "a\u{FF20}example.com",
        "admin@ex\u{0430}mple.com",
        "admin\u{202E}@example.com",
        "ad\u{200B}min@example.com",
    ] {
        let res = root
            .send(
                &app,
                "PATCH",
                &format!("/api/users/{}/", target.id),
                json!({ "email": email }),
            )
            .await;
        assert_eq!(res.status, 400, "{email:?}: {}", res.body);
        assert!(res.json()["email"].is_array());
        let created = root
            .send(&app, "POST", "/api/users/", json!({ "email": email }))
            .await;
        assert_eq!(created.status, 400, "{email:?}");
    }
    for name in ["길동\u{202E}", "길\u{200B}동", "\u{2066}관리자\u{2069}"] {
        let res = root
            .send(&app, "PATCH", "/api/users/me/", json!({ "name": name }))
            .await;
        assert_eq!(res.status, 400, "{name:?}: {}", res.body);
        assert!(res.json()["name"].is_array());
        let token = app.csrf(&root.browser, "/profile/").await;
        let form = root
            .browser
            .post_form(
                &app.url("/profile/"),
                &[("csrf_token", &token), ("name", name), ("age", "")],
            )
            .await;
        assert_eq!(form.status, 422, "{name:?}");
        assert!(form.body.contains("data-error-for=\"name\""));
    }
    // Names are stored in NFC: the jamo of 한 are one character.
    let res = root
        .send(
            &app,
            "PATCH",
            "/api/users/me/",
            json!({ "name": "\u{1112}\u{1161}\u{11AB}" }),
        )
        .await;
    assert_eq!(res.json()["name"], "한");
    assert_eq!(app.user(target.id), Some(target));
}

/// A small deterministic generator (xorshift), so that a failing run can be repeated.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
}

const NASTY: [&str; 34] = [
    "",
    "0",
    "-1",
    "1",
    "99999999999999999999",
    "true",
    "false",
    "null",
    "[]",
    "{}",
    "'",
    "\"",
    "\\",
    "%",
    "_",
    "%25",
    "%ZZ",
    "<script>alert(1)</script>",
    "../../etc/passwd",
    "//evil.example",
    "javascript:alert(1)",
    "a@b.co",
    "kim",
    "-id",
    "email",
    "zz",
    "\u{202E}",
    "\u{FF20}",
    "🙂",
    "가나다",
    "x OR 1=1",
    "\" OR \"\"=\"",
    "NEAR(a b)",
    "ab*",
];

fn value(dice: &mut Dice) -> String {
    match dice.next() % 10 {
        0 => "x".repeat((dice.next() % 3000) as usize),
        1 => {
            let a = dice.pick(&NASTY);
            let b = dice.pick(&NASTY);
            format!("{a}{b}")
        }
        _ => (*dice.pick(&NASTY)).to_owned(),
    }
}

const PARAMS: [&str; 22] = [
    "q",
    "search",
    "cursor",
    "ordering",
    "limit",
    "provider",
    "is_active",
    "is_staff",
    "is_superuser",
    "next",
    "scope",
    "code",
    "state",
    "error",
    "saved",
    "actor",
    "target",
    "action",
    "before",
    "deleted",
    "unlink",
    "bulk_ok",
];

const FIELDS: [&str; 14] = [
    "csrf_token",
    "name",
    "age",
    "email",
    "is_active",
    "is_staff",
    "is_superuser",
    "role",
    "action",
    "back",
    "ids",
    "password",
    "provider",
    "access_token",
];

/// Every route, as (method, path); `{id}` is filled in with an existing or a missing id.
fn routes(id: i64) -> Vec<(&'static str, String)> {
    let ids = [id.to_string(), "999999".into(), "0".into(), "abc".into()];
    let mut routes = vec![
        ("GET", "/".to_owned()),
        ("GET", "/healthz".into()),
        ("GET", "/readyz".into()),
        ("GET", "/profile/".into()),
        ("POST", "/profile/".into()),
        ("GET", "/kakao/login/".into()),
        ("GET", "/kakao/login/callback/".into()),
        ("GET", "/kakao/logout/".into()),
        ("POST", "/kakao/logout/".into()),
        ("GET", "/admin/".into()),
        ("GET", "/admin/users/".into()),
        ("GET", "/admin/users.csv".into()),
        ("POST", "/admin/users/bulk/".into()),
        ("GET", "/admin/users/new/".into()),
        ("POST", "/admin/users/new/".into()),
        ("GET", "/admin/audit/".into()),
        ("GET", "/admin/login/".into()),
        ("POST", "/admin/login/".into()),
        ("GET", "/api/openapi.json".into()),
        ("GET", "/api/auth/csrf/".into()),
        ("POST", "/api/auth/kakao/".into()),
        ("GET", "/api/users/".into()),
        ("POST", "/api/users/".into()),
        ("GET", "/api/users/me/".into()),
        ("PATCH", "/api/users/me/".into()),
        ("DELETE", "/api/users/me/".into()),
        ("GET", "/no/such/page".into()),
    ];
    for id in ids {
        for (method, path) in [
            ("GET", format!("/admin/users/{id}/")),
            ("POST", format!("/admin/users/{id}/")),
            ("POST", format!("/admin/users/{id}/activate/")),
            ("POST", format!("/admin/users/{id}/deactivate/")),
            ("POST", format!("/admin/users/{id}/sign-out/")),
            ("GET", format!("/admin/users/{id}/delete/")),
            ("POST", format!("/admin/users/{id}/delete/")),
            ("GET", format!("/api/users/{id}/")),
            ("PATCH", format!("/api/users/{id}/")),
            ("PUT", format!("/api/users/{id}/")),
            ("DELETE", format!("/api/users/{id}/")),
        ] {
            routes.push((method, path));
        }
    }
    routes
}

async fn fuzz_once(
    app: &TestApp,
    who: &Browser,
    csrf: &str,
    dice: &mut Dice,
    id: i64,
) -> (String, Resp) {
    let all = routes(id);
    let (method, path) = dice.pick(&all).clone();
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for _ in 0..(dice.next() % 4) {
        let param = *dice.pick(&PARAMS);
        query.append_pair(param, &value(dice));
    }
    let url = format!("{}?{}", app.url(&path), query.finish());
    let mut pairs: Vec<(String, String)> = (0..(dice.next() % 6))
        .map(|_| ((*dice.pick(&FIELDS)).to_owned(), value(dice)))
        .collect();
    if dice.next().is_multiple_of(2) {
        // A valid token most of the time, to get past the CSRF check to the handler.
        pairs.push(("csrf_token".into(), csrf.to_owned()));
    }
    let described = format!("{method} {url} {pairs:?}");
    let res = match (method, dice.next() % 3) {
        ("GET", _) => who.get(&url).await,
        (_, 0) => {
            let body: serde_json::Map<String, serde_json::Value> = pairs
                .iter()
                .map(|(k, v)| {
                    let v = match dice.next() % 4 {
                        0 => json!(v.len()),
                        1 => json!(null),
                        2 => json!(v.len().is_multiple_of(2)),
                        _ => json!(v),
                    };
                    (k.clone(), v)
                })
                .collect();
            who.request(
                method,
                &url,
                Some(&serde_json::Value::Object(body).to_string()),
                &[("content-type", "application/json"), ("x-csrf-token", csrf)],
            )
            .await
        }
        (_, 1) => {
            let form: Vec<(&str, &str)> = pairs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            who.post_form_with(&url, &form, &[("x-csrf-token", csrf)])
                .await
        }
        _ => {
            who.request(
                method,
                &url,
                Some(&value(dice)),
                &[("content-type", "text/plain")],
            )
            .await
        }
    };
    (described, res)
}

/// Random requests at every route for a bounded time, as a superuser, as a member and
/// anonymously: whatever comes in, the answer is never a 5xx.
#[actix_web::test]
async fn a_fuzz_run_over_every_route_gets_no_5xx() {
    let app = TestApp::spawn().await;
    let root = client(&app, Role::Superuser, "root@example.com").await;
    let member = client(&app, Role::Member, "member@example.com").await;
    for i in 0..20 {
        app.create_user(&format!("user{i}@example.com"), "사람");
    }
    let anon = Browser::new();
    let anon_csrf = anon.get(&app.url("/api/auth/csrf/")).await.json()["csrf_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let who: [(&Browser, &str); 3] = [
        (&root.browser, &root.csrf),
        (&member.browser, &member.csrf),
        (&anon, &anon_csrf),
    ];
    // FUZZ_SEED and FUZZ_SECS make longer or other runs (README, "Tests").
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x9E37_79B9_7F4A_7C15_u64);
    let secs = std::env::var("FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let mut dice = Dice(seed.max(1));
    let started = Instant::now();
    let mut sent = 0;
    while started.elapsed() < Duration::from_secs(secs) {
        let (browser, csrf) = *dice.pick(&who);
        let (described, res) = fuzz_once(&app, browser, csrf, &mut dice, member.id).await;
        assert!(
            res.status < 500,
            "{} for {described}: {}",
            res.status,
            res.body
        );
        sent += 1;
    }
    assert!(sent > 200, "only {sent} requests were sent");
    log::info!("fuzz: {sent} requests in {secs} s, seed {seed}");
}
