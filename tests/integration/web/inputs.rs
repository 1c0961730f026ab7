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
        ("/kakao/login/".into(), "login_hint"),
        ("/kakao/login/".into(), "prompt"),
        ("/kakao/logout/callback/".into(), "state"),
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

/// Raw query strings, sent as they are: bad escapes, overlong and invalid UTF-8.
const RAW_QUERIES: [&str; 8] = [
    "q=%FF",
    "search=%C0%80",
    "cursor=%00",
    "q=%ZZ",
    "q=%",
    "ordering=%E2%80%AE",
    "limit=%2",
    "%FF=%FE",
];

fn value(dice: &mut Dice) -> String {
    match dice.next() % 12 {
        0 => "x".repeat((dice.next() % 3000) as usize),
        10 => (*dice.pick(&CONTROLS)).to_owned(),
        11 => format!("{}{}", dice.pick(&NASTY), dice.pick(&CONTROLS)),
        1 => {
            let a = dice.pick(&NASTY);
            let b = dice.pick(&NASTY);
            format!("{a}{b}")
        }
        _ => (*dice.pick(&NASTY)).to_owned(),
    }
}

const PARAMS: [&str; 24] = [
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
    "prompt",
    "login_hint",
];

const FIELDS: [&str; 17] = [
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
    "id_token",
    "nonce",
    "kakao_account",
];

/// Every route, as (method, path); `{id}` is filled in with an existing or a missing id. A
/// signed-in identity is not sent the routes that would end its own session (it would spend
/// the rest of the run as an anonymous caller).
fn routes(id: i64, signed_in: bool) -> Vec<(&'static str, String)> {
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
        ("GET", "/kakao/logout/callback/".into()),
        ("GET", "/profile/leave/".into()),
        ("POST", "/profile/leave/".into()),
        ("GET", "/goodbye/".into()),
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
        ("GET", "/static/app.css".into()),
        ("GET", "/static/../Cargo.toml".into()),
        ("GET", "/admin/users/%FF/".into()),
        ("GET", "/admin/users/%00/".into()),
    ];
    if signed_in {
        routes.retain(|(method, path)| {
            !matches!(
                (*method, path.as_str()),
                ("GET" | "POST", "/kakao/logout/")
                    | ("DELETE", "/api/users/me/")
                    | ("POST", "/profile/leave/")
            )
        });
    }
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

/// Header values a client may send (visible ASCII only: anything else is not a header value).
fn header_value(dice: &mut Dice) -> String {
    let v = value(dice);
    if v.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        v
    } else {
        "x".into()
    }
}

const HEADERS: [&str; 7] = [
    "accept",
    "accept-language",
    "referer",
    "origin",
    "x-forwarded-for",
    "if-none-match",
    "range",
];

/// One identity the fuzz run sends as.
struct Identity<'a> {
    name: &'static str,
    browser: &'a Browser,
    csrf: &'a str,
    signed_in: bool,
}

async fn fuzz_once(app: &TestApp, who: &Identity<'_>, dice: &mut Dice, id: i64) -> (String, Resp) {
    let all = routes(id, who.signed_in);
    let (method, path) = dice.pick(&all).clone();
    let (browser, csrf) = (who.browser, who.csrf);
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for _ in 0..(dice.next() % 4) {
        let param = *dice.pick(&PARAMS);
        query.append_pair(param, &value(dice));
    }
    let mut query = query.finish();
    if dice.next().is_multiple_of(5) {
        query = format!("{query}&{}", dice.pick(&RAW_QUERIES));
    }
    let url = format!("{}?{query}", app.url(&path));
    let extra_header =
        (dice.next().is_multiple_of(3)).then(|| (*dice.pick(&HEADERS), header_value(dice)));
    let mut pairs: Vec<(String, String)> = (0..(dice.next() % 6))
        .map(|_| ((*dice.pick(&FIELDS)).to_owned(), value(dice)))
        .collect();
    if dice.next().is_multiple_of(2) {
        // A valid token most of the time, to get past the CSRF check to the handler.
        pairs.push(("csrf_token".into(), csrf.to_owned()));
    }
    let described = format!("{method} {url} {pairs:?} {extra_header:?}");
    let mut headers: Vec<(&str, &str)> =
        extra_header.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let who = browser;
    let res = match (method, dice.next() % 4) {
        ("GET", _) => who.get_with(&url, &headers).await,
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
            headers.extend([("content-type", "application/json"), ("x-csrf-token", csrf)]);
            let body = serde_json::Value::Object(body).to_string();
            who.request_bytes(method, &url, body.into_bytes(), &headers)
                .await
        }
        (_, 1) => {
            let form: Vec<(&str, &str)> = pairs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            headers.push(("x-csrf-token", csrf));
            who.post_form_with(&url, &form, &headers).await
        }
        (_, 2) => {
            // Random bytes, as a form or as JSON: invalid UTF-8 and all.
            let body: Vec<u8> = (0..dice.next() % 200).map(|_| dice.next() as u8).collect();
            let kind = if dice.next().is_multiple_of(2) {
                "application/x-www-form-urlencoded"
            } else {
                "application/json"
            };
            headers.extend([("content-type", kind), ("x-csrf-token", csrf)]);
            who.request_bytes(method, &url, body, &headers).await
        }
        _ => {
            headers.push(("content-type", "text/plain"));
            who.request_bytes(method, &url, value(dice).into_bytes(), &headers)
                .await
        }
    };
    (described, res)
}

/// Random requests at every route for a bounded time, four at a time, as a superuser, as a
/// member and anonymously: whatever comes in, the answer is never a 5xx. The signed-in
/// identities stay signed in (their own sessions are not ended, the routes that change users
/// aim at others), which the run checks: each gets its share of 2xx answers and is still
/// signed in at the end.
#[actix_web::test]
async fn a_fuzz_run_over_every_route_gets_no_5xx() {
    let app = TestApp::spawn().await;
    let root = client(&app, Role::Superuser, "root@example.com").await;
    let member = client(&app, Role::Member, "member@example.com").await;
    let victims: Vec<i64> = (0..20)
        .map(|i| app.create_user(&format!("user{i}@example.com"), "사람").id)
        .collect();
    let anon = Browser::new();
    let anon_csrf = anon.get(&app.url("/api/auth/csrf/")).await.json()["csrf_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let who = [
        Identity {
            name: "superuser",
            browser: &root.browser,
            csrf: &root.csrf,
            signed_in: true,
        },
        Identity {
            name: "member",
            browser: &member.browser,
            csrf: &member.csrf,
            signed_in: true,
        },
        Identity {
            name: "anonymous",
            browser: &anon,
            csrf: &anon_csrf,
            signed_in: false,
        },
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
    let started = Instant::now();
    let lane = |n: u64| {
        let (app, who, victims) = (&app, &who, &victims);
        async move {
            let mut dice = Dice((seed ^ n.wrapping_mul(0x2545_F491_4F6C_DD1D)).max(1));
            // Per identity: requests sent, 2xx answers.
            let mut counts = [(0u32, 0u32); 3];
            while started.elapsed() < Duration::from_secs(secs) {
                let i = (dice.next() % 3) as usize;
                let target = *dice.pick(victims);
                let (described, res) = fuzz_once(app, &who[i], &mut dice, target).await;
                assert!(
                    res.status < 500,
                    "{} as {} for {described}: {}",
                    res.status,
                    who[i].name,
                    res.body
                );
                counts[i].0 += 1;
                counts[i].1 += u32::from((200..300).contains(&res.status));
            }
            counts
        }
    };
    let lanes = futures_util::future::join_all((0..4).map(lane)).await;
    let mut totals = [(0u32, 0u32); 3];
    for counts in lanes {
        for (total, lane) in totals.iter_mut().zip(counts) {
            total.0 += lane.0;
            total.1 += lane.1;
        }
    }
    let sent: u32 = totals.iter().map(|t| t.0).sum();
    assert!(sent > 400, "only {sent} requests were sent");
    log::info!(
        "fuzz: {sent} requests in {secs} s, seed {seed}, (sent, 2xx) per identity {totals:?}"
    );
    eprintln!(
        "fuzz: {sent} requests in {secs} s, seed {seed}, (sent, 2xx) per identity {totals:?}"
    );
    // Most random requests are refused (4xx); a member is forbidden most routes. What matters
    // is that each identity keeps reaching handlers, which a lost session would stop.
    for (identity, (requests, ok)) in who.iter().zip(totals) {
        assert!(
            ok * 20 >= requests,
            "{}: only {ok} of {requests} requests got a 2xx",
            identity.name
        );
    }
    for identity in &who[..2] {
        let me = identity.browser.get(&app.url("/api/users/me/")).await;
        assert_eq!(me.status, 200, "{} is still signed in", identity.name);
    }
}
