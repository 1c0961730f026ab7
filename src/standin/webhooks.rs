//! The stand-in as the sender of Kakao's two Kakao Login webhooks (kakao-api-2026-12.md §1.5):
//!
//! * the **unlink webhook**: `app_id`, `user_id`, `referrer_type` as a GET query or a POST form,
//!   with `Authorization: KakaoAK {admin key}`; Kakao follows no redirects and waits 3 seconds;
//! * the **account status change webhook**: a POST of a Security Event Token (RFC 8417) as
//!   `application/secevent+jwt`, signed RS256 with the same keys as the ID tokens (header
//!   `typ: secevent+jwt`), claims `iss`, `aud`, `iat`, `jti`, `events` and a subject, either a
//!   top-level `sub` or `events[uri].subject` (`format: iss_sub`). Those wire details come from
//!   third-party receivers, not Kakao's own text; both subject forms are seen, so both can be
//!   sent.
//!
//! Where the app receives them is set with [`StandIn::set_webhook_targets`]. Tests send through
//! [`StandIn::send_unlink_webhook`] and [`StandIn::send_security_event`] (which first change the
//! stand-in's world as Kakao would: the link is cut before Kakao says it is), or forge what
//! only an attacker would send ([`StandIn::send_unlink_webhook_raw`], [`SetFault`]); tests that
//! drive a running server from outside use the control endpoints `POST /_standin/webhooks/unlink`
//! and `POST /_standin/webhooks/event`. A person does it by hand: "연결 끊기" beside a linked
//! account on the consent page.

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::oidc::{self, Signing};
use super::reply::{self, Params};
use super::state::{State, random_token, unix_now};
use super::{StandIn, oauth};

/// Event URIs of the account status change webhook, as third-party receivers name them.
pub mod events {
    /// OAUTH: the person linked the app (arrives at sign-up).
    pub const USER_LINKED: &str =
        "https://schemas.openid.net/secevent/oauth/event-type/user-linked";
    /// OAUTH: the link is gone; `reason` carries the unlink webhook's referrer type.
    pub const USER_UNLINKED: &str =
        "https://schemas.openid.net/secevent/oauth/event-type/user-unlinked";
    /// OAUTH: the person agreed to consent items (arrives at sign-up too).
    pub const USER_SCOPE_CONSENT: &str =
        "https://schemas.openid.net/secevent/oauth/event-type/user-scope-consent";
    /// OAUTH: the person's tokens were revoked.
    pub const TOKENS_REVOKED: &str =
        "https://schemas.openid.net/secevent/oauth/event-type/tokens-revoked";
    /// RISC: every session of the person should end.
    pub const SESSIONS_REVOKED: &str =
        "https://schemas.openid.net/secevent/risc/event-type/sessions-revoked";
    /// RISC: the Kakao account is disabled.
    pub const ACCOUNT_DISABLED: &str =
        "https://schemas.openid.net/secevent/risc/event-type/account-disabled";
    /// RISC: the Kakao account is enabled again.
    pub const ACCOUNT_ENABLED: &str =
        "https://schemas.openid.net/secevent/risc/event-type/account-enabled";
    /// RISC: the Kakao account is deleted.
    pub const ACCOUNT_PURGED: &str =
        "https://schemas.openid.net/secevent/risc/event-type/account-purged";
}

/// How long the stand-in waits for the app, like Kakao's 3 seconds with room for a slow test
/// machine (the app's own budget is what the tests check).
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest answer body kept.
const ANSWER_LIMIT: usize = 64 * 1024;

/// How the unlink webhook is sent (Kakao uses either, as configured).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookMethod {
    /// Fields in the query string.
    Get,
    /// Fields as an `application/x-www-form-urlencoded` body.
    Post,
}

/// What the app answered a delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookAnswer {
    /// HTTP status (a redirect is returned as is: Kakao follows none).
    pub status: u16,
    /// The body, as text (lossy UTF-8, at most 64 KiB).
    pub body: String,
}

/// One way to break a Security Event Token, as an attacker would; everything else stays valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetFault {
    /// The RS256 signature with one bit flipped.
    BadSignature,
    /// Signed with a key the JWKS does not publish, its own `kid` in the header.
    OtherKid,
    /// `alg: none` and an empty signature.
    AlgNone,
    /// HS256 with the published public key's PEM as the secret (algorithm confusion).
    Hs256WithPublicKey,
    /// `iss` with `/wrong-issuer` appended.
    WrongIssuer,
    /// `aud` of another app.
    WrongAudience,
    /// `iat` two hours ago.
    Expired,
}

/// How a Security Event Token is made.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetOptions {
    /// Name the person in `events[uri].subject` instead of a top-level `sub`.
    pub subject_in_event: bool,
    /// `aud` (default: the REST API key, the stand-in's `client_id`).
    pub audience: Option<String>,
    /// The event's `reason` (default: `UNLINK_FROM_APPS` for `user-unlinked`, none otherwise).
    pub reason: Option<String>,
    /// Break it.
    pub fault: Option<SetFault>,
}

/// Where the app receives each webhook (unset: not sent).
#[derive(Clone, Debug, Default)]
pub(super) struct WebhookTargets {
    pub(super) unlink: Option<String>,
    pub(super) events: Option<String>,
}

/// A Security Event Token's claims.
#[derive(Clone, Debug, Serialize)]
struct SetClaims {
    iss: String,
    aud: String,
    iat: i64,
    jti: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    events: BTreeMap<String, serde_json::Value>,
}

/// What a Kakao-side change does to the stand-in's world before Kakao tells the app.
fn kakao_side_effect(state: &mut State, kakao_id: i64, event: &str) {
    if matches!(event, events::USER_UNLINKED | events::ACCOUNT_PURGED) {
        state.cut_link(kakao_id);
    }
}

impl StandIn {
    /// Set where the app receives the unlink webhook and the account status change webhook
    /// (full URLs, e.g. `http://127.0.0.1:8080/kakao/webhooks/unlink/`); `None` sends nothing.
    pub fn set_webhook_targets(&self, unlink: Option<String>, events: Option<String>) {
        self.lock().webhook_targets = WebhookTargets { unlink, events };
    }

    /// Do what Kakao does when a person cuts the app off: cut the link (tokens stop working, as
    /// after an unlink; [`StandIn::unlinked`] does not list it, that is the app's own calls),
    /// then send the unlink webhook with `referrer_type`, authenticated with the admin key.
    ///
    /// # Errors
    /// No unlink target or admin key is set, or the app could not be reached.
    pub async fn send_unlink_webhook(
        &self,
        kakao_id: i64,
        referrer_type: &str,
        method: WebhookMethod,
    ) -> Result<WebhookAnswer, String> {
        let admin_key = self
            .config()
            .admin_key
            .clone()
            .ok_or("the stand-in has no admin key to sign the unlink webhook with")?;
        self.lock().cut_link(kakao_id);
        let app_id = self.config().app_id.to_string();
        let user_id = kakao_id.to_string();
        let fields = [
            ("app_id", app_id.as_str()),
            ("user_id", user_id.as_str()),
            ("referrer_type", referrer_type),
        ];
        self.send_unlink_webhook_raw(&fields, Some(&format!("KakaoAK {admin_key}")), method)
            .await
    }

    /// Send the unlink webhook with exactly these fields and `Authorization` header (none when
    /// `None`), changing nothing in the stand-in: what a forger would send.
    ///
    /// # Errors
    /// No unlink target is set, or the app could not be reached.
    pub async fn send_unlink_webhook_raw(
        &self,
        fields: &[(&str, &str)],
        authorization: Option<&str>,
        method: WebhookMethod,
    ) -> Result<WebhookAnswer, String> {
        let target = self
            .lock()
            .webhook_targets
            .unlink
            .clone()
            .ok_or("no unlink webhook target is set")?;
        let client = client();
        let request = match method {
            WebhookMethod::Get => {
                let mut url = url::Url::parse(&target).map_err(|e| format!("{target}: {e}"))?;
                url.query_pairs_mut().extend_pairs(fields);
                client.get(url.as_str())
            }
            WebhookMethod::Post => client.post(&target),
        };
        let request = match authorization {
            Some(value) => request.insert_header(("authorization", value)),
            None => request,
        };
        let sent = match method {
            WebhookMethod::Get => request.send().await,
            WebhookMethod::Post => request.send_form(&fields).await,
        };
        answer(sent).await
    }

    /// A Security Event Token about `kakao_id` carrying one event `event_uri`, signed with the
    /// current key (or broken as `options.fault` says); changes nothing in the stand-in.
    ///
    /// # Panics
    /// If the signing key cannot be made or used (not expected to happen).
    pub fn mint_security_event(
        &self,
        kakao_id: i64,
        event_uri: &str,
        options: &SetOptions,
    ) -> String {
        let (claims, key_index) = {
            let state = self.lock();
            (
                self.set_claims(&state, kakao_id, event_uri, options),
                state.key_index,
            )
        };
        let (key_index, how) = match options.fault {
            Some(SetFault::BadSignature) => (key_index, Signing::BadSignature),
            // The next pool key: published keys are the current one and older ones.
            Some(SetFault::OtherKid) => (key_index + 1, Signing::Rs256),
            Some(SetFault::AlgNone) => (key_index, Signing::AlgNone),
            Some(SetFault::Hs256WithPublicKey) => (key_index, Signing::Hs256WithPublicKey),
            _ => (key_index, Signing::Rs256),
        };
        oidc::sign_jwt(&claims, "secevent+jwt", key_index, how)
            .unwrap_or_else(|err| panic!("cannot mint a security event token: {err}"))
    }

    /// POST `token` to the account status change webhook as Kakao does.
    ///
    /// # Errors
    /// No events target is set, or the app could not be reached.
    pub async fn post_security_event(&self, token: &str) -> Result<WebhookAnswer, String> {
        let target = self
            .lock()
            .webhook_targets
            .events
            .clone()
            .ok_or("no account status change webhook target is set")?;
        let sent = client()
            .post(&target)
            .insert_header(("content-type", "application/secevent+jwt"))
            .insert_header(("accept", "application/json"))
            .send_body(token.to_owned())
            .await;
        answer(sent).await
    }

    /// Do what Kakao does for `event_uri` (for `user-unlinked` and `account-purged` the link is
    /// cut first, unless the token is forged with a fault), then mint and post the token.
    ///
    /// # Errors
    /// As [`StandIn::post_security_event`].
    pub async fn send_security_event(
        &self,
        kakao_id: i64,
        event_uri: &str,
        options: &SetOptions,
    ) -> Result<WebhookAnswer, String> {
        if options.fault.is_none() {
            kakao_side_effect(&mut self.lock(), kakao_id, event_uri);
        }
        let token = self.mint_security_event(kakao_id, event_uri, options);
        self.post_security_event(&token).await
    }

    /// The claims of a token about `kakao_id`, with the claim faults applied.
    fn set_claims(
        &self,
        state: &State,
        kakao_id: i64,
        event_uri: &str,
        options: &SetOptions,
    ) -> SetClaims {
        let now = unix_now();
        let issuer = match options.fault {
            Some(SetFault::WrongIssuer) => format!("{}/wrong-issuer", state.issuer),
            _ => state.issuer.clone(),
        };
        let audience = match options.fault {
            Some(SetFault::WrongAudience) => "another-apps-rest-api-key".to_owned(),
            _ => options
                .audience
                .clone()
                .unwrap_or_else(|| self.config().client_id.clone()),
        };
        let mut event = serde_json::Map::new();
        if options.subject_in_event {
            event.insert(
                "subject".into(),
                serde_json::json!({
                    "format": "iss_sub",
                    "iss": state.issuer,
                    "sub": kakao_id.to_string(),
                }),
            );
        }
        let reason = options.reason.clone().or_else(|| {
            (event_uri == events::USER_UNLINKED).then(|| "UNLINK_FROM_APPS".to_owned())
        });
        if let Some(reason) = reason {
            event.insert("reason".into(), serde_json::Value::String(reason));
        }
        SetClaims {
            iss: issuer,
            aud: audience,
            iat: match options.fault {
                Some(SetFault::Expired) => now - 2 * 60 * 60,
                _ => now,
            },
            jti: random_token(24),
            sub: (!options.subject_in_event).then(|| kakao_id.to_string()),
            events: BTreeMap::from([(event_uri.to_owned(), serde_json::Value::Object(event))]),
        }
    }
}

/// The client every delivery uses: no redirects followed, Kakao's patience.
fn client() -> awc::Client {
    awc::Client::builder()
        .disable_redirects()
        .timeout(DELIVERY_TIMEOUT)
        .finish()
}

/// Read the app's answer.
async fn answer<S>(
    sent: Result<awc::ClientResponse<S>, awc::error::SendRequestError>,
) -> Result<WebhookAnswer, String>
where
    S: futures_util::Stream<Item = Result<Bytes, actix_web::error::PayloadError>> + Unpin,
{
    let mut response = sent.map_err(|e| format!("the app could not be reached: {e}"))?;
    let body = response
        .body()
        .limit(ANSWER_LIMIT)
        .await
        .map_err(|e| format!("the app's answer could not be read: {e}"))?;
    Ok(WebhookAnswer {
        status: response.status().as_u16(),
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// What the app answered, as one line of the consent page.
fn delivery_line(name: &str, sent: Result<WebhookAnswer, String>) -> String {
    match sent {
        Ok(answer) => format!("{name}: HTTP {}", answer.status),
        Err(err) => format!("{name}: 실패 ({err})"),
    }
}

/// `POST /oauth/unlink`, the consent page's "연결 끊기" on a linked account: cut the link as the
/// person would in their Kakao account settings, send both webhooks (unlink with
/// `UNLINK_FROM_APPS`, then `user-unlinked`) to whichever targets are set, and show the consent
/// page again with what the app answered.
pub(super) async fn unlink_from_consent(
    standin: StandIn,
    req: HttpRequest,
    body: Bytes,
) -> HttpResponse {
    let form = Params::parse(&body);
    let oidc = standin.lock().oidc;
    let request = match oauth::validate(standin.config(), oidc, &form) {
        Ok(request) if reply::is_form(&req) => request,
        Ok(_) => return reply::html(400, "연결 끊기 요청이 올바르지 않습니다.".to_owned()),
        Err(page) => return page.response(),
    };
    let kakao_id = form
        .get("unlink")
        .and_then(|id| id.parse::<i64>().ok())
        .filter(|id| standin.lock().links.contains_key(id));
    let Some(kakao_id) = kakao_id else {
        let notice = "이 앱과 연결된 계정이 아닙니다.".to_owned();
        return oauth::consent_page(&standin, &request, None, vec![notice]);
    };
    let targets = standin.lock().webhook_targets.clone();
    let mut notices = vec!["앱과의 연결을 끊었습니다.".to_owned()];
    if targets.unlink.is_some() {
        let sent = standin
            .send_unlink_webhook(kakao_id, "UNLINK_FROM_APPS", WebhookMethod::Post)
            .await;
        notices.push(delivery_line("연결 해제 웹훅", sent));
    }
    if targets.events.is_some() {
        let sent = standin
            .send_security_event(kakao_id, events::USER_UNLINKED, &SetOptions::default())
            .await;
        notices.push(delivery_line("계정 상태 변경 웹훅 (user-unlinked)", sent));
    }
    // With no target set nothing is sent, but the link is still cut, as on Kakao.
    standin.lock().cut_link(kakao_id);
    log::info!(
        "event=standin.unlinked kakao_id={kakao_id} deliveries={}",
        notices.len() - 1
    );
    oauth::consent_page(&standin, &request, None, notices)
}

/// A control request to send the unlink webhook (`POST /_standin/webhooks/unlink`).
#[derive(Debug, Deserialize)]
struct UnlinkControl {
    kakao_id: i64,
    #[serde(default = "default_referrer_type")]
    referrer_type: String,
    /// `GET` or `POST` (default).
    #[serde(default)]
    method: Option<String>,
}

fn default_referrer_type() -> String {
    "UNLINK_FROM_APPS".to_owned()
}

/// A control request to send a Security Event Token (`POST /_standin/webhooks/event`).
#[derive(Debug, Deserialize)]
struct EventControl {
    kakao_id: i64,
    /// The full event URI.
    event: String,
    #[serde(default)]
    subject_in_event: bool,
    #[serde(default)]
    audience: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

/// The answer of a control endpoint: what the app answered, or why nothing was delivered (502).
fn control_answer(sent: Result<WebhookAnswer, String>) -> HttpResponse {
    match sent {
        Ok(answer) => reply::json(
            200,
            &serde_json::json!({"status": answer.status, "body": answer.body}),
        ),
        Err(error) => reply::json(502, &serde_json::json!({"error": error})),
    }
}

/// Read a control request's JSON body, or the 400 answer.
fn control_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Box<HttpResponse>> {
    serde_json::from_slice(body).map_err(|e| {
        Box::new(reply::json(
            400,
            &serde_json::json!({"error": e.to_string()}),
        ))
    })
}

/// `POST /_standin/webhooks/unlink` with `{"kakao_id": ..., "referrer_type"?: ..., "method"?:
/// "GET"|"POST"}`: [`StandIn::send_unlink_webhook`] for tests that drive a running server
/// from outside; answers `{"status": ..., "body": ...}`.
pub(super) async fn control_unlink(
    standin: StandIn,
    _req: HttpRequest,
    body: Bytes,
) -> HttpResponse {
    let control: UnlinkControl = match control_body(&body) {
        Ok(control) => control,
        Err(response) => return *response,
    };
    let method = match control.method.as_deref() {
        None | Some("POST") => WebhookMethod::Post,
        Some("GET") => WebhookMethod::Get,
        Some(other) => {
            return reply::json(
                400,
                &serde_json::json!({"error": format!("method {other}")}),
            );
        }
    };
    let sent = standin
        .send_unlink_webhook(control.kakao_id, &control.referrer_type, method)
        .await;
    control_answer(sent)
}

/// `POST /_standin/webhooks/event` with `{"kakao_id": ..., "event": uri, "subject_in_event"?,
/// "audience"?, "reason"?}`: [`StandIn::send_security_event`], answered like `control_unlink`.
pub(super) async fn control_event(
    standin: StandIn,
    _req: HttpRequest,
    body: Bytes,
) -> HttpResponse {
    let control: EventControl = match control_body(&body) {
        Ok(control) => control,
        Err(response) => return *response,
    };
    let options = SetOptions {
        subject_in_event: control.subject_in_event,
        audience: control.audience,
        reason: control.reason,
        fault: None,
    };
    let sent = standin
        .send_security_event(control.kakao_id, &control.event, &options)
        .await;
    control_answer(sent)
}
