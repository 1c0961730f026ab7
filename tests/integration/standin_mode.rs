//! `cargo run` with no Kakao keys: the built-in stand-in plays Kakao on the same server, and a
//! person can click through the whole flow, consent page included.

use std::net::TcpListener;

use kakao_login::{Application, Settings};

use crate::support::{Browser, Resp};

/// Decode the few entities askama writes into attribute values.
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let Some(end) = tail.find(';') else {
            out.push_str(tail);
            return out;
        };
        let entity = &tail[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => out.push(c),
            None => out.push_str(&tail[..=end]),
        }
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Every hidden input of a page, decoded.
fn hidden_inputs(page: &Resp) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    let mut rest = page.body.as_str();
    while let Some(at) = rest.find("<input type=\"hidden\" name=\"") {
        rest = &rest[at + "<input type=\"hidden\" name=\"".len()..];
        let name_end = rest.find('"').expect("name ends");
        let name = unescape(&rest[..name_end]);
        let value_at = rest.find("value=\"").expect("value") + "value=\"".len();
        let value_end = rest[value_at..].find('"').expect("value ends");
        fields.push((name, unescape(&rest[value_at..value_at + value_end])));
        rest = &rest[value_at + value_end..];
    }
    fields
}

async fn spawn_standin_app() -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let db = format!("sqlite://{}/dev.db", dir.path().display());
    let data = dir.path().display().to_string();
    let settings = Settings::development_with(&[
        ("public_url", &base),
        ("database_url", &db),
        ("data_dir", &data),
        ("workers", "2"),
    ])
    .expect("settings");
    assert!(settings.uses_standin());
    let app = Application::build_with_listener(settings, listener)
        .await
        .expect("builds");
    actix_web::rt::spawn(app.run());
    (base, dir)
}

#[actix_web::test]
async fn without_kakao_keys_the_whole_flow_runs_through_the_built_in_stand_in() {
    let (base, dir) = spawn_standin_app().await;
    let browser = Browser::new();

    let home = browser.get(&format!("{base}/")).await;
    assert_eq!(home.status, 200);
    assert!(
        home.body.contains("data-standin=\"1\""),
        "the banner says the stand-in is in use"
    );

    let start = browser.get(&format!("{base}/kakao/login/")).await;
    assert_eq!(start.status, 302);
    let authorize = start.location();
    assert!(
        authorize.starts_with(&format!("{base}/_kakao/oauth/authorize?")),
        "{authorize}"
    );

    let consent = browser.get(&authorize).await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    assert!(consent.body.contains("동의하고 계속하기"));
    let mut form = hidden_inputs(&consent);
    assert!(form.iter().any(|(k, _)| k == "state"), "{form:?}");
    for (k, v) in [
        ("account", "new"),
        ("new_nickname", "새사람"),
        ("new_email", "newcomer@example.com"),
        ("new_email_verified", "on"),
        ("new_email_valid", "on"),
        ("share_email", "on"),
        ("action", "agree"),
    ] {
        form.push((k.to_owned(), v.to_owned()));
    }
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let back = browser
        .post_form(&format!("{base}/_kakao/oauth/consent"), &pairs)
        .await;
    assert_eq!(back.status, 302, "{}", back.body);
    let callback = back.location();
    assert!(
        callback.starts_with(&format!("{base}/kakao/login/callback/?")),
        "{callback}"
    );

    let done = browser.get(&callback).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location(), "/profile/");
    let profile = browser.get(&format!("{base}/profile/")).await;
    assert_eq!(profile.status, 200);
    assert!(profile.body.contains("newcomer@example.com"));
    assert!(profile.body.contains("새사람"));

    // The generated development session key is kept private.
    let key = dir.path().join("session.key");
    let mode = std::fs::metadata(&key).expect("key file").permissions();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.mode() & 0o777, 0o600);
    }
    let _ = mode;
}

#[actix_web::test]
async fn cancelling_on_the_stand_in_consent_page_shows_the_cancelled_page() {
    let (base, _dir) = spawn_standin_app().await;
    let browser = Browser::new();
    let authorize = browser
        .get(&format!("{base}/kakao/login/"))
        .await
        .location();
    let consent = browser.get(&authorize).await;
    let mut form = hidden_inputs(&consent);
    form.push(("action".into(), "cancel".into()));
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let back = browser
        .post_form(&format!("{base}/_kakao/oauth/consent"), &pairs)
        .await;
    assert_eq!(back.status, 302);
    let done = browser.get(&back.location()).await;
    assert_eq!(done.status, 200);
    assert_eq!(done.error_code().as_deref(), Some("cancelled"));
}

/// A reverse proxy on the same host (a loopback peer, a loopback PUBLIC_URL) must not publish
/// the stand-in, which signs anyone in as anyone: proxied requests and foreign hosts get 403.
#[actix_web::test]
async fn the_stand_in_refuses_requests_that_came_through_a_proxy() {
    let (base, _dir) = spawn_standin_app().await;
    let browser = Browser::new();
    let authorize = browser
        .get(&format!("{base}/kakao/login/"))
        .await
        .location();
    let client = awc::Client::new();
    let status_with = |name: &'static str, value: &'static str| {
        let request = client.get(&authorize).insert_header((name, value)).send();
        async move {
            let mut res = request.await.expect("stand-in answers");
            let body = res.body().await.expect("body");
            (
                res.status().as_u16(),
                String::from_utf8_lossy(&body).into_owned(),
            )
        }
    };
    for (name, value) in [
        ("X-Forwarded-For", "203.0.113.7"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "login.example.com"),
        ("Forwarded", "for=203.0.113.7;proto=https"),
        ("X-Real-IP", "203.0.113.7"),
        ("Host", "login.example.com"),
    ] {
        let (status, body) = status_with(name, value).await;
        assert_eq!(status, 403, "{name}: {value} -> {body}");
        assert!(body.contains("only answers this machine"), "{body}");
    }
    // Straight from this machine it still works (and so does "localhost").
    let (status, body) = status_with("User-Agent", "test").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = status_with("Host", "localhost").await;
    assert_eq!(status, 200, "{body}");
}
