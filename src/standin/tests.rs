//! Tests for the Kakao stand-in: authorize validation, the consent form, token exchange, the kapi
//! endpoints, every fault kind, hit counting, auto-consent, OpenID Connect (JWKS, discovery, ID
//! tokens and their faults), prompt and the browser session, Kakao Account logout, consent items,
//! user ids and running it on a real socket.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix_web::App;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::{self, HeaderMap};
use actix_web::test as actix_test;
use actix_web::test::TestRequest;
use actix_web::web::{self, Bytes};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::{Consent, Endpoint, Fault, IdTokenFault, StandIn, StandInConfig, TestUser};

const CLIENT_ID: &str = "test-rest-api-key";
const SECRET: &str = "test-client-secret";
const ADMIN_KEY: &str = "test-admin-key";
const APP_ID: i64 = 1_234_567;
const REDIRECT: &str = "http://localhost:8080/auth/kakao/callback";
const REDIRECT_WITH_QUERY: &str = "http://localhost:8080/cb?from=kakao";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-stand-in";
const TWO_POW_53: i64 = 9_007_199_254_740_992;

fn config() -> StandInConfig {
    StandInConfig {
        client_id: CLIENT_ID.to_owned(),
        client_secret: Some(SECRET.to_owned()),
        app_id: APP_ID,
        admin_key: Some(ADMIN_KEY.to_owned()),
        redirect_uris: vec![REDIRECT.to_owned(), REDIRECT_WITH_QUERY.to_owned()],
    }
}

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn alice() -> TestUser {
    TestUser {
        nickname: Some("앨리스".to_owned()),
        email: Some("alice@example.com".to_owned()),
        email_verified: true,
        email_valid: true,
    }
}

fn bob() -> TestUser {
    TestUser {
        nickname: Some("Bob".to_owned()),
        email: Some("bob@example.com".to_owned()),
        email_verified: false,
        email_valid: true,
    }
}

/// A finished response, read into memory.
struct Reply {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    async fn read<B: MessageBody>(resp: ServiceResponse<B>) -> Self {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = actix_test::read_body(resp).await;
        Self {
            status,
            headers,
            body,
        }
    }

    fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).unwrap()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    fn header(&self, name: header::HeaderName) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    fn location(&self) -> String {
        assert_eq!(
            self.status,
            302,
            "expected a redirect, got: {}",
            self.text()
        );
        self.header(header::LOCATION).unwrap()
    }

    /// The query parameters of the redirect target.
    fn redirect_params(&self) -> HashMap<String, String> {
        let location = self.location();
        let url = url::Url::parse(&location).unwrap();
        url.query_pairs().into_owned().collect()
    }

    fn assert_kakao_json(&self) {
        assert_eq!(
            self.header(header::CONTENT_TYPE).as_deref(),
            Some("application/json;charset=UTF-8")
        );
    }
}

/// Undo HTML escaping (named entities askama might use and decimal `&#NN;` ones, which it does use).
fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest.find(';').unwrap();
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => char::from_u32(entity.trim_start_matches('#').parse().unwrap()).unwrap(),
        };
        out.push(decoded);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The hidden fields of the consent form, in page order.
fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find(r#"<input type="hidden" name=""#) {
        rest = &rest[start + r#"<input type="hidden" name=""#.len()..];
        let name_end = rest.find('"').unwrap();
        let name = rest[..name_end].to_owned();
        rest = &rest[name_end..];
        let value_start = rest.find(r#"value=""#).unwrap() + r#"value=""#.len();
        rest = &rest[value_start..];
        let value_end = rest.find('"').unwrap();
        fields.push((name, unescape(&rest[..value_end])));
        rest = &rest[value_end..];
    }
    fields
}

/// The in-process app plus the handle that steers it.
struct Harness<S, R> {
    app: S,
    to_request: fn(TestRequest) -> R,
    standin: StandIn,
    /// Where the stand-in is mounted ("" or e.g. "/_kakao").
    prefix: &'static str,
}

macro_rules! harness {
    ($standin:expr) => {
        harness!($standin, "")
    };
    ($standin:expr, $prefix:expr) => {{
        let standin: StandIn = $standin;
        let prefix: &'static str = $prefix;
        let mounted = standin.clone();
        let app = actix_test::init_service(
            App::new().service(web::scope(prefix).configure(move |c| mounted.configure(c))),
        )
        .await;
        Harness {
            app,
            to_request: TestRequest::to_request,
            standin,
            prefix,
        }
    }};
}

impl<S, R, B> Harness<S, R>
where
    S: Service<R, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    async fn send(&self, req: TestRequest) -> Reply {
        let resp = actix_test::call_service(&self.app, (self.to_request)(req)).await;
        Reply::read(resp).await
    }

    fn path(&self, path: &str) -> String {
        format!("{}{}", self.prefix, path)
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(TestRequest::get().uri(&self.path(path))).await
    }

    async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        self.send(TestRequest::post().uri(&self.path(path)).set_form(fields))
            .await
    }

    /// `GET /oauth/authorize` with exactly these parameters.
    async fn authorize_raw(&self, params: &[(&str, &str)]) -> Reply {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        self.get(&format!("/oauth/authorize?{query}")).await
    }

    /// `GET /oauth/authorize` with the valid basics plus `extra`.
    async fn authorize(&self, extra: &[(&str, &str)]) -> Reply {
        let mut params = vec![
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
        ];
        params.extend_from_slice(extra);
        self.authorize_raw(&params).await
    }

    /// Submit the consent page's form with its hidden fields plus `choices`, to the URL its
    /// relative `action="consent"` resolves to.
    async fn submit_consent(&self, page: &Reply, choices: &[(&str, &str)]) -> Reply {
        let html = page.text();
        assert!(html.contains(r#"action="consent""#), "{html}");
        let mut fields = hidden_fields(&html);
        fields.extend(
            choices
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        self.send(
            TestRequest::post()
                .uri(&self.path("/oauth/consent"))
                .set_form(&fields),
        )
        .await
    }

    /// Walk authorize + consent (with PKCE) as `kakao_id` and return the code.
    async fn code_for(&self, kakao_id: i64, share_email: bool, state: &str) -> String {
        let challenge = challenge(VERIFIER);
        let page = self
            .authorize(&[
                ("state", state),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ])
            .await;
        assert_eq!(page.status, 200, "{}", page.text());
        let id = kakao_id.to_string();
        let mut choices = vec![("account", id.as_str()), ("action", "agree")];
        if share_email {
            choices.push(("share_email", "on"));
        }
        let redirect = self.submit_consent(&page, &choices).await;
        let params = redirect.redirect_params();
        assert_eq!(params.get("state").map(String::as_str), Some(state));
        params["code"].clone()
    }

    async fn exchange(&self, code: &str, verifier: Option<&str>) -> Reply {
        let mut fields = vec![
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT_ID),
            ("client_secret", SECRET),
            ("redirect_uri", REDIRECT),
            ("code", code),
        ];
        if let Some(verifier) = verifier {
            fields.push(("code_verifier", verifier));
        }
        self.post_form("/oauth/token", &fields).await
    }

    /// Full browser flow to an access token.
    async fn login(&self, kakao_id: i64, share_email: bool) -> Value {
        let code = self.code_for(kakao_id, share_email, "s").await;
        let reply = self.exchange(&code, Some(VERIFIER)).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()
    }

    async fn with_bearer(&self, req: TestRequest, token: &str) -> Reply {
        self.send(req.insert_header((header::AUTHORIZATION, format!("Bearer {token}"))))
            .await
    }

    async fn user_me(&self, token: &str) -> Reply {
        self.with_bearer(TestRequest::get().uri(&self.path("/v2/user/me")), token)
            .await
    }

    async fn token_info(&self, token: &str) -> Reply {
        self.with_bearer(
            TestRequest::get().uri(&self.path("/v1/user/access_token_info")),
            token,
        )
        .await
    }

    async fn admin_post(&self, path: &str, key: &str, fields: &[(&str, &str)]) -> Reply {
        self.send(
            TestRequest::post()
                .uri(&self.path(path))
                .insert_header((header::AUTHORIZATION, format!("KakaoAK {key}")))
                .set_form(fields),
        )
        .await
    }
}

fn assert_page_error(reply: &Reply, koe: &str) {
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(reply.header(header::LOCATION).is_none());
    assert!(reply.text().contains(koe), "{}", reply.text());
    assert!(
        reply
            .header(header::CONTENT_SECURITY_POLICY)
            .unwrap()
            .starts_with("default-src 'none'")
    );
}

// ---------------------------------------------------------------- authorize validation

#[actix_web::test]
async fn authorize_with_an_unknown_client_id_shows_a_koe101_page_and_does_not_redirect() {
    let h = harness!(StandIn::new(config()));
    let reply = h
        .authorize_raw(&[
            ("client_id", "someone-else"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
        ])
        .await;
    assert_page_error(&reply, "KOE101");
    let missing = h
        .authorize_raw(&[("redirect_uri", REDIRECT), ("response_type", "code")])
        .await;
    assert_page_error(&missing, "KOE101");
}

#[actix_web::test]
async fn authorize_with_an_unregistered_or_slightly_different_redirect_uri_shows_a_koe006_page() {
    let h = harness!(StandIn::new(config()));
    for uri in [
        "http://evil.example/callback",
        "http://localhost:8080/auth/kakao/callback/",
        "http://localhost:8080/auth/kakao/callback?x=1",
    ] {
        let reply = h
            .authorize_raw(&[
                ("client_id", CLIENT_ID),
                ("redirect_uri", uri),
                ("response_type", "code"),
            ])
            .await;
        assert_page_error(&reply, "KOE006");
    }
}

#[actix_web::test]
async fn authorize_with_a_response_type_other_than_code_shows_koe201_or_koe202_for_token() {
    let h = harness!(StandIn::new(config()));
    let base = [("client_id", CLIENT_ID), ("redirect_uri", REDIRECT)];
    let missing = h.authorize_raw(&base).await;
    assert_page_error(&missing, "KOE201");
    let mut other = base.to_vec();
    other.push(("response_type", "id_token"));
    assert_page_error(&h.authorize_raw(&other).await, "KOE201");
    let mut token = base.to_vec();
    token.push(("response_type", "token"));
    assert_page_error(&h.authorize_raw(&token).await, "KOE202");
}

#[actix_web::test]
async fn authorize_accepts_only_the_s256_pkce_method_with_a_well_formed_challenge() {
    let h = harness!(StandIn::new(config()));
    let challenge = challenge(VERIFIER);
    let plain = h
        .authorize(&[
            ("code_challenge", &challenge),
            ("code_challenge_method", "plain"),
        ])
        .await;
    assert_page_error(&plain, "KOE001");
    assert!(plain.text().contains("plain"));
    let no_method = h.authorize(&[("code_challenge", &challenge)]).await;
    assert_page_error(&no_method, "KOE001");
    let short = h
        .authorize(&[
            ("code_challenge", "too-short"),
            ("code_challenge_method", "S256"),
        ])
        .await;
    assert_page_error(&short, "KOE001");
    let good = h
        .authorize(&[
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .await;
    assert_eq!(good.status, 200);
}

#[actix_web::test]
async fn authorize_with_a_scope_the_app_has_not_configured_shows_koe205() {
    let h = harness!(StandIn::new(config()));
    let reply = h.authorize(&[("scope", "account_email,gender")]).await;
    assert_page_error(&reply, "KOE205");
    assert!(reply.text().contains("gender"));
}

#[actix_web::test]
async fn authorize_error_pages_escape_what_the_request_sent() {
    let h = harness!(StandIn::new(config()));
    let reply = h
        .authorize_raw(&[
            ("client_id", "<script>alert(1)</script>"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
        ])
        .await;
    assert_page_error(&reply, "KOE101");
    assert!(!reply.text().contains("<script>"));
    assert!(reply.text().contains("&#60;script&#62;"));
}

// ---------------------------------------------------------------- consent page

#[actix_web::test]
async fn the_consent_page_lists_test_accounts_and_keeps_the_request_in_hidden_fields() {
    let standin = StandIn::new(config());
    let alice_id = standin.add_user(alice());
    standin.add_user(TestUser {
        nickname: None,
        email: None,
        email_verified: false,
        email_valid: false,
    });
    let h = harness!(standin);
    let challenge = challenge(VERIFIER);
    let state = "a\"b<c>&d e";
    let page = h
        .authorize(&[
            ("state", state),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains("앨리스") && html.contains("alice@example.com"));
    assert!(html.contains(&alice_id.to_string()));
    assert!(html.contains("(이메일 없음)"));
    assert!(html.contains("[선택] 카카오계정(이메일) 제공 동의"));
    assert!(html.contains("동의하고 계속하기") && html.contains("취소"));
    assert!(html.contains("이메일 인증됨") && html.contains("이메일 유효함"));
    assert!(html.contains("#FEE500"));
    assert!(!html.contains(state), "the state must be escaped");
    let hidden: HashMap<String, String> = hidden_fields(&html).into_iter().collect();
    assert_eq!(hidden["client_id"], CLIENT_ID);
    assert_eq!(hidden["redirect_uri"], REDIRECT);
    assert_eq!(hidden["response_type"], "code");
    assert_eq!(hidden["state"], state);
    assert_eq!(hidden["code_challenge"], challenge);
    assert_eq!(hidden["code_challenge_method"], "S256");
    assert!(!hidden.contains_key("scope"));
}

#[actix_web::test]
async fn the_consent_page_lists_the_first_thirty_accounts_and_the_rest_by_email() {
    let standin = StandIn::new(config());
    let ids: Vec<i64> = (0..40)
        .map(|i| {
            standin.add_user(TestUser {
                nickname: Some(format!("사람{i}")),
                email: Some(format!("person{i}@example.com")),
                email_verified: true,
                email_valid: true,
            })
        })
        .collect();
    let h = harness!(standin.clone());
    let challenge = challenge(VERIFIER);
    let extra = [
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let page = h.authorize(&extra).await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains("person29@example.com"));
    assert!(!html.contains("person30@example.com"));
    assert!(html.contains("외 10개 계정은 목록에 없습니다"), "{html}");
    // An account off the list is still the one its email names.
    let reply = h
        .submit_consent(
            &page,
            &[
                ("account", "new"),
                ("new_email", "person39@example.com"),
                ("share_email", "on"),
                ("action", "agree"),
            ],
        )
        .await;
    assert_eq!(reply.status, 302, "{}", reply.text());
    assert_eq!(
        standin.lock().accounts.len(),
        ids.len(),
        "no account was added"
    );
}

#[actix_web::test]
async fn the_consent_page_loads_nothing_external_and_sends_a_strict_csp() {
    let standin = StandIn::new(config());
    standin.add_user(alice());
    let h = harness!(standin);
    let page = h.authorize(&[]).await;
    assert_eq!(
        page.header(header::CONTENT_SECURITY_POLICY).as_deref(),
        Some(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' http: https:; frame-ancestors 'none'"
        )
    );
    assert!(
        page.header(header::CONTENT_TYPE)
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text();
    for forbidden in [
        "<script",
        "<link",
        "<img",
        "src=",
        "url(",
        "@import",
        "action=\"/",
    ] {
        assert!(!html.contains(forbidden), "page contains {forbidden}");
    }
}

#[actix_web::test]
async fn consent_then_token_exchange_with_pkce_returns_kakaos_token_json() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    let h = harness!(standin);
    let code = h.code_for(id, true, "xyz").await;
    assert!(code.len() >= 40);
    let reply = h.exchange(&code, Some(VERIFIER)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.assert_kakao_json();
    let body = reply.json();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 21599);
    assert_eq!(body["refresh_token_expires_in"], 5_183_999);
    assert_eq!(body["scope"], "account_email openid profile_nickname");
    assert!(body["access_token"].as_str().unwrap().len() >= 40);
    assert!(body["refresh_token"].as_str().unwrap().len() >= 40);
    assert_eq!(body["id_token"].as_str().unwrap().split('.').count(), 3);
    let me = h.user_me(body["access_token"].as_str().unwrap()).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["id"].as_i64(), Some(id));
}

#[actix_web::test]
async fn the_redirect_keeps_an_existing_query_and_percent_encodes_the_state() {
    let standin = StandIn::new(config());
    standin.set_auto_consent(Some(Consent::Cancel));
    let h = harness!(standin);
    let reply = h
        .authorize_raw(&[
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT_WITH_QUERY),
            ("response_type", "code"),
            ("state", "a b&c=d/é"),
        ])
        .await;
    assert_eq!(
        reply.location(),
        "http://localhost:8080/cb?from=kakao&error=access_denied&error_description=User%20denied%20access&state=a%20b%26c%3Dd%2F%C3%A9"
    );
}

#[actix_web::test]
async fn state_is_left_out_of_the_redirect_when_none_was_sent() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    let h = harness!(standin);
    let page = h.authorize(&[]).await;
    let id = id.to_string();
    let reply = h
        .submit_consent(&page, &[("account", &id), ("action", "agree")])
        .await;
    let location = reply.location();
    assert!(
        location.starts_with(&format!("{REDIRECT}?code=")),
        "{location}"
    );
    assert!(!location.contains("state"));
}

#[actix_web::test]
async fn pressing_cancel_redirects_with_access_denied_and_the_state() {
    let standin = StandIn::new(config());
    standin.add_user(alice());
    let h = harness!(standin);
    let page = h.authorize(&[("state", "st4te")]).await;
    let reply = h.submit_consent(&page, &[("action", "cancel")]).await;
    assert_eq!(
        reply.location(),
        format!(
            "{REDIRECT}?error=access_denied&error_description=User%20denied%20access&state=st4te"
        )
    );
}

#[actix_web::test]
async fn a_typed_new_account_is_created_with_the_checkbox_flags() {
    let standin = StandIn::new(config());
    let h = harness!(standin.clone());
    let page = h.authorize(&[]).await;
    assert!(page.text().contains(r#"value="new" checked"#));
    let reply = h
        .submit_consent(
            &page,
            &[
                ("account", "new"),
                ("new_nickname", "새 사람"),
                ("new_email", "new@example.com"),
                ("new_email_valid", "on"),
                ("share_email", "on"),
                ("action", "agree"),
            ],
        )
        .await;
    let code = reply.redirect_params()["code"].clone();
    let token = h.exchange(&code, None).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let me = h.user_me(&token).await.json();
    assert_eq!(me["id"].as_i64(), Some(super::state::FIRST_KAKAO_ID));
    assert_eq!(me["kakao_account"]["profile"]["nickname"], "새 사람");
    assert_eq!(me["kakao_account"]["email"], "new@example.com");
    assert_eq!(me["kakao_account"]["is_email_verified"], false);
    assert_eq!(me["kakao_account"]["is_email_valid"], true);
}

#[actix_web::test]
async fn a_typed_email_of_an_existing_account_reuses_that_accounts_id() {
    let standin = StandIn::new(config());
    let alice_id = standin.add_user(alice());
    let h = harness!(standin.clone());
    let page = h.authorize(&[]).await;
    let reply = h
        .submit_consent(
            &page,
            &[
                ("account", "new"),
                ("new_nickname", "someone"),
                ("new_email", "ALICE@example.com"),
                ("share_email", "on"),
                ("action", "agree"),
            ],
        )
        .await;
    let code = reply.redirect_params()["code"].clone();
    let token = h.exchange(&code, None).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        h.user_me(&token).await.json()["id"].as_i64(),
        Some(alice_id)
    );
    assert_eq!(standin.lock().accounts.len(), 1);
}

#[actix_web::test]
async fn a_consent_without_an_account_choice_shows_the_page_again_with_an_error() {
    let standin = StandIn::new(config());
    let h = harness!(standin.clone());
    let page = h.authorize(&[("state", "keep")]).await;
    let reply = h
        .submit_consent(&page, &[("account", "new"), ("action", "agree")])
        .await;
    assert_eq!(reply.status, 400);
    assert!(reply.text().contains("닉네임 또는 이메일"));
    let hidden: HashMap<String, String> = hidden_fields(&reply.text()).into_iter().collect();
    assert_eq!(hidden["state"], "keep");
    assert!(standin.lock().accounts.is_empty());
}

#[actix_web::test]
async fn typing_a_new_account_while_an_existing_one_is_selected_is_refused() {
    let standin = StandIn::new(config());
    let alice_id = standin.add_user(alice());
    let h = harness!(standin.clone());
    let page = h.authorize(&[]).await;
    let id = alice_id.to_string();
    let reply = h
        .submit_consent(
            &page,
            &[
                ("account", &id),
                ("new_email", "typed@example.com"),
                ("share_email", "on"),
                ("action", "agree"),
            ],
        )
        .await;
    assert_eq!(reply.status, 400);
    let html = reply.text();
    assert!(html.contains("새 계정 입력"));
    assert!(html.contains(r#"value="typed@example.com""#));
    assert!(html.contains(&format!(r#"value="{id}" checked"#)));
    assert_eq!(standin.lock().accounts.len(), 1);
}

#[actix_web::test]
async fn the_consent_post_validates_the_request_again() {
    let h = harness!(StandIn::new(config()));
    let reply = h
        .post_form(
            "/oauth/consent",
            &[
                ("client_id", CLIENT_ID),
                ("redirect_uri", "http://evil.example/cb"),
                ("response_type", "code"),
                ("action", "cancel"),
            ],
        )
        .await;
    assert_page_error(&reply, "KOE006");
}

#[actix_web::test]
async fn an_additional_consent_request_for_account_email_shows_it_as_required() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    let h = harness!(standin);
    // First login declines the email.
    let first = h.login(id, false).await;
    assert_eq!(first["scope"], "openid profile_nickname");
    // The app asks again for account_email only.
    let page = h.authorize(&[("scope", "account_email")]).await;
    let html = page.text();
    assert!(html.contains("[필수] 카카오계정(이메일) 제공 동의"));
    assert!(html.contains(r#"name="share_email" value="on" checked required"#));
    let hidden: HashMap<String, String> = hidden_fields(&html).into_iter().collect();
    assert_eq!(hidden["scope"], "account_email");
    let id_text = id.to_string();
    let refused = h
        .submit_consent(&page, &[("account", &id_text), ("action", "agree")])
        .await;
    assert_eq!(refused.status, 400);
    let agreed = h
        .submit_consent(
            &page,
            &[
                ("account", &id_text),
                ("share_email", "on"),
                ("action", "agree"),
            ],
        )
        .await;
    let code = agreed.redirect_params()["code"].clone();
    let tokens = h.exchange(&code, None).await.json();
    // Without `openid` in the additional-consent scope there is no new ID token.
    assert_eq!(tokens["scope"], "account_email profile_nickname");
    assert!(tokens.get("id_token").is_none());
    let me = h
        .user_me(tokens["access_token"].as_str().unwrap())
        .await
        .json();
    assert_eq!(me["kakao_account"]["email"], "alice@example.com");
}

#[actix_web::test]
async fn mounted_under_a_scope_the_whole_flow_stays_under_that_scope() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    let h = harness!(standin, "/_kakao");
    let tokens = h.login(id, true).await;
    let me = h.user_me(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(me.status, 200);
    let unmounted = h.send(TestRequest::get().uri("/oauth/authorize")).await;
    assert_eq!(unmounted.status, 404);
}

// ---------------------------------------------------------------- token endpoint

#[actix_web::test]
async fn a_code_works_only_once() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    let h = harness!(standin);
    let code = h.code_for(id, true, "s").await;
    assert_eq!(h.exchange(&code, Some(VERIFIER)).await.status, 200);
    let again = h.exchange(&code, Some(VERIFIER)).await;
    assert_eq!(again.status, 400);
    again.assert_kakao_json();
    assert_eq!(
        again.json(),
        json!({
            "error": "invalid_grant",
            "error_description": format!("authorization code not found for code={code}"),
            "error_code": "KOE320"
        })
    );
}

#[actix_web::test]
async fn an_expired_code_is_not_found() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    let h = harness!(standin.clone());
    let code = h.code_for(id, true, "s").await;
    standin.lock().codes.get_mut(&code).unwrap().expires_at = Instant::now();
    let reply = h.exchange(&code, Some(VERIFIER)).await;
    assert_eq!(reply.json()["error_code"], "KOE320");
}

#[actix_web::test]
async fn a_redirect_uri_mismatch_is_koe303_and_still_consumes_the_code() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    let h = harness!(standin);
    let code = h.code_for(id, true, "s").await;
    let fields = [
        ("grant_type", "authorization_code"),
        ("client_id", CLIENT_ID),
        ("client_secret", SECRET),
        ("redirect_uri", REDIRECT_WITH_QUERY),
        ("code", code.as_str()),
        ("code_verifier", VERIFIER),
    ];
    let reply = h.post_form("/oauth/token", &fields).await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.json(),
        json!({"error":"invalid_grant","error_description":"Redirect URI mismatch.","error_code":"KOE303"})
    );
    assert_eq!(
        h.exchange(&code, Some(VERIFIER)).await.json()["error_code"],
        "KOE320"
    );
}

#[actix_web::test]
async fn a_wrong_or_missing_client_secret_is_koe010_with_401() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    let h = harness!(standin);
    let code = h.code_for(id, true, "s").await;
    for secret in [Some("wrong"), None] {
        let mut fields = vec![
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT),
            ("code", code.as_str()),
            ("code_verifier", VERIFIER),
        ];
        if let Some(secret) = secret {
            fields.push(("client_secret", secret));
        }
        let reply = h.post_form("/oauth/token", &fields).await;
        assert_eq!(reply.status, 401);
        assert_eq!(
            reply.json(),
            json!({"error":"invalid_client","error_description":"Bad client credentials","error_code":"KOE010"})
        );
    }
    // A failed client check happens before the code is looked at, so the code still works.
    assert_eq!(h.exchange(&code, Some(VERIFIER)).await.status, 200);
}

#[actix_web::test]
async fn no_client_secret_is_needed_when_none_is_configured() {
    let standin = StandIn::new(StandInConfig {
        client_secret: None,
        ..config()
    });
    let id = standin.add_user(alice());
    let h = harness!(standin);
    let code = h.code_for(id, true, "s").await;
    let reply = h
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "authorization_code"),
                ("client_id", CLIENT_ID),
                ("redirect_uri", REDIRECT),
                ("code", &code),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[actix_web::test]
async fn an_unknown_client_id_at_the_token_endpoint_is_koe101_with_401() {
    let h = harness!(StandIn::new(config()));
    let reply = h
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "authorization_code"),
                ("client_id", "nope"),
                ("code", "x"),
            ],
        )
        .await;
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.json(),
        json!({"error":"invalid_client","error_description":"Not exist client_id nope","error_code":"KOE101"})
    );
    let missing = h
        .post_form("/oauth/token", &[("grant_type", "authorization_code")])
        .await;
    assert_eq!(
        missing.json()["error_description"],
        "Not exist client_id [null]"
    );
}

#[actix_web::test]
async fn a_wrong_or_missing_code_verifier_fails_pkce_verification() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    let h = harness!(standin);
    let pkce_failed = json!({"error":"invalid_grant","error_description":"PKCE verification failed.","error_code":"KOE320"});
    let code = h.code_for(id, true, "s").await;
    let wrong = h
        .exchange(
            &code,
            Some("another-verifier-that-is-long-enough-to-be-valid-0123"),
        )
        .await;
    assert_eq!(wrong.status, 400);
    assert_eq!(wrong.json(), pkce_failed);
    let code = h.code_for(id, true, "s").await;
    let missing = h.exchange(&code, None).await;
    assert_eq!(missing.json(), pkce_failed);
}

#[actix_web::test]
async fn the_token_endpoint_accepts_only_form_bodies() {
    let h = harness!(StandIn::new(config()));
    let reply = h
        .send(
            TestRequest::post()
                .uri("/oauth/token")
                .insert_header((header::CONTENT_TYPE, "application/json"))
                .set_payload(
                    r#"{"grant_type":"authorization_code","client_id":"test-rest-api-key"}"#,
                ),
        )
        .await;
    assert_eq!(reply.status, 400);
    reply.assert_kakao_json();
    assert!(
        reply.json()["error_code"]
            .as_str()
            .unwrap()
            .starts_with("KOE")
    );
    let get = h.get("/oauth/token").await;
    assert_eq!(get.status, 405);
}

#[actix_web::test]
async fn the_refresh_grant_issues_a_new_access_token_without_rotating_a_young_refresh_token() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    let h = harness!(standin);
    let tokens = h.login(id, true).await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let reply = h
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", CLIENT_ID),
                ("client_secret", SECRET),
                ("refresh_token", refresh),
            ],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 21599);
    assert!(body.get("refresh_token").is_none());
    assert!(body.get("refresh_token_expires_in").is_none());
    let access = body["access_token"].as_str().unwrap();
    assert_ne!(access, tokens["access_token"].as_str().unwrap());
    assert_eq!(h.user_me(access).await.json()["id"].as_i64(), Some(id));
}

#[actix_web::test]
async fn an_old_refresh_token_is_rotated() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    let h = harness!(standin.clone());
    let tokens = h.login(id, true).await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    standin
        .lock()
        .refresh_tokens
        .get_mut(&refresh)
        .unwrap()
        .expires_at = Instant::now() + Duration::from_secs(3600);
    let fields = [
        ("grant_type", "refresh_token"),
        ("client_id", CLIENT_ID),
        ("client_secret", SECRET),
        ("refresh_token", refresh.as_str()),
    ];
    let body = h.post_form("/oauth/token", &fields).await.json();
    assert_eq!(body["refresh_token_expires_in"], 5_183_999);
    assert_ne!(body["refresh_token"].as_str().unwrap(), refresh);
    let old = h.post_form("/oauth/token", &fields).await;
    assert_eq!(old.json()["error_code"], "KOE322");
}

#[actix_web::test]
async fn a_missing_refresh_token_is_koe319_and_an_unknown_one_koe322() {
    let h = harness!(StandIn::new(config()));
    let base = [
        ("grant_type", "refresh_token"),
        ("client_id", CLIENT_ID),
        ("client_secret", SECRET),
    ];
    let missing = h.post_form("/oauth/token", &base).await;
    assert_eq!(missing.status, 400);
    assert_eq!(missing.json()["error"], "invalid_grant");
    assert_eq!(missing.json()["error_code"], "KOE319");
    let mut unknown = base.to_vec();
    unknown.push(("refresh_token", "nope"));
    let reply = h.post_form("/oauth/token", &unknown).await;
    assert_eq!(
        reply.json(),
        json!({"error":"invalid_grant","error_description":"expired_or_invalid_refresh_token","error_code":"KOE322"})
    );
}

// ---------------------------------------------------------------- kapi

#[actix_web::test]
async fn user_me_shows_the_shared_email_and_a_64_bit_integer_id() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    let h = harness!(standin);
    let tokens = h.login(id, true).await;
    let reply = h.user_me(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(reply.status, 200);
    reply.assert_kakao_json();
    let text = reply.text();
    assert!(text.contains(&format!("\"id\":{id},")), "{text}");
    let me = reply.json();
    assert!(me["id"].is_i64() && !me["id"].is_f64());
    assert!(me["id"].as_i64().unwrap() > TWO_POW_53);
    let connected_at = me["connected_at"].as_str().unwrap();
    assert!(connected_at.ends_with('Z'));
    assert!(chrono::DateTime::parse_from_rfc3339(connected_at).is_ok());
    assert_eq!(me["properties"], json!({"nickname": "앨리스"}));
    assert_eq!(
        me["kakao_account"],
        json!({
            "profile_nickname_needs_agreement": false,
            "profile": {"nickname": "앨리스", "is_default_nickname": false},
            "has_email": true,
            "email_needs_agreement": false,
            "is_email_valid": true,
            "is_email_verified": true,
            "email": "alice@example.com"
        })
    );
}

#[actix_web::test]
async fn user_me_hides_a_declined_email_but_says_it_needs_agreement() {
    let standin = StandIn::new(config());
    let id = standin.add_user(bob());
    let h = harness!(standin);
    let tokens = h.login(id, false).await;
    let me = h
        .user_me(tokens["access_token"].as_str().unwrap())
        .await
        .json();
    assert_eq!(
        me["kakao_account"],
        json!({
            "profile_nickname_needs_agreement": false,
            "profile": {"nickname": "Bob", "is_default_nickname": false},
            "has_email": true,
            "email_needs_agreement": true
        })
    );
}

#[actix_web::test]
async fn user_me_answers_post_as_well_as_get() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    let h = harness!(standin);
    let token = h.standin.issue_access_token(id);
    let reply = h
        .with_bearer(
            TestRequest::post()
                .uri("/v2/user/me")
                .set_form([("property_keys", r#"["kakao_account.email"]"#)]),
            &token,
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["id"].as_i64(), Some(id));
}

#[actix_web::test]
async fn a_missing_or_unknown_token_does_not_exist() {
    let h = harness!(StandIn::new(config()));
    let expected = json!({"msg":"this access token does not exist","code":-401});
    let none = h.get("/v2/user/me").await;
    assert_eq!(none.status, 401);
    none.assert_kakao_json();
    assert_eq!(none.json(), expected);
    let unknown = h.user_me("nope").await;
    assert_eq!(unknown.json(), expected);
    let info = h.token_info("nope").await;
    assert_eq!(info.status, 401);
    assert_eq!(info.json(), expected);
}

#[actix_web::test]
async fn an_expired_token_is_already_expired_for_user_me_and_token_info() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    let h = harness!(standin.clone());
    let token = standin.issue_access_token(id);
    assert_eq!(h.user_me(&token).await.status, 200);
    standin.expire_access_token(&token);
    let expected = json!({"msg":"this access token is already expired","code":-401});
    let me = h.user_me(&token).await;
    assert_eq!(me.status, 401);
    assert_eq!(me.json(), expected);
    assert_eq!(h.token_info(&token).await.json(), expected);
}

#[actix_web::test]
async fn token_info_reports_the_id_remaining_lifetime_and_app_id() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    let h = harness!(standin);
    let tokens = h.login(id, true).await;
    let reply = h.token_info(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(reply.status, 200);
    reply.assert_kakao_json();
    let info = reply.json();
    assert_eq!(info["id"].as_i64(), Some(id));
    assert_eq!(info["app_id"].as_i64(), Some(APP_ID));
    let expires_in = info["expires_in"].as_i64().unwrap();
    assert!((21_590..=21_599).contains(&expires_in), "{expires_in}");
    assert_eq!(info.as_object().unwrap().len(), 3);
}

#[actix_web::test]
async fn logout_with_a_token_ends_only_that_token_and_its_refresh_token() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    let h = harness!(standin.clone());
    let first = h.login(id, true).await;
    let second = standin.issue_access_token(id);
    let token = first["access_token"].as_str().unwrap();
    let reply = h
        .with_bearer(TestRequest::post().uri("/v1/user/logout"), token)
        .await;
    assert_eq!(reply.status, 200);
    reply.assert_kakao_json();
    assert_eq!(reply.json(), json!({"id": id}));
    assert_eq!(h.user_me(token).await.json()["code"], -401);
    assert_eq!(h.user_me(&second).await.status, 200);
    let refresh = h
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", CLIENT_ID),
                ("client_secret", SECRET),
                ("refresh_token", first["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(refresh.json()["error_code"], "KOE322");
    assert_eq!(standin.logged_out(), vec![id]);
}

#[actix_web::test]
async fn logout_with_the_admin_key_ends_every_token_of_the_user() {
    let standin = StandIn::new(config());
    let alice_id = standin.add_user(alice());
    let bob_id = standin.add_user(bob());
    let h = harness!(standin.clone());
    let a1 = standin.issue_access_token(alice_id);
    let a2 = standin.issue_access_token(alice_id);
    let b = standin.issue_access_token(bob_id);
    let target = alice_id.to_string();
    let reply = h
        .admin_post(
            "/v1/user/logout",
            ADMIN_KEY,
            &[("target_id_type", "user_id"), ("target_id", &target)],
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json(), json!({"id": alice_id}));
    assert_eq!(h.user_me(&a1).await.status, 401);
    assert_eq!(h.user_me(&a2).await.status, 401);
    assert_eq!(h.user_me(&b).await.status, 200);
    assert_eq!(standin.logged_out(), vec![alice_id]);
}

#[actix_web::test]
async fn a_wrong_admin_key_is_minus_401_and_a_bad_target_is_minus_2() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    let h = harness!(standin.clone());
    standin.issue_access_token(id);
    let target = id.to_string();
    let wrong = h
        .admin_post(
            "/v1/user/unlink",
            "not-the-admin-key",
            &[("target_id_type", "user_id"), ("target_id", &target)],
        )
        .await;
    assert_eq!(wrong.status, 401);
    let body = wrong.json();
    assert_eq!(body["code"], -401);
    assert!(body["msg"].as_str().unwrap().starts_with("wrong appKey("));
    let bad_type = h
        .admin_post(
            "/v1/user/unlink",
            ADMIN_KEY,
            &[("target_id_type", "email"), ("target_id", &target)],
        )
        .await;
    assert_eq!(
        (bad_type.status, bad_type.json()["code"].clone()),
        (400, json!(-2))
    );
    let bad_id = h
        .admin_post(
            "/v1/user/unlink",
            ADMIN_KEY,
            &[("target_id_type", "user_id"), ("target_id", "abc")],
        )
        .await;
    assert_eq!(bad_id.json()["code"], -2);
    assert!(standin.unlinked().is_empty());
}

#[actix_web::test]
async fn the_admin_key_reads_user_me_for_a_target_user() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    let h = harness!(standin.clone());
    standin.issue_access_token(id);
    let reply = h
        .send(
            TestRequest::get()
                .uri(&format!(
                    "/v2/user/me?target_id_type=user_id&target_id={id}"
                ))
                .insert_header((header::AUTHORIZATION, format!("KakaoAK {ADMIN_KEY}"))),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["kakao_account"]["email"], "alice@example.com");
    let stranger = h
        .send(
            TestRequest::get()
                .uri("/v2/user/me?target_id_type=user_id&target_id=4100000000000009999")
                .insert_header((header::AUTHORIZATION, format!("KakaoAK {ADMIN_KEY}"))),
        )
        .await;
    assert_eq!(
        stranger.json(),
        json!({"msg":"NotRegisteredUserException","code":-101})
    );
}

#[actix_web::test]
async fn unlink_makes_the_users_tokens_answer_minus_101_until_a_new_consent() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    let h = harness!(standin.clone());
    let tokens = h.login(id, true).await;
    let token = tokens["access_token"].as_str().unwrap();
    let reply = h
        .with_bearer(TestRequest::post().uri("/v1/user/unlink"), token)
        .await;
    assert_eq!(reply.status, 200);
    reply.assert_kakao_json();
    assert_eq!(reply.json(), json!({"id": id}));
    assert_eq!(standin.unlinked(), vec![id]);
    let me = h.user_me(token).await;
    assert_eq!(me.status, 400);
    assert_eq!(
        me.json(),
        json!({"msg":"NotRegisteredUserException","code":-101})
    );
    assert_eq!(h.token_info(token).await.json()["code"], -101);
    let refresh = h
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", CLIENT_ID),
                ("client_secret", SECRET),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(refresh.json()["error_code"], "KOE322");
    // Consenting again links the user anew; the old token stays dead.
    let fresh = h.login(id, false).await;
    assert_eq!(fresh["scope"], "openid profile_nickname");
    let fresh_token = fresh["access_token"].as_str().unwrap();
    assert_eq!(h.user_me(fresh_token).await.status, 200);
    assert_eq!(
        h.user_me(token).await.json(),
        json!({"msg":"this access token does not exist","code":-401})
    );
}

#[actix_web::test]
async fn unlink_with_the_admin_key_also_drops_codes_not_yet_exchanged() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    let h = harness!(standin.clone());
    let code = h.code_for(id, true, "s").await;
    let target = id.to_string();
    let reply = h
        .admin_post(
            "/v1/user/unlink",
            ADMIN_KEY,
            &[("target_id_type", "user_id"), ("target_id", &target)],
        )
        .await;
    assert_eq!(reply.json(), json!({"id": id}));
    assert_eq!(
        h.exchange(&code, Some(VERIFIER)).await.json()["error_code"],
        "KOE320"
    );
    assert_eq!(standin.unlinked(), vec![id]);
}

#[actix_web::test]
async fn a_user_without_nickname_or_email_looks_like_nothing_was_shared() {
    let standin = StandIn::new(config());
    let id = standin.add_user(TestUser {
        nickname: None,
        email: None,
        email_verified: false,
        email_valid: false,
    });
    let h = harness!(standin.clone());
    let token = standin.issue_access_token(id);
    let me = h.user_me(&token).await.json();
    assert!(me.get("properties").is_none());
    assert_eq!(
        me["kakao_account"],
        json!({
            "profile_nickname_needs_agreement": true,
            "has_email": false,
            "email_needs_agreement": false
        })
    );
}

// ---------------------------------------------------------------- auto-consent

#[actix_web::test]
async fn auto_consent_redirects_straight_to_the_app_with_a_code() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    standin.set_auto_consent(Some(Consent::Agree {
        kakao_id: id,
        share_email: false,
    }));
    let h = harness!(standin.clone());
    let challenge = challenge(VERIFIER);
    let reply = h
        .authorize(&[
            ("state", "auto"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .await;
    let params = reply.redirect_params();
    assert_eq!(params["state"], "auto");
    let tokens = h.exchange(&params["code"], Some(VERIFIER)).await.json();
    assert_eq!(tokens["scope"], "openid profile_nickname");
    let me = h
        .user_me(tokens["access_token"].as_str().unwrap())
        .await
        .json();
    assert_eq!(me["kakao_account"]["email_needs_agreement"], true);

    standin.set_auto_consent(Some(Consent::Cancel));
    let cancelled = h.authorize(&[("state", "auto")]).await.redirect_params();
    assert_eq!(cancelled["error"], "access_denied");
    assert_eq!(cancelled["error_description"], "User denied access");

    standin.set_auto_consent(None);
    assert_eq!(h.authorize(&[]).await.status, 200);
}

#[actix_web::test]
async fn auto_consent_for_an_unknown_account_shows_a_stand_in_error_page() {
    let standin = StandIn::new(config());
    standin.set_auto_consent(Some(Consent::Agree {
        kakao_id: 42,
        share_email: true,
    }));
    let h = harness!(standin);
    let reply = h.authorize(&[]).await;
    assert_eq!(reply.status, 500);
    assert!(reply.text().contains("42"));
}

#[actix_web::test]
async fn auto_consent_as_the_login_hint_creates_that_account_once_then_reuses_it() {
    let standin = StandIn::new(config());
    let alice_id = standin.add_user(alice());
    standin.set_auto_consent(Some(Consent::AgreeAsLoginHint));
    let h = harness!(standin.clone());
    let me_after = |hint: &'static str| {
        let h = &h;
        async move {
            let params = h
                .authorize(&[("state", "hint"), ("login_hint", hint)])
                .await
                .redirect_params();
            assert_eq!(params["state"], "hint");
            let tokens = h.exchange(&params["code"], None).await.json();
            assert_eq!(tokens["scope"], "account_email openid profile_nickname");
            h.user_me(tokens["access_token"].as_str().unwrap())
                .await
                .json()
        }
    };

    // An email no account has: a new person, named after the local part, email shared.
    let new = me_after("new-1@example.com").await;
    let new_id = new["id"].as_i64().unwrap();
    assert!(new_id > alice_id);
    assert_eq!(new["kakao_account"]["profile"]["nickname"], "new-1");
    assert_eq!(new["kakao_account"]["email"], "new-1@example.com");
    assert_eq!(new["kakao_account"]["is_email_verified"], true);
    assert_eq!(new["kakao_account"]["is_email_valid"], true);
    // The same email again (in any case) is the same person; an existing account's email is it.
    assert_eq!(me_after("NEW-1@example.com").await["id"], new_id);
    assert_eq!(me_after("alice@example.com").await["id"], alice_id);
    assert_eq!(standin.lock().accounts.len(), 2);

    let reply = h.authorize(&[("state", "hint")]).await;
    assert_eq!(reply.status, 500);
    assert!(reply.text().contains("login_hint"), "{}", reply.text());
}

// ---------------------------------------------------------------- prompt, login_hint, browser session

/// The `standin_kakao_session` cookie a reply sets, if any.
fn session_set_cookie(reply: &Reply) -> Option<actix_web::cookie::Cookie<'static>> {
    reply
        .headers
        .get_all(header::SET_COOKIE)
        .filter_map(|v| {
            actix_web::cookie::Cookie::parse_encoded(v.to_str().unwrap().to_owned()).ok()
        })
        .find(|c| c.name() == "standin_kakao_session")
}

impl<S, R, B> Harness<S, R>
where
    S: Service<R, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    /// `GET /oauth/authorize` with the valid basics plus `extra`, sending a session cookie.
    async fn authorize_in_session(&self, session: &str, extra: &[(&str, &str)]) -> Reply {
        let mut params = vec![
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
        ];
        params.extend_from_slice(extra);
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&params)
            .finish();
        self.send(
            TestRequest::get()
                .uri(&self.path(&format!("/oauth/authorize?{query}")))
                .cookie(actix_web::cookie::Cookie::new(
                    "standin_kakao_session",
                    session.to_owned(),
                )),
        )
        .await
    }

    /// Sign in through the consent page as `kakao_id`; the session cookie's value.
    async fn sign_in(&self, kakao_id: i64, share_email: bool) -> String {
        let page = self.authorize(&[]).await;
        let id = kakao_id.to_string();
        let mut choices = vec![("account", id.as_str()), ("action", "agree")];
        if share_email {
            choices.push(("share_email", "on"));
        }
        let reply = self.submit_consent(&page, &choices).await;
        assert!(reply.redirect_params().contains_key("code"));
        session_set_cookie(&reply).unwrap().value().to_owned()
    }
}

#[actix_web::test]
async fn agreeing_sets_an_httponly_lax_session_cookie_that_does_not_show_the_id() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    let h = harness!(standin.clone());
    let page = h.authorize(&[]).await;
    assert!(session_set_cookie(&page).is_none());
    let id_text = id.to_string();
    let reply = h
        .submit_consent(&page, &[("account", &id_text), ("action", "agree")])
        .await;
    let cookie = session_set_cookie(&reply).unwrap();
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.same_site(), Some(actix_web::cookie::SameSite::Lax));
    assert_eq!(cookie.path(), Some("/"));
    assert!(cookie.max_age().is_none(), "a browser-session cookie");
    assert!(!cookie.value().contains(&id_text));
    assert!(cookie.value().len() >= 32);
    assert_eq!(standin.lock().sessions[cookie.value()].kakao_id, id);
    // Auto-consent signs the browser in too, replacing the session it came with.
    standin.set_auto_consent(Some(Consent::Agree {
        kakao_id: id,
        share_email: true,
    }));
    let auto = h.authorize_in_session(cookie.value(), &[]).await;
    let renewed = session_set_cookie(&auto).unwrap();
    assert_ne!(renewed.value(), cookie.value());
    assert!(!standin.lock().sessions.contains_key(cookie.value()));
    // Cancelling sets none.
    standin.set_auto_consent(Some(Consent::Cancel));
    assert!(session_set_cookie(&h.authorize(&[]).await).is_none());
}

#[actix_web::test]
async fn prompt_none_without_a_session_is_login_required_even_with_auto_consent() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    standin.set_auto_consent(Some(Consent::Agree {
        kakao_id: id,
        share_email: true,
    }));
    let h = harness!(standin);
    let expected = format!(
        "{REDIRECT}?error=login_required&error_description=user%20authentication%20required.&state=p"
    );
    let reply = h.authorize(&[("prompt", "none"), ("state", "p")]).await;
    assert_eq!(reply.location(), expected);
    let unknown = h
        .authorize_in_session("not-a-session", &[("prompt", "none"), ("state", "p")])
        .await;
    assert_eq!(unknown.location(), expected);
    assert!(session_set_cookie(&unknown).is_none());
}

#[actix_web::test]
async fn prompt_none_in_a_session_answers_a_code_at_once() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    let h = harness!(standin.clone());
    let session = h.sign_in(id, true).await;
    let auth_time = standin.lock().sessions[&session].auth_time;
    let reply = h
        .authorize_in_session(
            &session,
            &[("prompt", "none"), ("state", "p"), ("nonce", "nn")],
        )
        .await;
    let params = reply.redirect_params();
    assert_eq!(params["state"], "p");
    assert!(session_set_cookie(&reply).is_none(), "the session goes on");
    let tokens = h.exchange(&params["code"], None).await.json();
    assert_eq!(tokens["scope"], "account_email openid profile_nickname");
    let claims = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(claims["sub"], json!(id.to_string()));
    assert_eq!(claims["nonce"], "nn");
    assert_eq!(claims["auth_time"].as_i64(), Some(auth_time));
}

#[actix_web::test]
async fn prompt_none_is_consent_required_for_an_unlinked_account_or_an_unagreed_item() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    let h = harness!(standin.clone());
    let consent_required = format!(
        "{REDIRECT}?error=consent_required&error_description=user%20consent%20required.&state=p"
    );
    let session = h.sign_in(id, false).await;
    // A plain request does not ask again for the declined optional email...
    let plain = h
        .authorize_in_session(&session, &[("prompt", "none"), ("state", "p")])
        .await;
    assert!(plain.redirect_params().contains_key("code"));
    // ...an additional-consent request for it does.
    let email = h
        .authorize_in_session(
            &session,
            &[
                ("prompt", "none"),
                ("scope", "account_email"),
                ("state", "p"),
            ],
        )
        .await;
    assert_eq!(email.location(), consent_required);
    // After an unlink the account is no member any more.
    let target = id.to_string();
    h.admin_post(
        "/v1/user/unlink",
        ADMIN_KEY,
        &[("target_id_type", "user_id"), ("target_id", &target)],
    )
    .await;
    let unlinked = h
        .authorize_in_session(&session, &[("prompt", "none"), ("state", "p")])
        .await;
    assert_eq!(unlinked.location(), consent_required);
}

#[actix_web::test]
async fn prompt_login_select_account_and_create_show_the_consent_page_with_a_line() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    let h = harness!(standin.clone());
    for (prompt, line) in [
        ("login", "다시 로그인 (prompt=login)"),
        ("select_account", "계정 선택 (prompt=select_account)"),
        ("create", "카카오계정 만들기 (prompt=create)"),
    ] {
        let page = h.authorize(&[("prompt", prompt)]).await;
        assert_eq!(page.status, 200, "{}", page.text());
        assert!(page.text().contains(line), "{prompt}");
        let hidden: HashMap<String, String> = hidden_fields(&page.text()).into_iter().collect();
        assert_eq!(hidden["prompt"], prompt);
    }
    let both = h.authorize(&[("prompt", "login,select_account")]).await;
    assert!(both.text().contains("다시 로그인") && both.text().contains("계정 선택"));
    assert!(!h.authorize(&[]).await.text().contains("prompt="));
    // With auto-consent they answer a code like a request without prompt.
    standin.set_auto_consent(Some(Consent::Agree {
        kakao_id: id,
        share_email: true,
    }));
    let reply = h.authorize(&[("prompt", "login")]).await;
    assert!(reply.redirect_params().contains_key("code"));
}

#[actix_web::test]
async fn an_unknown_prompt_or_none_with_another_value_is_a_koe001_page() {
    let h = harness!(StandIn::new(config()));
    assert_page_error(&h.authorize(&[("prompt", "consent")]).await, "KOE001");
    assert_page_error(&h.authorize(&[("prompt", "none,login")]).await, "KOE001");
    assert_eq!(
        h.authorize(&[("prompt", "login select_account")])
            .await
            .status,
        200
    );
}

#[actix_web::test]
async fn login_hint_prefills_the_new_account_email_and_selects_it() {
    let standin = StandIn::new(config());
    let alice_id = standin.add_user(alice());
    let h = harness!(standin.clone());
    let page = h.authorize(&[("login_hint", "ALICE@example.com")]).await;
    let html = page.text();
    assert!(html.contains(r#"name="new_email" placeholder="이메일 (없으면 비워 두세요)" value="ALICE@example.com""#), "{html}");
    assert!(html.contains(r#"value="new" checked"#));
    assert!(!html.contains(&format!(r#"value="{alice_id}" checked"#)));
    // Agreeing with the form as shown (what a browser sends) signs in as that email's account.
    let reply = h
        .submit_consent(
            &page,
            &[
                ("account", "new"),
                ("new_email", "ALICE@example.com"),
                ("share_email", "on"),
                ("action", "agree"),
            ],
        )
        .await;
    let code = reply.redirect_params()["code"].clone();
    let token = h.exchange(&code, None).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        h.user_me(&token).await.json()["id"].as_i64(),
        Some(alice_id)
    );
}

#[actix_web::test]
async fn every_authorize_query_is_recorded() {
    let standin = StandIn::new(config());
    assert!(standin.last_authorize_query().is_none());
    standin.fail_next(Endpoint::Authorize, Fault::Status(500), 1);
    let h = harness!(standin.clone());
    h.authorize(&[("state", "one"), ("prompt", "login")]).await;
    let query = standin.last_authorize_query().unwrap();
    assert_eq!(query["state"], "one");
    assert_eq!(query["prompt"], "login");
    assert_eq!(query["client_id"], CLIENT_ID);
    h.authorize_raw(&[("client_id", "nope"), ("nonce", "a b"), ("nonce", "second")])
        .await;
    let refused = standin.last_authorize_query().unwrap();
    assert_eq!(
        refused.into_iter().collect::<Vec<_>>(),
        vec![
            ("client_id".to_owned(), "nope".to_owned()),
            ("nonce".to_owned(), "a b".to_owned())
        ]
    );
}

// ---------------------------------------------------------------- Kakao Account logout

const LOGOUT_REDIRECT: &str = "http://localhost:8080/auth/kakao/logged-out";

#[actix_web::test]
async fn account_logout_clears_the_session_and_redirects_with_the_state() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    standin.set_logout_redirect_uris(vec![LOGOUT_REDIRECT.to_owned()]);
    let h = harness!(standin.clone());
    let session = h.sign_in(id, true).await;
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("client_id", CLIENT_ID),
            ("logout_redirect_uri", LOGOUT_REDIRECT),
            ("state", "bye 1"),
        ])
        .finish();
    let reply = h
        .send(
            TestRequest::get()
                .uri(&format!("/oauth/logout?{query}"))
                .cookie(actix_web::cookie::Cookie::new(
                    "standin_kakao_session",
                    session.clone(),
                )),
        )
        .await;
    assert_eq!(reply.location(), format!("{LOGOUT_REDIRECT}?state=bye%201"));
    let cleared = session_set_cookie(&reply).unwrap();
    assert_eq!(cleared.value(), "");
    assert_eq!(cleared.path(), Some("/"));
    assert_eq!(
        cleared.max_age(),
        Some(actix_web::cookie::time::Duration::ZERO)
    );
    assert!(standin.lock().sessions.is_empty());
    // The old cookie no longer signs in silently.
    let silent = h
        .authorize_in_session(&session, &[("prompt", "none"), ("state", "p")])
        .await;
    assert_eq!(silent.redirect_params()["error"], "login_required");
    // Without a state (and without a cookie) there is no state parameter.
    let plain = h
        .get(&format!(
            "/oauth/logout?client_id={CLIENT_ID}&logout_redirect_uri={}",
            super::reply::percent_encode(LOGOUT_REDIRECT)
        ))
        .await;
    assert_eq!(plain.location(), LOGOUT_REDIRECT);
    assert_eq!(standin.hits(Endpoint::AccountLogout), 2);
    // The link and the tokens are not touched: only the browser session ends.
    assert!(standin.lock().links.contains_key(&id));
}

#[actix_web::test]
async fn account_logout_to_an_unregistered_uri_is_a_koe007_page() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    let h = harness!(standin.clone());
    let session = h.sign_in(id, true).await;
    let url = format!(
        "/oauth/logout?client_id={CLIENT_ID}&logout_redirect_uri={}&state=s",
        super::reply::percent_encode(LOGOUT_REDIRECT)
    );
    // None is registered by default.
    assert_page_error(&h.get(&url).await, "KOE007");
    standin.set_logout_redirect_uris(vec![format!("{LOGOUT_REDIRECT}/")]);
    let reply = h
        .send(
            TestRequest::get()
                .uri(&url)
                .cookie(actix_web::cookie::Cookie::new(
                    "standin_kakao_session",
                    session.clone(),
                )),
        )
        .await;
    assert_page_error(&reply, "KOE007");
    assert!(session_set_cookie(&reply).is_none());
    assert!(standin.lock().sessions.contains_key(&session));
    let missing = h.get(&format!("/oauth/logout?client_id={CLIENT_ID}")).await;
    assert_page_error(&missing, "KOE007");
}

#[actix_web::test]
async fn account_logout_with_an_unknown_client_is_a_koe101_page_and_takes_faults() {
    let standin = StandIn::new(config());
    standin.set_logout_redirect_uris(vec![LOGOUT_REDIRECT.to_owned()]);
    let h = harness!(standin.clone());
    let target = super::reply::percent_encode(LOGOUT_REDIRECT);
    let reply = h
        .get(&format!(
            "/oauth/logout?client_id=nope&logout_redirect_uri={target}"
        ))
        .await;
    assert_page_error(&reply, "KOE101");
    standin.fail_next(Endpoint::AccountLogout, Fault::Status(503), 1);
    let faulted = h
        .get(&format!(
            "/oauth/logout?client_id={CLIENT_ID}&logout_redirect_uri={target}"
        ))
        .await;
    assert_eq!(faulted.status, 503);
    assert_eq!(standin.hits(Endpoint::AccountLogout), 2);
}

// ---------------------------------------------------------------- consent items

impl<S, R, B> Harness<S, R>
where
    S: Service<R, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    async fn admin_get(&self, path_and_query: &str, key: &str) -> Reply {
        self.send(
            TestRequest::get()
                .uri(&self.path(path_and_query))
                .insert_header((header::AUTHORIZATION, format!("KakaoAK {key}"))),
        )
        .await
    }
}

fn nickname_item() -> Value {
    json!({"id":"profile_nickname","display_name":"닉네임","type":"PRIVACY","using":true,"agreed":true,"revocable":false})
}

#[actix_web::test]
async fn scopes_with_a_token_lists_every_configured_item_and_what_was_agreed() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    let h = harness!(standin.clone());
    let tokens = h.login(id, false).await;
    let token = tokens["access_token"].as_str().unwrap();
    let reply = h
        .with_bearer(TestRequest::get().uri("/v2/user/scopes"), token)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.assert_kakao_json();
    assert_eq!(
        reply.json(),
        json!({"id": id, "scopes": [
            nickname_item(),
            {"id":"account_email","display_name":"카카오계정(이메일)","type":"PRIVACY","using":true,"agreed":false},
            {"id":"openid","display_name":"OpenID Connect","type":"PRIVACY","using":true,"agreed":true,"revocable":false}
        ]})
    );
    // Consents accumulate: after agreeing to the email it is agreed and revocable.
    let more = h.auto_login(id, true, &[("scope", "account_email")]).await;
    let reply = h
        .with_bearer(
            TestRequest::get().uri("/v2/user/scopes"),
            more["access_token"].as_str().unwrap(),
        )
        .await;
    assert_eq!(
        reply.json()["scopes"][1],
        json!({"id":"account_email","display_name":"카카오계정(이메일)","type":"PRIVACY","using":true,"agreed":true,"revocable":true})
    );
    // While OIDC is off, openid is not an item.
    standin.set_oidc(false);
    let off = h
        .with_bearer(TestRequest::get().uri("/v2/user/scopes"), token)
        .await
        .json();
    assert_eq!(off["scopes"].as_array().unwrap().len(), 2);
    assert_eq!(standin.hits(Endpoint::Scopes), 3);
}

#[actix_web::test]
async fn scopes_with_the_admin_key_and_a_filter() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    let h = harness!(standin.clone());
    standin.issue_access_token(id);
    let filter = super::reply::percent_encode(r#"["profile_nickname","friends"]"#);
    let reply = h
        .admin_get(
            &format!("/v2/user/scopes?target_id_type=user_id&target_id={id}&scopes={filter}"),
            ADMIN_KEY,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json(), json!({"id": id, "scopes": [nickname_item()]}));
    let all = h
        .admin_get(
            &format!("/v2/user/scopes?target_id_type=user_id&target_id={id}"),
            ADMIN_KEY,
        )
        .await
        .json();
    assert_eq!(all["scopes"].as_array().unwrap().len(), 3);
    assert_eq!(all["scopes"][1]["agreed"], true);
    let bad_filter = h
        .admin_get(
            &format!("/v2/user/scopes?target_id_type=user_id&target_id={id}&scopes=account_email"),
            ADMIN_KEY,
        )
        .await;
    assert_eq!(
        (bad_filter.status, bad_filter.json()["code"].clone()),
        (400, json!(-2))
    );
}

#[actix_web::test]
async fn scopes_errors_are_the_kapi_ones() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    let stranger = standin.add_user(bob());
    let h = harness!(standin.clone());
    let token = standin.issue_access_token(id);
    let wrong_key = h
        .admin_get(
            &format!("/v2/user/scopes?target_id_type=user_id&target_id={id}"),
            "not-the-admin-key",
        )
        .await;
    assert_eq!(
        (wrong_key.status, wrong_key.json()["code"].clone()),
        (401, json!(-401))
    );
    let bad_token = h
        .with_bearer(TestRequest::get().uri("/v2/user/scopes"), "nope")
        .await;
    assert_eq!(
        bad_token.json(),
        json!({"msg":"this access token does not exist","code":-401})
    );
    let unlinked = h
        .admin_get(
            &format!("/v2/user/scopes?target_id_type=user_id&target_id={stranger}"),
            ADMIN_KEY,
        )
        .await;
    assert_eq!(
        (unlinked.status, unlinked.json()),
        (400, json!({"msg":"NotRegisteredUserException","code":-101}))
    );
    let unknown = h
        .admin_get(
            "/v2/user/scopes?target_id_type=user_id&target_id=4100000000000009999",
            ADMIN_KEY,
        )
        .await;
    assert_eq!(unknown.json()["code"], -101);
    let no_target = h.admin_get("/v2/user/scopes", ADMIN_KEY).await;
    assert_eq!(
        (no_target.status, no_target.json()["code"].clone()),
        (400, json!(-2))
    );
    let no_id = h
        .admin_get("/v2/user/scopes?target_id_type=user_id", ADMIN_KEY)
        .await;
    assert_eq!(no_id.json()["code"], -2);
    // A token of a user who unlinked since is -101.
    h.with_bearer(TestRequest::post().uri("/v1/user/unlink"), &token)
        .await;
    let after = h
        .with_bearer(TestRequest::get().uri("/v2/user/scopes"), &token)
        .await;
    assert_eq!(after.json()["code"], -101);
    standin.set_fault(
        Endpoint::Scopes,
        Some(Fault::KapiError {
            status: 500,
            code: -1,
        }),
    );
    assert_eq!(h.get("/v2/user/scopes").await.json()["code"], -1);
}

// ---------------------------------------------------------------- user ids

#[actix_web::test]
async fn user_ids_lists_linked_users_with_the_admin_key() {
    let standin = StandIn::new(config());
    let ids: Vec<i64> = (0..3).map(|_| standin.add_user(alice())).collect();
    let unlinked = standin.add_user(bob());
    for id in &ids {
        standin.issue_access_token(*id);
    }
    standin.set_issuer("http://localhost:8080/_kakao");
    let h = harness!(standin.clone());
    let reply = h.admin_get("/v1/user/ids", ADMIN_KEY).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.assert_kakao_json();
    assert_eq!(
        reply.json(),
        json!({"elements": ids, "total_count": 3, "before_url": null, "after_url": null})
    );
    assert!(!reply.text().contains(&unlinked.to_string()));
    assert!(
        reply.text().contains(&format!("[{},", ids[0])),
        "ids are integers"
    );
    let desc = h
        .admin_get("/v1/user/ids?order=desc", ADMIN_KEY)
        .await
        .json();
    assert_eq!(desc["elements"], json!([ids[2], ids[1], ids[0]]));
    assert_eq!(standin.hits(Endpoint::UserIds), 2);
}

#[actix_web::test]
async fn user_ids_pages_with_limit_and_from_id() {
    let standin = StandIn::new(config());
    let ids: Vec<i64> = (0..3).map(|_| standin.add_user(alice())).collect();
    for id in &ids {
        standin.issue_access_token(*id);
    }
    standin.set_issuer("http://localhost:8080/_kakao");
    let h = harness!(standin.clone());
    let base = "http://localhost:8080/_kakao";
    let first = h.admin_get("/v1/user/ids?limit=2", ADMIN_KEY).await.json();
    assert_eq!(first["elements"], json!([ids[0], ids[1]]));
    assert_eq!(first["total_count"], 3);
    assert_eq!(first["before_url"], Value::Null);
    let after = format!("{base}/v1/user/ids?limit=2&order=asc&from_id={}", ids[1]);
    assert_eq!(first["after_url"], after.as_str());
    let second = h
        .admin_get(after.strip_prefix(base).unwrap(), ADMIN_KEY)
        .await
        .json();
    assert_eq!(second["elements"], json!([ids[2]]));
    assert_eq!(second["after_url"], Value::Null);
    let before = format!("{base}/v1/user/ids?limit=2&order=desc&from_id={}", ids[2]);
    assert_eq!(second["before_url"], before.as_str());
    let back = h
        .admin_get(before.strip_prefix(base).unwrap(), ADMIN_KEY)
        .await
        .json();
    assert_eq!(back["elements"], json!([ids[1], ids[0]]));
    let past_the_end = h
        .admin_get(&format!("/v1/user/ids?from_id={}", ids[2]), ADMIN_KEY)
        .await
        .json();
    assert_eq!(past_the_end["elements"], json!([]));
}

#[actix_web::test]
async fn user_ids_needs_the_admin_key_and_valid_parameters() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    let token = standin.issue_access_token(id);
    let h = harness!(standin.clone());
    let wrong_key = json!({"msg":"wrong admin key","code":-401});
    let wrong = h.admin_get("/v1/user/ids", "not-the-admin-key").await;
    assert_eq!((wrong.status, wrong.json()), (401, wrong_key.clone()));
    let missing = h.get("/v1/user/ids").await;
    assert_eq!((missing.status, missing.json()), (401, wrong_key.clone()));
    let bearer = h
        .with_bearer(TestRequest::get().uri("/v1/user/ids"), &token)
        .await;
    assert_eq!(bearer.json(), wrong_key);
    for query in [
        "limit=0",
        "limit=101",
        "limit=ten",
        "order=up",
        "from_id=abc",
    ] {
        let reply = h
            .admin_get(&format!("/v1/user/ids?{query}"), ADMIN_KEY)
            .await;
        assert_eq!(
            (reply.status, reply.json()["code"].clone()),
            (400, json!(-2)),
            "{query}"
        );
    }
    let no_admin_key = harness!(StandIn::new(StandInConfig {
        admin_key: None,
        ..config()
    }));
    assert_eq!(
        no_admin_key.admin_get("/v1/user/ids", "").await.json(),
        wrong_key
    );
    standin.set_fault(
        Endpoint::UserIds,
        Some(Fault::KapiError {
            status: 429,
            code: -10,
        }),
    );
    let limited = h.admin_get("/v1/user/ids", ADMIN_KEY).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.json()["msg"], "API limit has been exceeded.");
}

// ---------------------------------------------------------------- faults and hits

#[actix_web::test]
async fn a_status_fault_answers_that_status_with_an_empty_body() {
    let standin = StandIn::new(config());
    standin.set_fault(Endpoint::Token, Some(Fault::Status(503)));
    let h = harness!(standin.clone());
    let reply = h
        .post_form("/oauth/token", &[("grant_type", "authorization_code")])
        .await;
    assert_eq!(reply.status, 503);
    assert!(reply.body.is_empty());
    standin.set_fault(Endpoint::Token, None);
    let normal = h
        .post_form("/oauth/token", &[("grant_type", "authorization_code")])
        .await;
    assert_eq!(normal.status, 401);
}

#[actix_web::test]
async fn a_delay_fault_waits_and_then_answers_normally() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    standin.set_fault(
        Endpoint::UserMe,
        Some(Fault::Delay(Duration::from_millis(150))),
    );
    let h = harness!(standin.clone());
    let token = standin.issue_access_token(id);
    let started = Instant::now();
    let reply = h.user_me(&token).await;
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["id"].as_i64(), Some(id));
}

#[actix_web::test]
async fn a_malformed_json_fault_sends_json_typed_garbage() {
    let standin = StandIn::new(config());
    standin.set_fault(Endpoint::TokenInfo, Some(Fault::MalformedJson));
    let h = harness!(standin);
    let reply = h.token_info("whatever").await;
    assert_eq!(reply.status, 200);
    reply.assert_kakao_json();
    assert!(serde_json::from_slice::<Value>(&reply.body).is_err());
}

#[actix_web::test]
async fn a_wrong_shape_fault_sends_valid_json_of_another_shape() {
    let standin = StandIn::new(config());
    standin.set_fault(Endpoint::UserMe, Some(Fault::WrongShape));
    let h = harness!(standin);
    let reply = h.user_me("whatever").await;
    assert_eq!(reply.status, 200);
    reply.assert_kakao_json();
    assert_eq!(reply.json(), json!({"unexpected": true}));
}

#[actix_web::test]
async fn a_kapi_error_fault_sends_kakaos_kapi_error_body() {
    let standin = StandIn::new(config());
    standin.set_fault(
        Endpoint::UserMe,
        Some(Fault::KapiError {
            status: 503,
            code: -9798,
        }),
    );
    standin.set_fault(
        Endpoint::Unlink,
        Some(Fault::KapiError {
            status: 400,
            code: -101,
        }),
    );
    let h = harness!(standin);
    let reply = h.user_me("whatever").await;
    assert_eq!(reply.status, 503);
    reply.assert_kakao_json();
    let body = reply.json();
    assert_eq!(body["code"], -9798);
    assert!(body["msg"].is_string());
    assert_eq!(body.as_object().unwrap().len(), 2);
    let unlink = h
        .with_bearer(TestRequest::post().uri("/v1/user/unlink"), "x")
        .await;
    assert_eq!(
        unlink.json(),
        json!({"msg":"NotRegisteredUserException","code":-101})
    );
}

#[actix_web::test]
async fn a_kauth_error_fault_sends_kakaos_kauth_error_body() {
    let standin = StandIn::new(config());
    standin.set_fault(
        Endpoint::Token,
        Some(Fault::KauthError {
            status: 400,
            error: "invalid_grant".to_owned(),
            error_code: "KOE320".to_owned(),
        }),
    );
    let h = harness!(standin);
    let reply = h.exchange("anything", None).await;
    assert_eq!(reply.status, 400);
    reply.assert_kakao_json();
    let body = reply.json();
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(body["error_code"], "KOE320");
    assert!(body["error_description"].is_string());
}

#[actix_web::test]
async fn an_authorize_error_fault_redirects_back_with_the_error_and_state() {
    let standin = StandIn::new(config());
    standin.add_user(alice());
    standin.fail_next(
        Endpoint::Authorize,
        Fault::AuthorizeError("server_error".to_owned()),
        1,
    );
    let h = harness!(standin);
    let reply = h.authorize(&[("state", "st")]).await;
    assert_eq!(
        reply.location(),
        format!("{REDIRECT}?error=server_error&state=st")
    );
    // The client and redirect URI are still checked first.
    h.standin.fail_next(
        Endpoint::Authorize,
        Fault::AuthorizeError("server_error".to_owned()),
        1,
    );
    let bad = h
        .authorize_raw(&[
            ("client_id", CLIENT_ID),
            ("redirect_uri", "http://evil.example/"),
            ("response_type", "code"),
        ])
        .await;
    assert_page_error(&bad, "KOE006");
    assert_eq!(h.authorize(&[]).await.status, 200);
}

#[actix_web::test]
async fn a_redirect_fault_answers_302_to_the_given_url() {
    let standin = StandIn::new(config());
    standin.set_fault(
        Endpoint::TokenInfo,
        Some(Fault::Redirect("http://elsewhere.example/login".to_owned())),
    );
    let h = harness!(standin);
    let reply = h.token_info("x").await;
    assert_eq!(reply.location(), "http://elsewhere.example/login");
    assert!(reply.body.is_empty());
}

#[actix_web::test]
async fn a_foreign_app_id_fault_reports_another_apps_id_in_token_info() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    standin.set_fault(Endpoint::TokenInfo, Some(Fault::ForeignAppId(999)));
    let h = harness!(standin.clone());
    let token = standin.issue_access_token(id);
    let info = h.token_info(&token).await.json();
    assert_eq!(info["app_id"], 999);
    assert_eq!(info["id"].as_i64(), Some(id));
}

#[actix_web::test]
async fn fail_next_applies_only_the_given_number_of_times_in_order_before_the_sticky_fault() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    let h = harness!(standin.clone());
    let token = standin.issue_access_token(id);
    standin.set_fault(Endpoint::UserMe, Some(Fault::Status(418)));
    standin.fail_next(Endpoint::UserMe, Fault::Status(500), 2);
    standin.fail_next(Endpoint::UserMe, Fault::Status(503), 1);
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(h.user_me(&token).await.status);
    }
    assert_eq!(statuses, vec![500, 500, 503, 418, 418]);
    standin.set_fault(Endpoint::UserMe, None);
    assert_eq!(h.user_me(&token).await.status, 200);
    standin.fail_next(Endpoint::UserMe, Fault::Status(500), 0);
    assert_eq!(h.user_me(&token).await.status, 200);
}

#[actix_web::test]
async fn hits_count_every_request_per_endpoint_including_faulted_and_failed_ones() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    let h = harness!(standin.clone());
    standin.fail_next(Endpoint::TokenInfo, Fault::Status(500), 1);
    h.token_info("x").await;
    h.token_info("x").await;
    h.login(id, true).await;
    h.user_me("bad").await;
    h.with_bearer(TestRequest::post().uri("/v1/user/logout"), "bad")
        .await;
    assert_eq!(standin.hits(Endpoint::TokenInfo), 2);
    assert_eq!(standin.hits(Endpoint::Authorize), 1);
    assert_eq!(standin.hits(Endpoint::Token), 1);
    assert_eq!(standin.hits(Endpoint::UserMe), 1);
    assert_eq!(standin.hits(Endpoint::Logout), 1);
    assert_eq!(standin.hits(Endpoint::Unlink), 0);
}

// ---------------------------------------------------------------- real server

#[actix_web::test]
async fn start_serves_the_stand_in_on_a_local_port() {
    let running = StandIn::start(config()).await.unwrap();
    assert!(running.base_url.starts_with("http://127.0.0.1:"));
    let id = running.standin.add_user(alice());
    let token = running.standin.issue_access_token(id);
    let client = awc::Client::default();
    let mut resp = client
        .get(format!("{}/v2/user/me", running.base_url))
        .insert_header((header::AUTHORIZATION, format!("Bearer {token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = serde_json::from_slice(&resp.body().await.unwrap()).unwrap();
    assert_eq!(body["id"].as_i64(), Some(id));
    assert_eq!(running.standin.hits(Endpoint::UserMe), 1);
    // Its issuer is its own base URL, so discovery points back at it.
    let mut resp = client
        .get(format!(
            "{}/.well-known/openid-configuration",
            running.base_url
        ))
        .send()
        .await
        .unwrap();
    let discovery: Value = serde_json::from_slice(&resp.body().await.unwrap()).unwrap();
    assert_eq!(discovery["issuer"], running.base_url.as_str());
    assert_eq!(
        discovery["jwks_uri"],
        format!("{}/.well-known/jwks.json", running.base_url)
    );
    let id_token = running.standin.mint_id_token(id, CLIENT_ID, None);
    assert_eq!(jwt_part(&id_token, 1)["iss"], running.base_url.as_str());
    running.handle.stop(true).await;
}

// ---------------------------------------------------------------- OpenID Connect

/// A JWT's header or payload (part 0 or 1) as JSON, without checking anything.
fn jwt_part(token: &str, part: usize) -> Value {
    let text = token.split('.').nth(part).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(text).unwrap()).unwrap()
}

/// Verify `token` the way an app should: RS256 only, the key from `jwks` named by the header's
/// `kid`, the stand-in's issuer and our client id as audience.
fn verify_id_token(token: &str, jwks: &Value, issuer: &str) -> jsonwebtoken::errors::Result<Value> {
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks.clone()).unwrap();
    let kid = jsonwebtoken::decode_header(token)?.kid.unwrap_or_default();
    let jwk = set
        .find(&kid)
        .ok_or(jsonwebtoken::errors::ErrorKind::InvalidKeyFormat)?;
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk)?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[CLIENT_ID]);
    validation.set_issuer(&[issuer]);
    validation.leeway = 0;
    jsonwebtoken::decode::<Value>(token, &key, &validation).map(|data| data.claims)
}

impl<S, R, B> Harness<S, R>
where
    S: Service<R, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    async fn jwks(&self) -> Value {
        let reply = self.get("/.well-known/jwks.json").await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.assert_kakao_json();
        reply.json()
    }

    /// Auto-consent as `kakao_id` with these extra authorize parameters; the token answer.
    async fn auto_login(&self, kakao_id: i64, share_email: bool, extra: &[(&str, &str)]) -> Value {
        self.standin.set_auto_consent(Some(Consent::Agree {
            kakao_id,
            share_email,
        }));
        let code = self.authorize(extra).await.redirect_params()["code"].clone();
        let reply = self.exchange(&code, None).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()
    }

    async fn refresh(&self, refresh_token: &str) -> Value {
        let reply = self
            .post_form(
                "/oauth/token",
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", CLIENT_ID),
                    ("client_secret", SECRET),
                    ("refresh_token", refresh_token),
                ],
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()
    }
}

#[actix_web::test]
async fn the_jwks_publishes_the_current_key_in_kakaos_shape() {
    let standin = StandIn::new(config());
    let h = harness!(standin.clone());
    let jwks = h.jwks().await;
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = keys[0].as_object().unwrap();
    let names: Vec<&str> = key.keys().map(String::as_str).collect();
    assert_eq!(names.len(), 6);
    for name in ["kid", "kty", "alg", "use", "n", "e"] {
        assert!(key.contains_key(name), "{name} missing: {jwks}");
    }
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["e"], "AQAB");
    let n = key["n"].as_str().unwrap();
    assert!(!n.contains('=') && !n.contains('+') && !n.contains('/'));
    let modulus = URL_SAFE_NO_PAD.decode(n).unwrap();
    assert_eq!(modulus.len(), 256, "an RSA 2048 modulus");
    assert!(modulus[0] >= 0x80);
    let kid = key["kid"].as_str().unwrap();
    assert_eq!(kid.len(), 30);
    assert!(
        kid.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    let digest: String = Sha256::digest(&modulus)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(kid, &digest[..30]);
    // Another stand-in in the same process shares the pool: same key #0.
    let other = harness!(StandIn::new(config()));
    assert_eq!(other.jwks().await, jwks);
    assert_eq!(standin.hits(Endpoint::Jwks), 1);
}

#[actix_web::test]
async fn the_jwks_is_counted_and_takes_faults() {
    let standin = StandIn::new(config());
    standin.fail_next(Endpoint::Jwks, Fault::Status(503), 1);
    let h = harness!(standin.clone());
    assert_eq!(h.get("/.well-known/jwks.json").await.status, 503);
    standin.set_fault(Endpoint::Jwks, Some(Fault::MalformedJson));
    let garbage = h.get("/.well-known/jwks.json").await;
    assert!(serde_json::from_slice::<Value>(&garbage.body).is_err());
    standin.set_fault(Endpoint::Jwks, None);
    assert_eq!(h.jwks().await["keys"].as_array().unwrap().len(), 1);
    assert_eq!(standin.hits(Endpoint::Jwks), 3);
}

#[actix_web::test]
async fn the_discovery_document_has_kakaos_shape_with_urls_from_the_issuer() {
    let standin = StandIn::new(config());
    let h = harness!(standin.clone(), "/_kakao");
    let before = h.get("/.well-known/openid-configuration").await;
    assert_eq!(before.json()["issuer"], "http://stand-in.invalid");
    standin.set_issuer("http://localhost:8080/_kakao/");
    let reply = h.get("/.well-known/openid-configuration").await;
    assert_eq!(reply.status, 200);
    reply.assert_kakao_json();
    let base = "http://localhost:8080/_kakao";
    assert_eq!(
        reply.json(),
        json!({
            "issuer": base,
            "authorization_endpoint": format!("{base}/oauth/authorize"),
            "token_endpoint": format!("{base}/oauth/token"),
            "userinfo_endpoint": format!("{base}/v1/oidc/userinfo"),
            "jwks_uri": format!("{base}/.well-known/jwks.json"),
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "request_uri_parameter_supported": false,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["iss","aud","sub","auth_time","exp","iat","nonce","nickname","picture","email"]
        })
    );
    assert_eq!(standin.hits(Endpoint::Jwks), 0);
}

#[actix_web::test]
async fn the_code_exchange_answers_an_id_token_that_verifies_with_the_published_key() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    standin.set_issuer("http://localhost:8080/_kakao");
    let h = harness!(standin.clone());
    let before = chrono::Utc::now().timestamp();
    let tokens = h.login(id, true).await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let header = jwt_part(id_token, 0);
    let jwks = h.jwks().await;
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["kid"], jwks["keys"][0]["kid"]);
    let claims = verify_id_token(id_token, &jwks, "http://localhost:8080/_kakao").unwrap();
    assert_eq!(claims["iss"], "http://localhost:8080/_kakao");
    assert_eq!(claims["aud"], CLIENT_ID);
    assert_eq!(claims["sub"], json!(id.to_string()), "sub is a string");
    let iat = claims["iat"].as_i64().unwrap();
    assert!(iat >= before && iat <= chrono::Utc::now().timestamp());
    assert_eq!(claims["exp"].as_i64().unwrap(), iat + 21_599);
    let auth_time = claims["auth_time"].as_i64().unwrap();
    assert!(auth_time >= before && auth_time <= iat);
    assert_eq!(claims["nickname"], "앨리스");
    assert_eq!(claims["email"], "alice@example.com");
    assert!(claims.get("nonce").is_none(), "no nonce was sent");
    assert!(claims.get("picture").is_none());
    // Another audience or issuer does not verify.
    assert!(verify_id_token(id_token, &jwks, "https://kauth.kakao.com").is_err());
}

#[actix_web::test]
async fn the_nonce_is_echoed_raw() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    let h = harness!(standin);
    let nonce = "n 0+/=é&x";
    let tokens = h.auto_login(id, true, &[("nonce", nonce)]).await;
    let claims = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(claims["nonce"], nonce);
    // The consent form carries it through as well.
    h.standin.set_auto_consent(None);
    let page = h.authorize(&[("nonce", nonce)]).await;
    let hidden: HashMap<String, String> = hidden_fields(&page.text()).into_iter().collect();
    assert_eq!(hidden["nonce"], nonce);
    let id_text = id.to_string();
    let redirect = h
        .submit_consent(&page, &[("account", &id_text), ("action", "agree")])
        .await;
    let code = redirect.redirect_params()["code"].clone();
    let tokens = h.exchange(&code, None).await.json();
    assert_eq!(
        jwt_part(tokens["id_token"].as_str().unwrap(), 1)["nonce"],
        nonce
    );
}

#[actix_web::test]
async fn the_email_claim_needs_consent_and_a_valid_verified_address() {
    let standin = StandIn::new(config());
    let alice_id = standin.add_user(alice());
    let unverified = standin.add_user(bob());
    let invalid = standin.add_user(TestUser {
        nickname: None,
        email: Some("taken@example.com".to_owned()),
        email_verified: true,
        email_valid: false,
    });
    let h = harness!(standin);
    let claims = |tokens: &Value| jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    let declined = claims(&h.auto_login(alice_id, false, &[]).await);
    assert!(declined.get("email").is_none());
    assert_eq!(declined["nickname"], "앨리스");
    let bob = claims(&h.auto_login(unverified, true, &[]).await);
    assert!(bob.get("email").is_none());
    assert_eq!(bob["nickname"], "Bob");
    let taken = claims(&h.auto_login(invalid, true, &[]).await);
    assert!(taken.get("email").is_none());
    assert!(
        taken.get("nickname").is_none(),
        "no nickname on the account"
    );
    let shared = claims(&h.auto_login(alice_id, true, &[]).await);
    assert_eq!(shared["email"], "alice@example.com");
}

#[actix_web::test]
async fn rotation_publishes_the_new_key_and_the_previous_one() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    let h = harness!(standin.clone());
    let old_token = h.auto_login(id, true, &[]).await["id_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = h.jwks().await["keys"][0]["kid"].clone();
    standin.rotate_signing_key();
    let jwks = h.jwks().await;
    let kids: Vec<Value> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].clone())
        .collect();
    assert_eq!(kids.len(), 2);
    assert_ne!(kids[0], first);
    assert_eq!(kids[1], first);
    let new_token = h.auto_login(id, true, &[]).await["id_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(jwt_part(&new_token, 0)["kid"], kids[0]);
    assert!(verify_id_token(&new_token, &jwks, "http://stand-in.invalid").is_ok());
    assert!(verify_id_token(&old_token, &jwks, "http://stand-in.invalid").is_ok());
    // Two rotations on, the first key is gone.
    standin.rotate_signing_key();
    let later = h.jwks().await;
    assert_eq!(later["keys"][1]["kid"], kids[0]);
    assert!(verify_id_token(&old_token, &later, "http://stand-in.invalid").is_err());
}

#[actix_web::test]
async fn with_oidc_off_there_is_no_id_token_and_openid_is_not_configured() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    standin.set_oidc(false);
    let h = harness!(standin.clone());
    let tokens = h.auto_login(id, true, &[]).await;
    assert!(tokens.get("id_token").is_none());
    assert_eq!(tokens["scope"], "account_email profile_nickname");
    standin.set_auto_consent(None);
    let reply = h.authorize(&[("scope", "openid")]).await;
    assert_page_error(&reply, "KOE205");
    assert!(reply.text().contains("openid"));
    // A refresh of that grant answers no ID token, even with OIDC on again.
    standin.set_oidc(true);
    let refreshed = h.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert!(refreshed.get("id_token").is_none());
}

#[actix_web::test]
async fn turning_oidc_off_stops_id_tokens_for_codes_already_granted() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    standin.set_auto_consent(Some(Consent::Agree {
        kakao_id: id,
        share_email: true,
    }));
    let h = harness!(standin.clone());
    let code = h.authorize(&[]).await.redirect_params()["code"].clone();
    standin.set_oidc(false);
    let tokens = h.exchange(&code, None).await.json();
    assert!(tokens.get("id_token").is_none());
    assert_eq!(tokens["scope"], "account_email profile_nickname");
}

#[actix_web::test]
async fn a_refresh_answers_an_id_token_when_the_grant_had_one() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    let h = harness!(standin.clone());
    let tokens = h.auto_login(id, true, &[("nonce", "n-1")]).await;
    let original = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    let refreshed = h.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    let id_token = refreshed["id_token"].as_str().unwrap();
    let claims = verify_id_token(id_token, &h.jwks().await, "http://stand-in.invalid").unwrap();
    assert_eq!(claims["sub"], original["sub"]);
    assert_eq!(claims["aud"], CLIENT_ID);
    assert_eq!(claims["auth_time"], original["auth_time"]);
    assert!(claims.get("nonce").is_none());
    assert_eq!(
        claims["exp"].as_i64().unwrap(),
        claims["iat"].as_i64().unwrap() + 21_599
    );
    // A renewed refresh token keeps answering ID tokens.
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    standin
        .lock()
        .refresh_tokens
        .get_mut(&refresh)
        .unwrap()
        .expires_at = Instant::now() + Duration::from_secs(3600);
    let renewed = h.refresh(&refresh).await;
    assert!(renewed["id_token"].is_string());
    let again = h.refresh(renewed["refresh_token"].as_str().unwrap()).await;
    assert!(again["id_token"].is_string());
    // With OIDC off, a refresh answers none.
    standin.set_oidc(false);
    let off = h.refresh(renewed["refresh_token"].as_str().unwrap()).await;
    assert!(off.get("id_token").is_none());
}

#[actix_web::test]
async fn an_additional_consent_gets_an_id_token_only_when_its_scope_names_openid() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    let h = harness!(standin);
    h.auto_login(id, false, &[]).await;
    let without = h.auto_login(id, true, &[("scope", "account_email")]).await;
    assert!(without.get("id_token").is_none());
    assert_eq!(without["scope"], "account_email profile_nickname");
    let with = h
        .auto_login(id, true, &[("scope", "account_email,openid")])
        .await;
    assert_eq!(with["scope"], "account_email openid profile_nickname");
    let claims = jwt_part(with["id_token"].as_str().unwrap(), 1);
    assert_eq!(claims["email"], "alice@example.com");
    // The consent page treats `account_email,openid` as an email-only request: email required.
    h.standin.set_auto_consent(None);
    let page = h.authorize(&[("scope", "account_email,openid")]).await;
    assert!(page.text().contains("[필수] 카카오계정(이메일) 제공 동의"));
}

/// The kinds of `jsonwebtoken` errors, for asserting why a token was refused.
fn refusal(result: jsonwebtoken::errors::Result<Value>) -> jsonwebtoken::errors::ErrorKind {
    result.expect_err("the token must be refused").into_kind()
}

/// One login with `fault` set; the ID token (or `None`), the sent nonce, and the JWKS.
async fn login_with_id_token_fault(fault: IdTokenFault) -> (Option<String>, i64, Value) {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    standin.set_id_token_fault(Some(fault));
    let h = harness!(standin);
    let tokens = h.auto_login(id, true, &[("nonce", "the-nonce")]).await;
    let jwks = h.jwks().await;
    let token = tokens
        .get("id_token")
        .and_then(Value::as_str)
        .map(str::to_owned);
    (token, id, jwks)
}

const ISSUER: &str = "http://stand-in.invalid";

#[actix_web::test]
async fn id_token_fault_omit_leaves_the_id_token_out() {
    let (token, _, _) = login_with_id_token_fault(IdTokenFault::Omit).await;
    assert!(token.is_none());
}

#[actix_web::test]
async fn id_token_faults_on_claims_keep_a_valid_signature() {
    let (token, id, jwks) = login_with_id_token_fault(IdTokenFault::WrongNonce).await;
    let claims = verify_id_token(&token.unwrap(), &jwks, ISSUER).unwrap();
    assert_ne!(claims["nonce"], "the-nonce");
    assert!(claims["nonce"].is_string());

    let (token, _, jwks) = login_with_id_token_fault(IdTokenFault::WrongAudience).await;
    let token = token.unwrap();
    assert_ne!(jwt_part(&token, 1)["aud"], CLIENT_ID);
    assert_eq!(
        refusal(verify_id_token(&token, &jwks, ISSUER)),
        jsonwebtoken::errors::ErrorKind::InvalidAudience
    );

    let (token, _, jwks) = login_with_id_token_fault(IdTokenFault::WrongIssuer).await;
    let token = token.unwrap();
    assert_eq!(
        jwt_part(&token, 1)["iss"],
        "http://stand-in.invalid/wrong-issuer"
    );
    assert_eq!(
        refusal(verify_id_token(&token, &jwks, ISSUER)),
        jsonwebtoken::errors::ErrorKind::InvalidIssuer
    );

    let (token, _, jwks) = login_with_id_token_fault(IdTokenFault::WrongSubject).await;
    let claims = verify_id_token(&token.unwrap(), &jwks, ISSUER).unwrap();
    assert_eq!(claims["sub"], json!((id + 1).to_string()));
    assert_eq!(claims["nonce"], "the-nonce");
}

#[actix_web::test]
async fn id_token_faults_on_times() {
    let now = chrono::Utc::now().timestamp();
    let (token, _, jwks) = login_with_id_token_fault(IdTokenFault::Expired).await;
    let token = token.unwrap();
    let claims = jwt_part(&token, 1);
    let exp = claims["exp"].as_i64().unwrap();
    assert!((now - 602..=now - 598).contains(&exp), "{exp} vs {now}");
    assert!(claims["iat"].as_i64().unwrap() < exp);
    assert!(claims["auth_time"].as_i64().unwrap() <= claims["iat"].as_i64().unwrap());
    assert_eq!(
        refusal(verify_id_token(&token, &jwks, ISSUER)),
        jsonwebtoken::errors::ErrorKind::ExpiredSignature
    );

    let (token, _, jwks) = login_with_id_token_fault(IdTokenFault::IssuedInFuture).await;
    let claims = verify_id_token(&token.unwrap(), &jwks, ISSUER).unwrap();
    let iat = claims["iat"].as_i64().unwrap();
    assert!((now + 3598..=now + 3602).contains(&iat), "{iat} vs {now}");
    assert_eq!(claims["exp"].as_i64().unwrap(), iat + 21_599);
}

#[actix_web::test]
async fn id_token_fault_bad_signature_flips_a_bit_of_a_real_signature() {
    let (token, _, jwks) = login_with_id_token_fault(IdTokenFault::BadSignature).await;
    let token = token.unwrap();
    assert_eq!(jwt_part(&token, 0)["kid"], jwks["keys"][0]["kid"]);
    let signature = URL_SAFE_NO_PAD
        .decode(token.rsplit('.').next().unwrap())
        .unwrap();
    assert_eq!(signature.len(), 256);
    assert_eq!(
        refusal(verify_id_token(&token, &jwks, ISSUER)),
        jsonwebtoken::errors::ErrorKind::InvalidSignature
    );
}

#[actix_web::test]
async fn id_token_fault_unknown_kid_signs_with_an_unpublished_key() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    standin.set_id_token_fault(Some(IdTokenFault::UnknownKid));
    let h = harness!(standin.clone());
    let token = h.auto_login(id, true, &[]).await["id_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let jwks = h.jwks().await;
    let kid = jwt_part(&token, 0)["kid"].as_str().unwrap().to_owned();
    assert_eq!(kid.len(), 30);
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["kid"] != kid.as_str())
    );
    assert!(verify_id_token(&token, &jwks, ISSUER).is_err());
    // It is a real pool key: once rotated in, the same token verifies.
    standin.rotate_signing_key();
    let rotated = h.jwks().await;
    assert_eq!(rotated["keys"][0]["kid"], kid.as_str());
    assert!(verify_id_token(&token, &rotated, ISSUER).is_ok());
}

#[actix_web::test]
async fn id_token_fault_alg_none_has_an_empty_signature() {
    let (token, _, jwks) = login_with_id_token_fault(IdTokenFault::AlgNone).await;
    let token = token.unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    assert_eq!(
        URL_SAFE_NO_PAD.decode(parts[0]).unwrap(),
        br#"{"alg":"none","typ":"JWT"}"#
    );
    assert_eq!(parts[2], "");
    assert_eq!(jwt_part(&token, 1)["nonce"], "the-nonce");
    assert!(verify_id_token(&token, &jwks, ISSUER).is_err());
}

#[actix_web::test]
async fn id_token_fault_hs256_with_public_key_is_the_algorithm_confusion_attack() {
    use rsa::pkcs8::DecodePublicKey as _;
    use rsa::traits::PublicKeyParts as _;
    let (token, _, jwks) = login_with_id_token_fault(IdTokenFault::Hs256WithPublicKey).await;
    let token = token.unwrap();
    let header = jwt_part(&token, 0);
    assert_eq!(header["alg"], "HS256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["kid"], jwks["keys"][0]["kid"]);
    // The HMAC secret is the PEM of the published key.
    let pem = super::keys::key(0).unwrap().public_pem.clone();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    assert!(pem.ends_with("-----END PUBLIC KEY-----\n"));
    let public = rsa::PublicKey::from_public_key_pem(&pem).unwrap();
    assert_eq!(
        URL_SAFE_NO_PAD.encode(public.n_bytes()),
        jwks["keys"][0]["n"].as_str().unwrap()
    );
    let mut hs256 = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    hs256.set_audience(&[CLIENT_ID]);
    let forged = jsonwebtoken::decode::<Value>(
        &token,
        &jsonwebtoken::DecodingKey::from_secret(pem.as_bytes()).unwrap(),
        &hs256,
    );
    assert!(forged.is_ok(), "{forged:?}");
    // An RS256-only verifier refuses it.
    assert!(verify_id_token(&token, &jwks, ISSUER).is_err());
}

#[actix_web::test]
async fn id_token_faults_apply_to_refreshes_and_clear() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    let h = harness!(standin.clone());
    let tokens = h.auto_login(id, true, &[]).await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    standin.set_id_token_fault(Some(IdTokenFault::WrongSubject));
    let faulted = h.refresh(&refresh).await;
    assert_eq!(
        jwt_part(faulted["id_token"].as_str().unwrap(), 1)["sub"],
        json!((id + 1).to_string())
    );
    standin.set_id_token_fault(Some(IdTokenFault::Omit));
    assert!(h.refresh(&refresh).await.get("id_token").is_none());
    standin.set_id_token_fault(None);
    let clean = h.refresh(&refresh).await;
    assert!(verify_id_token(clean["id_token"].as_str().unwrap(), &h.jwks().await, ISSUER).is_ok());
}

#[actix_web::test]
async fn mint_id_token_links_the_account_and_signs_with_the_current_key() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    standin.set_id_token_fault(Some(IdTokenFault::AlgNone));
    let h = harness!(standin.clone());
    let token = standin.mint_id_token(id, "native-app-key", Some("sdk nonce"));
    assert!(standin.lock().links.contains_key(&id));
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(h.jwks().await).unwrap();
    let kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(set.find(&kid).unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&["native-app-key"]);
    let claims = jsonwebtoken::decode::<Value>(&token, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["sub"], json!(id.to_string()));
    assert_eq!(claims["nonce"], "sdk nonce");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["nickname"], "앨리스");
    let without_nonce = standin.mint_id_token(id, "native-app-key", None);
    assert!(jwt_part(&without_nonce, 1).get("nonce").is_none());
    let expired = standin.mint_id_token_with(id, "native-app-key", None, IdTokenFault::Expired);
    assert!(jwt_part(&expired, 1)["exp"].as_i64().unwrap() < chrono::Utc::now().timestamp());
    assert_eq!(
        standin.mint_id_token_with(id, "native-app-key", None, IdTokenFault::Omit),
        ""
    );
    // Nothing went through the token endpoint.
    assert_eq!(standin.hits(Endpoint::Token), 0);
}

// ---------------------------------------------------------------- webhooks

/// One request a receiver got.
#[derive(Clone, Debug)]
struct Received {
    method: String,
    path: String,
    query: String,
    headers: HeaderMap,
    body: Bytes,
}

/// An app stand-in that records what reaches it and answers `status` (a 302 to `/elsewhere`
/// when 302); returns its base URL, its record and its handle.
async fn receiver(
    status: u16,
) -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
    actix_web::dev::ServerHandle,
) {
    let record = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Received>::new()));
    let for_server = record.clone();
    let server = actix_web::HttpServer::new(move || {
        let record = for_server.clone();
        App::new().default_service(web::to(move |req: actix_web::HttpRequest, body: Bytes| {
            let record = record.clone();
            async move {
                record.lock().unwrap().push(Received {
                    method: req.method().to_string(),
                    path: req.path().to_owned(),
                    query: req.query_string().to_owned(),
                    headers: req.headers().clone(),
                    body,
                });
                let mut reply = actix_web::HttpResponse::build(
                    actix_web::http::StatusCode::from_u16(status).unwrap(),
                );
                if status == 302 {
                    reply.insert_header((header::LOCATION, "/elsewhere"));
                }
                reply.body("answer")
            }
        }))
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .unwrap();
    let base = format!("http://{}", server.addrs()[0]);
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    (base, record, handle)
}

fn pairs(fields: &[(String, String)]) -> Vec<(&str, &str)> {
    fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

fn form_of(bytes: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(bytes).into_owned().collect()
}

#[actix_web::test]
async fn the_unlink_webhook_is_sent_as_kakao_sends_it_after_the_link_is_cut() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    let token = standin.issue_access_token(id);
    let (base, record, handle) = receiver(200).await;
    assert!(
        standin
            .send_unlink_webhook(id, "UNLINK_FROM_APPS", super::WebhookMethod::Post)
            .await
            .unwrap_err()
            .contains("no unlink webhook target"),
    );
    standin.set_webhook_targets(Some(format!("{base}/hook/unlink/")), None);
    let answer = standin
        .send_unlink_webhook(id, "UNLINK_FROM_APPS", super::WebhookMethod::Post)
        .await
        .unwrap();
    assert_eq!((answer.status, answer.body.as_str()), (200, "answer"));
    {
        let got = record.lock().unwrap();
        let post = &got[0];
        assert_eq!(
            (post.method.as_str(), post.path.as_str()),
            ("POST", "/hook/unlink/")
        );
        assert_eq!(
            post.headers.get(header::AUTHORIZATION).unwrap(),
            &format!("KakaoAK {ADMIN_KEY}")
        );
        assert!(
            post.headers
                .get(header::CONTENT_TYPE)
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("application/x-www-form-urlencoded")
        );
        let fields = form_of(&post.body);
        assert_eq!(fields["app_id"], APP_ID.to_string());
        assert_eq!(fields["user_id"], id.to_string(), "64-bit ids as strings");
        assert_eq!(fields["referrer_type"], "UNLINK_FROM_APPS");
    }
    // The link is cut at "Kakao" first (the token no longer works), but that was not the app's
    // own unlink call.
    assert_eq!(h_token_info_code(&standin, &token).await, -101);
    assert!(standin.unlinked().is_empty());

    // GET puts the fields in the query; raw sends exactly what it is given.
    standin
        .send_unlink_webhook(id, "ACCOUNT_DELETE", super::WebhookMethod::Get)
        .await
        .unwrap();
    standin
        .send_unlink_webhook_raw(&[("user_id", "1")], None, super::WebhookMethod::Post)
        .await
        .unwrap();
    {
        let got = record.lock().unwrap();
        assert_eq!(got[1].method, "GET");
        assert_eq!(
            form_of(got[1].query.as_bytes())["referrer_type"],
            "ACCOUNT_DELETE"
        );
        assert!(got[1].body.is_empty());
        assert!(got[2].headers.get(header::AUTHORIZATION).is_none());
        assert_eq!(form_of(&got[2].body).len(), 1);
    }
    handle.stop(true).await;

    // Kakao follows no redirect: a 302 is the answer.
    let (base, record, handle) = receiver(302).await;
    standin.set_webhook_targets(Some(format!("{base}/hook/")), None);
    let answer = standin
        .send_unlink_webhook(id, "UNLINK_FROM_APPS", super::WebhookMethod::Post)
        .await
        .unwrap();
    assert_eq!(answer.status, 302);
    assert_eq!(record.lock().unwrap().len(), 1);
    handle.stop(true).await;
}

/// What access_token_info answers for `token`, as a kapi code (0 when it is valid).
async fn h_token_info_code(standin: &StandIn, token: &str) -> i64 {
    let h = harness!(standin.clone());
    let reply = h.token_info(token).await;
    if reply.status == 200 {
        0
    } else {
        reply.json()["code"].as_i64().unwrap()
    }
}

#[actix_web::test]
async fn security_event_tokens_verify_with_the_jwks_and_each_fault_breaks_one_thing() {
    use super::{SetFault, SetOptions, events};
    let standin = StandIn::new(config());
    standin.set_issuer("http://kauth.test");
    let id = standin.add_user(alice());
    let h = harness!(standin.clone());
    let jwks = h.jwks().await;
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks.clone()).unwrap();
    let verify = |token: &str, audience: &str| {
        let kid = jsonwebtoken::decode_header(token).ok()?.kid?;
        let key = jsonwebtoken::DecodingKey::from_jwk(set.find(&kid)?).ok()?;
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["iss", "aud"]);
        validation.set_audience(&[audience]);
        validation.set_issuer(&["http://kauth.test"]);
        jsonwebtoken::decode::<Value>(token, &key, &validation)
            .ok()
            .map(|d| d.claims)
    };

    let token = standin.mint_security_event(id, events::USER_UNLINKED, &SetOptions::default());
    let header = jwt_part(&token, 0);
    assert_eq!(header["typ"], "secevent+jwt");
    assert_eq!(header["alg"], "RS256");
    let claims = verify(&token, CLIENT_ID).expect("verifies with the JWKS");
    assert_eq!(claims["sub"], json!(id.to_string()));
    assert_eq!(claims["iss"], "http://kauth.test");
    assert!(claims["jti"].as_str().unwrap().len() >= 16);
    assert!((claims["iat"].as_i64().unwrap() - chrono::Utc::now().timestamp()).abs() < 5);
    assert_eq!(
        claims["events"][events::USER_UNLINKED]["reason"],
        "UNLINK_FROM_APPS"
    );
    let again = standin.mint_security_event(id, events::USER_UNLINKED, &SetOptions::default());
    assert_ne!(
        jwt_part(&again, 1)["jti"],
        claims["jti"],
        "a new jti each time"
    );

    // The subject inside the event; another audience.
    let inside = SetOptions {
        subject_in_event: true,
        audience: Some(APP_ID.to_string()),
        ..SetOptions::default()
    };
    let token = standin.mint_security_event(id, events::SESSIONS_REVOKED, &inside);
    let claims = verify(&token, &APP_ID.to_string()).unwrap();
    assert!(claims.get("sub").is_none());
    assert_eq!(
        claims["events"][events::SESSIONS_REVOKED]["subject"],
        json!({"format": "iss_sub", "iss": "http://kauth.test", "sub": id.to_string()})
    );

    let with = |fault: SetFault| {
        standin.mint_security_event(
            id,
            events::USER_UNLINKED,
            &SetOptions {
                fault: Some(fault),
                ..SetOptions::default()
            },
        )
    };
    for fault in [
        SetFault::BadSignature,
        SetFault::OtherKid,
        SetFault::AlgNone,
        SetFault::Hs256WithPublicKey,
        SetFault::WrongIssuer,
        SetFault::WrongAudience,
    ] {
        assert!(
            verify(&with(fault.clone()), CLIENT_ID).is_none(),
            "{fault:?} verified"
        );
    }
    let other = with(SetFault::OtherKid);
    let kid = jwt_part(&other, 0)["kid"].as_str().unwrap().to_owned();
    assert!(set.find(&kid).is_none(), "the JWKS does not publish it");
    assert_eq!(jwt_part(&with(SetFault::AlgNone), 0)["alg"], "none");
    assert_eq!(
        jwt_part(&with(SetFault::Hs256WithPublicKey), 0)["alg"],
        "HS256"
    );
    let expired = with(SetFault::Expired);
    let claims = verify(&expired, CLIENT_ID).expect("an old token still verifies");
    assert!(claims["iat"].as_i64().unwrap() < chrono::Utc::now().timestamp() - 3600);
}

#[actix_web::test]
async fn security_events_are_posted_as_secevent_jwt_and_unlinking_ones_cut_the_link_first() {
    use super::{SetFault, SetOptions, events};
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    let token = standin.issue_access_token(id);
    let (base, record, handle) = receiver(202).await;
    standin.set_webhook_targets(None, Some(format!("{base}/hook/events/")));

    let answer = standin
        .send_security_event(id, events::SESSIONS_REVOKED, &SetOptions::default())
        .await
        .unwrap();
    assert_eq!(answer.status, 202);
    assert_eq!(h_token_info_code(&standin, &token).await, 0, "still linked");
    // A forged user-unlinked changes nothing at "Kakao"; a real one cuts the link.
    let forged = SetOptions {
        fault: Some(SetFault::BadSignature),
        ..SetOptions::default()
    };
    standin
        .send_security_event(id, events::USER_UNLINKED, &forged)
        .await
        .unwrap();
    assert_eq!(h_token_info_code(&standin, &token).await, 0);
    standin
        .send_security_event(id, events::USER_UNLINKED, &SetOptions::default())
        .await
        .unwrap();
    assert_eq!(h_token_info_code(&standin, &token).await, -101);
    let got = record.lock().unwrap().clone();
    assert_eq!(got.len(), 3);
    for post in &got {
        assert_eq!(
            (post.method.as_str(), post.path.as_str()),
            ("POST", "/hook/events/")
        );
        assert_eq!(
            post.headers.get(header::CONTENT_TYPE).unwrap(),
            "application/secevent+jwt"
        );
        let body = std::str::from_utf8(&post.body).unwrap();
        assert_eq!(body.split('.').count(), 3, "a compact JWS: {body}");
    }
    assert!(
        jwt_part(std::str::from_utf8(&got[0].body).unwrap(), 1)["events"]
            .get(events::SESSIONS_REVOKED)
            .is_some()
    );
    // The webhook never touched the unlink endpoint.
    assert!(standin.unlinked().is_empty());
    handle.stop(true).await;
}

#[actix_web::test]
async fn unlink_on_the_consent_page_cuts_the_link_and_tells_the_app_with_both_webhooks() {
    let standin = StandIn::new(config());
    let alice_id = standin.add_user(alice());
    let bob_id = standin.add_user(bob());
    let token = standin.issue_access_token(alice_id);
    let (base, record, handle) = receiver(200).await;
    standin.set_webhook_targets(
        Some(format!("{base}/hook/unlink/")),
        Some(format!("{base}/hook/events/")),
    );
    let h = harness!(standin.clone(), "/_kakao");
    let page = h.authorize(&[("state", "s1")]).await;
    let html = page.text();
    // Only the linked account offers it, and its button belongs to the second form, so Enter
    // in the consent form still agrees.
    assert!(
        html.contains(&format!(r#"data-unlink="{alice_id}""#)),
        "{html}"
    );
    assert!(!html.contains(&format!(r#"data-unlink="{bob_id}""#)));
    assert!(html.contains(r#"form="standin-unlink""#));
    let default_button = html
        .split("<button")
        .skip(1)
        .map(|rest| &rest[..rest.find('>').unwrap()])
        .find(|tag| !tag.contains(r#"form="standin-unlink""#))
        .unwrap();
    assert!(
        default_button.contains(r#"value="agree""#),
        "{default_button}"
    );
    assert!(html.contains(r#"id="standin-unlink" method="post" action="unlink""#));

    // Both forms carry the request's hidden fields; post the second form's.
    let fields = hidden_fields(&html);
    let mut form: Vec<(String, String)> = fields[fields.len() / 2..].to_vec();
    form.push(("unlink".into(), alice_id.to_string()));
    let reply = h.post_form("/oauth/unlink", &pairs(&form)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let text = reply.text();
    assert!(text.contains("앱과의 연결을 끊었습니다."), "{text}");
    assert!(text.contains("연결 해제 웹훅: HTTP 200"), "{text}");
    assert!(
        text.contains("계정 상태 변경 웹훅 (user-unlinked): HTTP 200"),
        "{text}"
    );
    assert!(
        !text.contains(&format!(r#"data-unlink="{alice_id}""#)),
        "no longer linked"
    );
    assert_eq!(h_token_info_code(&standin, &token).await, -101);
    let paths: Vec<String> = record
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(paths, ["/hook/unlink/", "/hook/events/"]);

    // An account that is not linked: a notice, nothing sent.
    form.pop();
    form.push(("unlink".into(), bob_id.to_string()));
    let reply = h.post_form("/oauth/unlink", &pairs(&form)).await;
    assert!(reply.text().contains("이 앱과 연결된 계정이 아닙니다."));
    assert_eq!(record.lock().unwrap().len(), 2);
    // A request the consent page would refuse is refused here too.
    let reply = h
        .post_form(
            "/oauth/unlink",
            &[("client_id", "someone-else"), ("unlink", "1")],
        )
        .await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    handle.stop(true).await;
}

#[actix_web::test]
async fn the_control_endpoints_send_webhooks_for_tests_driving_a_running_server() {
    let standin = StandIn::new(config());
    let id = standin.add_user(alice());
    let h = harness!(standin.clone());
    let send = |path: &'static str, body: Value| {
        TestRequest::post()
            .uri(path)
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .set_payload(body.to_string())
    };
    let reply = h
        .send(send("/_standin/webhooks/unlink", json!({"kakao_id": id})))
        .await;
    assert_eq!(reply.status, 502, "no target yet: {}", reply.text());
    assert!(reply.json()["error"].as_str().unwrap().contains("target"));
    let (base, record, handle) = receiver(202).await;
    standin.set_webhook_targets(
        Some(format!("{base}/unlink/")),
        Some(format!("{base}/events/")),
    );
    let reply = h
        .send(send(
            "/_standin/webhooks/unlink",
            json!({"kakao_id": id, "referrer_type": "ACCOUNT_DELETE", "method": "GET"}),
        ))
        .await;
    assert_eq!(reply.json(), json!({"status": 202, "body": "answer"}));
    let reply = h
        .send(send(
            "/_standin/webhooks/event",
            json!({"kakao_id": id, "event": super::events::ACCOUNT_DISABLED, "subject_in_event": true}),
        ))
        .await;
    assert_eq!(reply.json()["status"], 202);
    let got = record.lock().unwrap().clone();
    assert_eq!(got[0].method, "GET");
    assert!(got[0].query.contains("referrer_type=ACCOUNT_DELETE"));
    let event = jwt_part(std::str::from_utf8(&got[1].body).unwrap(), 1);
    assert_eq!(
        event["events"][super::events::ACCOUNT_DISABLED]["subject"]["sub"],
        json!(id.to_string())
    );
    for bad in [json!({"event": "x"}), json!({"kakao_id": "nope"})] {
        let reply = h.send(send("/_standin/webhooks/event", bad)).await;
        assert_eq!(reply.status, 400);
    }
    let reply = h
        .send(send(
            "/_standin/webhooks/unlink",
            json!({"kakao_id": id, "method": "PUT"}),
        ))
        .await;
    assert_eq!(reply.status, 400);
    handle.stop(true).await;
}
