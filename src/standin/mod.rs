//! A faithful local stand-in ("fake") for Kakao's OAuth server (kauth) and user API (kapi), used by
//! the tests and by the dev server.
//!
//! It serves Kakao's paths with Kakao's JSON shapes and error bodies:
//!
//! * kauth: `GET /oauth/authorize` (with `state`, PKCE, `scope`, `nonce`, `prompt` and
//!   `login_hint`), `POST /oauth/token` (code and refresh grants, answering an RS256 `id_token`
//!   while OpenID Connect is on), `GET /oauth/logout` (Kakao Account logout),
//!   `GET /.well-known/jwks.json` and `GET /.well-known/openid-configuration`;
//! * kapi: `/v2/user/me`, `/v1/user/access_token_info`, `/v1/user/logout`, `/v1/user/unlink`,
//!   `GET /v2/user/scopes` and `GET /v1/user/ids` (admin key only);
//! * plus a Korean consent page (`POST /oauth/consent`) where a person picks or types a test
//!   Kakao account. Agreeing signs the browser in with a `standin_kakao_session` cookie, the
//!   Kakao Account session that `prompt=none` relies on and `/oauth/logout` ends. Beside each
//!   account linked to the app, "연결 끊기" (`POST /oauth/unlink`) cuts the app off
//!   as the person would in their Kakao account settings, and sends Kakao's two webhooks to the
//!   app (see `webhooks.rs`, also for the control endpoints under `/_standin/webhooks/`).
//!
//! Tests steer it through [`StandIn`]: add accounts, skip the consent page
//! ([`StandIn::set_auto_consent`], also as whichever account the `login_hint` names:
//! [`Consent::AgreeAsLoginHint`]), inject faults per [`Endpoint`] and into ID tokens
//! ([`StandIn::set_id_token_fault`]), count hits, mint or expire access tokens, mint ID tokens
//! ([`StandIn::mint_id_token`]), turn OpenID Connect off ([`StandIn::set_oidc`]), set the issuer
//! ([`StandIn::set_issuer`]), rotate the signing key ([`StandIn::rotate_signing_key`]), register
//! logout redirect URIs ([`StandIn::set_logout_redirect_uris`]), send Kakao's webhooks to the
//! app ([`StandIn::set_webhook_targets`], [`StandIn::send_unlink_webhook`],
//! [`StandIn::send_security_event`]) and inspect authorize requests, logouts and unlinks.
//!
//! Signing keys are RSA 2048, generated at run time into one pool that every stand-in in the
//! process shares (see `keys.rs`); none is ever committed. The behaviour follows `kakao-api.md`
//! (sections 1-8 and 10) and `kakao-api-2026-12.md` (sections 1.1-1.5); where Kakao's exact answer
//! is unknown, the code says so next to the choice it made.

mod kapi;
mod keys;
mod oauth;
mod oidc;
mod reply;
mod state;
#[cfg(test)]
mod tests;
mod webhooks;

pub use webhooks::{SetFault, SetOptions, WebhookAnswer, WebhookMethod, events};

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix_web::web::{self, Bytes};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};

use state::State;

/// How the stand-in's app is registered at "Kakao".
#[derive(Clone, Debug)]
pub struct StandInConfig {
    /// The REST API key the stand-in accepts as `client_id`.
    pub client_id: String,
    /// When `Some`, `/oauth/token` requires it as `client_secret` (`KOE010` otherwise).
    pub client_secret: Option<String>,
    /// The app id `access_token_info` reports.
    pub app_id: i64,
    /// Accepted as `Authorization: KakaoAK <key>` by logout, unlink, user/me and user/scopes, and
    /// required by user/ids.
    pub admin_key: Option<String>,
    /// Registered redirect URIs (compared byte for byte).
    pub redirect_uris: Vec<String>,
}

/// Why `req` did not come straight from this machine, if it did not.
fn not_from_this_machine(req: &HttpRequest) -> Option<&'static str> {
    const PROXY_HEADERS: [&str; 5] = [
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-real-ip",
    ];
    if PROXY_HEADERS.iter().any(|h| req.headers().contains_key(*h)) {
        return Some("a proxy header");
    }
    if !req.peer_addr().is_some_and(|peer| peer.ip().is_loopback()) {
        return Some("the peer is not loopback");
    }
    let host = req
        .headers()
        .get(actix_web::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let loopback_host = url::Url::parse(&format!("http://{host}/"))
        .ok()
        .and_then(|u| match u.host()? {
            url::Host::Domain(d) => Some(d.eq_ignore_ascii_case("localhost")),
            url::Host::Ipv4(ip) => Some(ip.is_loopback()),
            url::Host::Ipv6(ip) => Some(ip.is_loopback()),
        })
        .unwrap_or(false);
    if !loopback_host {
        return Some("the Host is not loopback");
    }
    None
}

/// Shared handle to one stand-in (cheap to clone); tests and the server hold it.
#[derive(Clone)]
pub struct StandIn {
    inner: Arc<Inner>,
}

/// What every handle shares.
struct Inner {
    config: StandInConfig,
    state: Mutex<State>,
}

impl std::fmt::Debug for StandIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandIn")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// A stand-in started on its own HTTP server by [`StandIn::start`].
pub struct RunningStandIn {
    /// Handle for steering the running stand-in.
    pub standin: StandIn,
    /// Where it listens, e.g. `http://127.0.0.1:40123` (no trailing slash).
    pub base_url: String,
    /// Stop it with `handle.stop(true).await`.
    pub handle: actix_web::dev::ServerHandle,
}

/// A Kakao account the consent page lists.
#[derive(Clone, Debug)]
pub struct TestUser {
    /// Profile nickname; `None` makes user/me report the nickname as not agreed.
    pub nickname: Option<String>,
    /// The Kakao account's email (`None`: an account without email).
    pub email: Option<String>,
    /// `is_email_verified`.
    pub email_verified: bool,
    /// `is_email_valid`.
    pub email_valid: bool,
}

/// What the person chose on the consent page (or what auto-consent returns).
#[derive(Clone, Debug)]
pub enum Consent {
    /// Agree as this Kakao account; `share_email` false = declined the account_email item.
    Agree {
        /// The account, as returned by [`StandIn::add_user`].
        kakao_id: i64,
        /// Whether the `account_email` item was agreed.
        share_email: bool,
    },
    /// Pressed cancel: redirect with `error=access_denied&error_description=User%20denied%20access`.
    Cancel,
    /// Agree, sharing the email, as the account whose email is the request's `login_hint`
    /// (compared ASCII case-insensitively), creating it first when there is none: nickname the
    /// email's local part, email verified and valid. So each new email is a new person and the
    /// same email the same person again (load tests: fresh and returning sign-ins without a
    /// consent page). A request without a `login_hint` gets the stand-in's 500 error page.
    AgreeAsLoginHint,
}

/// The stand-in's endpoints, for faults and hit counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `GET /oauth/authorize` (the consent form's POST is not counted).
    Authorize,
    /// `POST /oauth/token`.
    Token,
    /// `GET|POST /v2/user/me`.
    UserMe,
    /// `GET /v1/user/access_token_info`.
    TokenInfo,
    /// `POST /v1/user/logout`.
    Logout,
    /// `POST /v1/user/unlink`.
    Unlink,
    /// `GET /.well-known/jwks.json`.
    Jwks,
    /// `GET /oauth/logout` (Kakao Account logout).
    AccountLogout,
    /// `GET /v2/user/scopes`.
    Scopes,
    /// `GET /v1/user/ids`.
    UserIds,
}

/// A misbehaviour of the ID tokens the token endpoint answers (and of
/// [`StandIn::mint_id_token_with`]), for testing an app's ID-token validation. Each one breaks
/// exactly one thing; everything else stays valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdTokenFault {
    /// Leave `id_token` out of the token answer (the rest of the answer, `scope` included, is
    /// unchanged, and a refresh of that grant still tries to answer one).
    Omit,
    /// A `nonce` other than the one the authorize request sent (also when it sent none).
    WrongNonce,
    /// `aud` is `another-apps-rest-api-key` instead of the `client_id` used.
    WrongAudience,
    /// `iss` is the issuer with `/wrong-issuer` appended, so an app comparing only a prefix is
    /// caught too.
    WrongIssuer,
    /// `exp` ten minutes ago, well past any clock-skew allowance (`iat` the access-token
    /// lifetime before it).
    Expired,
    /// `iat` an hour ahead (`exp` the access-token lifetime after it).
    IssuedInFuture,
    /// The RS256 signature with one bit flipped (still valid base64url of the right length).
    BadSignature,
    /// Signed with a pool key that the JWKS does not publish (the next one: it becomes current
    /// on [`StandIn::rotate_signing_key`]), its own `kid` in the header.
    UnknownKid,
    /// Header `{"alg":"none","typ":"JWT"}` and an empty signature part.
    AlgNone,
    /// Signed HS256 with the current public key's PEM text (SPKI, `-----BEGIN PUBLIC KEY-----`,
    /// with its final newline) as the HMAC secret, header `kid` the current kid: the classic
    /// algorithm-confusion attack.
    Hs256WithPublicKey,
    /// `sub` is another Kakao id (the account's id plus one).
    WrongSubject,
}

/// A misbehaviour to inject into one endpoint.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer this HTTP status with an empty body (e.g. 500, 503).
    Status(u16),
    /// Sleep this long, then answer normally (for client timeout tests).
    Delay(Duration),
    /// 200 with Content-Type application/json and a body that is not valid JSON.
    MalformedJson,
    /// 200 with valid JSON of the wrong shape (`{"unexpected":true}`).
    WrongShape,
    /// kapi error body `{"msg":..., "code":code}` with this HTTP status.
    KapiError {
        /// HTTP status.
        status: u16,
        /// Kakao's negative error code, e.g. -401.
        code: i64,
    },
    /// kauth error body `{"error":..., "error_description":..., "error_code":"KOE..."}`.
    KauthError {
        /// HTTP status.
        status: u16,
        /// OAuth `error`, e.g. `invalid_grant`.
        error: String,
        /// Kakao's `KOE…` code.
        error_code: String,
    },
    /// For Authorize only: redirect back to redirect_uri with this `error` (e.g. "server_error"),
    /// state echoed. The client and redirect URI are still validated first, because Kakao never
    /// redirects to an unregistered URI. Has no effect on other endpoints.
    AuthorizeError(String),
    /// 302 to this URL (the app must NOT follow it).
    Redirect(String),
    /// For TokenInfo only: answer normally but with this app_id (a token issued to another app).
    /// Has no effect on other endpoints.
    ForeignAppId(i64),
}

/// Link a known account that is not linked yet as if it agreed to every configured item (what
/// the token-minting helpers promise); unknown ids and existing links are left alone.
fn link_fully(state: &mut State, kakao_id: i64) {
    if state.accounts.contains_key(&kakao_id) && !state.links.contains_key(&kakao_id) {
        let all = state::configured_scopes(state.oidc)
            .into_iter()
            .map(str::to_owned);
        state.link(kakao_id, all);
    }
}

/// Wrap a handler taking the stand-in into an actix handler closure.
fn bind<F, Fut>(
    standin: &StandIn,
    handler: F,
) -> impl Fn(HttpRequest, Bytes) -> Fut + Clone + 'static
where
    F: Fn(StandIn, HttpRequest, Bytes) -> Fut + Clone + 'static,
    Fut: Future<Output = HttpResponse> + 'static,
{
    let standin = standin.clone();
    move |req, body| handler(standin.clone(), req, body)
}

impl StandIn {
    /// Refuse (403) every request that did not come straight from this machine: a peer or a
    /// `Host` that is not loopback, or any proxy header (`Forwarded`, `X-Forwarded-*`,
    /// `X-Real-IP`). The stand-in signs anyone in as anyone; configuration keeps it to a
    /// loopback `PUBLIC_URL`, and this keeps a reverse proxy on the same host from publishing it.
    pub async fn only_from_this_machine(
        req: actix_web::dev::ServiceRequest,
        next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
    ) -> Result<
        actix_web::dev::ServiceResponse<
            actix_web::body::EitherBody<impl actix_web::body::MessageBody>,
        >,
        actix_web::Error,
    > {
        if let Some(why) = not_from_this_machine(req.request()) {
            log::warn!("event=standin.refused reason=\"{why}\" path={}", req.path());
            let res = HttpResponse::Forbidden()
                .content_type("text/plain; charset=utf-8")
                .body(format!(
                    "The Kakao stand-in only answers this machine ({why}). It signs anyone in \
                     as anyone, so it is never served through a proxy or to the network; set \
                     KAKAO_CLIENT_ID to use real Kakao.\n"
                ));
            return Ok(req.into_response(res).map_into_right_body());
        }
        Ok(next.call(req).await?.map_into_left_body())
    }

    /// A fresh stand-in with no accounts, faults or tokens. The first signing key is made on a
    /// thread of its own now (RSA key generation takes tens of milliseconds), so that the first
    /// token or JWKS request does not hold a server worker while it is made.
    pub fn new(config: StandInConfig) -> Self {
        std::thread::spawn(|| {
            if let Err(err) = keys::key(0) {
                log::error!("stand-in: {err}");
            }
        });
        Self {
            inner: Arc::new(Inner {
                config,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// Register every route on `cfg` at Kakao's paths (plus `POST /oauth/consent` for the consent
    /// form). It may be mounted under a scope; its pages only use relative links, but the ID
    /// tokens' `iss` and the discovery document need [`StandIn::set_issuer`] with the public base
    /// it is mounted at.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.service(
            web::resource("/oauth/authorize").route(web::get().to(bind(self, oauth::authorize))),
        )
        .service(web::resource("/oauth/consent").route(web::post().to(bind(self, oauth::consent))))
        .service(web::resource("/oauth/token").route(web::post().to(bind(self, oauth::token))))
        .service(
            web::resource("/oauth/logout").route(web::get().to(bind(self, oauth::account_logout))),
        )
        .service(
            web::resource("/v2/user/me")
                .route(web::get().to(bind(self, kapi::user_me)))
                .route(web::post().to(bind(self, kapi::user_me))),
        )
        .service(
            web::resource("/v1/user/access_token_info")
                .route(web::get().to(bind(self, kapi::access_token_info))),
        )
        .service(web::resource("/v1/user/logout").route(web::post().to(bind(self, kapi::logout))))
        .service(web::resource("/v1/user/unlink").route(web::post().to(bind(self, kapi::unlink))))
        .service(web::resource("/v2/user/scopes").route(web::get().to(bind(self, kapi::scopes))))
        .service(web::resource("/v1/user/ids").route(web::get().to(bind(self, kapi::user_ids))))
        .service(
            web::resource("/.well-known/jwks.json").route(web::get().to(bind(self, oidc::jwks))),
        )
        .service(
            web::resource("/.well-known/openid-configuration")
                .route(web::get().to(bind(self, oidc::openid_configuration))),
        )
        .service(
            web::resource("/oauth/unlink")
                .route(web::post().to(bind(self, webhooks::unlink_from_consent))),
        )
        .service(
            web::resource("/_standin/webhooks/unlink")
                .route(web::post().to(bind(self, webhooks::control_unlink))),
        )
        .service(
            web::resource("/_standin/webhooks/event")
                .route(web::post().to(bind(self, webhooks::control_event))),
        );
    }

    /// Start a stand-in alone on `127.0.0.1:0` with one worker (for tests), its issuer set to its
    /// `base_url`. Call it from an actix runtime (`#[actix_web::test]`, `#[actix_web::main]`): the
    /// server future is spawned on the current thread's local task set and runs until
    /// `handle.stop(..)` or the runtime ends.
    pub async fn start(config: StandInConfig) -> std::io::Result<RunningStandIn> {
        let standin = StandIn::new(config);
        let for_server = standin.clone();
        let server = HttpServer::new(move || {
            let standin = for_server.clone();
            App::new().configure(move |cfg| standin.configure(cfg))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .bind(("127.0.0.1", 0))?;
        let addr = server
            .addrs()
            .first()
            .copied()
            .ok_or_else(|| std::io::Error::other("the stand-in server bound no address"))?;
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        let base_url = format!("http://{addr}");
        standin.set_issuer(&base_url);
        Ok(RunningStandIn {
            standin,
            base_url,
            handle,
        })
    }

    /// Add a Kakao account the consent page lists; returns its Kakao id (64-bit, starting at
    /// 4_100_000_000_000_000_001 so ids exceed 2^53).
    pub fn add_user(&self, user: TestUser) -> i64 {
        self.lock().add_account(user)
    }

    /// When `Some`, `/oauth/authorize` skips the consent page and immediately redirects with a
    /// code for this consent (or with `access_denied` for [`Consent::Cancel`]; with
    /// [`Consent::AgreeAsLoginHint`], as the account the request's `login_hint` names).
    pub fn set_auto_consent(&self, consent: Option<Consent>) {
        self.lock().auto_consent = consent;
    }

    /// Sticky fault for one endpoint until cleared with `None`.
    pub fn set_fault(&self, endpoint: Endpoint, fault: Option<Fault>) {
        let mut state = self.lock();
        match fault {
            Some(fault) => {
                state.sticky_faults.insert(endpoint, fault);
            }
            None => {
                state.sticky_faults.remove(&endpoint);
            }
        }
    }

    /// Fault for the next `times` calls only, then normal again. Several calls queue up in order
    /// and take precedence over a sticky fault.
    pub fn fail_next(&self, endpoint: Endpoint, fault: Fault, times: usize) {
        if times > 0 {
            self.lock()
                .queued_faults
                .entry(endpoint)
                .or_default()
                .push_back((fault, times));
        }
    }

    /// How many requests reached an endpoint (including faulted ones).
    pub fn hits(&self, endpoint: Endpoint) -> usize {
        self.lock().hits.get(&endpoint).copied().unwrap_or(0)
    }

    /// Mint a valid access token for a Kakao id directly (for API tests that skip the browser
    /// flow). A user not linked yet is linked as if they agreed to every item (nickname, email,
    /// and `openid` while OpenID Connect is on); an id [`StandIn::add_user`] never returned gets a
    /// token that answers -101.
    pub fn issue_access_token(&self, kakao_id: i64) -> String {
        let mut state = self.lock();
        link_fully(&mut state, kakao_id);
        state.issue_access_token(kakao_id, None)
    }

    /// Mark an access token expired (token info / user me then answer -401 "this access token is
    /// already expired"). Unknown tokens are ignored.
    pub fn expire_access_token(&self, token: &str) {
        if let Some(record) = self.lock().access_tokens.get_mut(token) {
            record.forced_expired = true;
        }
    }

    /// Set the `iss` of ID tokens and the base of the discovery document's URLs, e.g.
    /// `http://127.0.0.1:8080/_kakao` (a trailing slash is dropped). [`StandIn::start`] sets it to
    /// its own `base_url`; an app that mounts the stand-in under a scope of its own must call it
    /// with that public base, because the stand-in cannot know where it is mounted. Until then it
    /// is `http://stand-in.invalid`.
    pub fn set_issuer(&self, issuer: &str) {
        self.lock().issuer = issuer.trim_end_matches('/').to_owned();
    }

    /// Turn OpenID Connect on or off (on by default). While on, `openid` is a configured consent
    /// item and every authorization-code exchange answers an `id_token` (Kakao: "While ON, an ID
    /// token is always issued"), except an additional-consent request whose `scope` leaves out
    /// `openid` (Kakao: such requests must include it to get a new ID token). While off, no ID
    /// token is issued, refreshes included, and `scope=openid` is the `KOE205` page.
    pub fn set_oidc(&self, on: bool) {
        self.lock().oidc = on;
    }

    /// Sticky ID-token fault for every ID token the token endpoint answers (code exchanges and
    /// refreshes) until cleared with `None`.
    pub fn set_id_token_fault(&self, fault: Option<IdTokenFault>) {
        self.lock().id_token_fault = fault;
    }

    /// A valid ID token for `kakao_id`, signed with the current key, as the mobile SDK would
    /// receive it (`aud` = `audience`, e.g. the native app key; `nonce` as given; `auth_time` and
    /// `iat` now). A known account that is not linked yet is linked as by
    /// [`StandIn::issue_access_token`]; nickname and email claims follow its consent. The sticky
    /// [`StandIn::set_id_token_fault`] does not apply, and neither does [`StandIn::set_oidc`].
    ///
    /// # Panics
    /// If the signing key cannot be made or used (not expected to happen).
    pub fn mint_id_token(&self, kakao_id: i64, audience: &str, nonce: Option<&str>) -> String {
        self.mint(kakao_id, audience, nonce, None)
    }

    /// Like [`StandIn::mint_id_token`] with `fault` applied. [`IdTokenFault::Omit`] returns an
    /// empty string (there is no token to omit it from).
    ///
    /// # Panics
    /// If the signing key cannot be made or used (not expected to happen).
    pub fn mint_id_token_with(
        &self,
        kakao_id: i64,
        audience: &str,
        nonce: Option<&str>,
        fault: IdTokenFault,
    ) -> String {
        self.mint(kakao_id, audience, nonce, Some(fault))
    }

    /// Shared body of the two minting helpers.
    fn mint(
        &self,
        kakao_id: i64,
        audience: &str,
        nonce: Option<&str>,
        fault: Option<IdTokenFault>,
    ) -> String {
        let plan = {
            let mut state = self.lock();
            link_fully(&mut state, kakao_id);
            oidc::plan(&state, kakao_id, audience, nonce, state::unix_now(), fault)
        };
        match plan {
            Some(plan) => plan
                .sign()
                .unwrap_or_else(|err| panic!("cannot mint an ID token: {err}")),
            None => String::new(),
        }
    }

    /// Make the next key of the process-wide pool the signing key. The JWKS then publishes the new
    /// key and the one it replaces (Kakao also publishes several keys); a key two rotations old is
    /// no longer published. The new key is generated now if no stand-in has used it yet.
    pub fn rotate_signing_key(&self) {
        let next = {
            let mut state = self.lock();
            state.previous_key = Some(state.key_index);
            state.key_index += 1;
            state.key_index
        };
        if let Err(err) = keys::key(next) {
            log::error!("stand-in: {err}");
        }
    }

    /// Register the app's "Logout Redirect URIs" for `GET /oauth/logout` (none by default, so
    /// every Kakao Account logout is the `KOE007` page until this is called); compared byte for
    /// byte, like the redirect URIs.
    pub fn set_logout_redirect_uris(&self, uris: Vec<String>) {
        self.lock().logout_redirect_uris = uris;
    }

    /// The query parameters of the last `GET /oauth/authorize` (every request is recorded, also
    /// refused or faulted ones; the first occurrence of a repeated name), or `None` before any.
    pub fn last_authorize_query(&self) -> Option<std::collections::BTreeMap<String, String>> {
        self.lock().last_authorize_query.clone()
    }

    /// Kakao ids that were unlinked through the API, in order (for assertions).
    pub fn unlinked(&self) -> Vec<i64> {
        self.lock().unlinked.clone()
    }

    /// Kakao ids that were logged out through the API, in order (for assertions).
    pub fn logged_out(&self) -> Vec<i64> {
        self.lock().logged_out.clone()
    }

    /// The configuration it was created with.
    fn config(&self) -> &StandInConfig {
        &self.inner.config
    }

    /// Lock the state (a poisoned lock is still usable: the state has no invariants a panic
    /// half-way could break badly enough to matter for a test double).
    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Count a request to `endpoint` and take its fault, if any.
    fn enter(&self, endpoint: Endpoint) -> Option<Fault> {
        self.lock().enter(endpoint)
    }
}
