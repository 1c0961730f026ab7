//! The kauth side of the stand-in: `GET /oauth/authorize`, its consent form (`POST /oauth/consent`)
//! and `POST /oauth/token` (authorization-code and refresh-token grants).

use std::collections::BTreeSet;
use std::time::Instant;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::oidc::{self, IdTokenPlan};
use super::reply::{self, KauthError, Params};
use super::state::{
    ACCESS_TOKEN_SECONDS, CODE_LIFETIME, CodeGrant, IdTokenGrant, Link, REFRESH_ROTATION_THRESHOLD,
    REFRESH_TOKEN_SECONDS, SCOPE_EMAIL, SCOPE_NICKNAME, SCOPE_OPENID, State, configured_scopes,
    unix_now,
};
use super::{Consent, Endpoint, Fault, StandIn, StandInConfig, TestUser};

/// Kakao's `error_description` for a cancelled consent.
const DENIED_DESCRIPTION: &str = "User denied access";
/// The cookie naming the browser's Kakao Account session (its value is an opaque token the
/// state maps to the account).
const SESSION_COOKIE: &str = "standin_kakao_session";
/// The `prompt` values Kakao documents.
const PROMPTS: [&str; 4] = ["login", "none", "create", "select_account"];

/// A validated authorization request (from the query string or the consent form's hidden fields).
#[derive(Clone, Debug)]
pub(super) struct AuthorizeRequest {
    client_id: String,
    redirect_uri: String,
    state: Option<String>,
    /// The raw `scope` parameter, when one was sent (an additional-consent request).
    scope: Option<String>,
    /// The consent items this request asks for.
    requested: BTreeSet<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    /// The `prompt` values, in the order sent, without repeats.
    prompt: Vec<String>,
    /// The raw `prompt` parameter, carried by the consent form.
    prompt_raw: Option<String>,
    /// Pre-fills the new-account email field of the consent page.
    login_hint: Option<String>,
    /// OpenID Connect `nonce`, kept raw for the ID token.
    nonce: Option<String>,
}

impl AuthorizeRequest {
    /// Whether the email item must be agreed: only when the request asks for the email alone
    /// (an additional-consent request for exactly that item, `openid` allowed beside it, as
    /// Kakao asks OIDC apps to add). On a first sign-in the stand-in
    /// app has email as an optional item, so a person can decline it, as on Kakao.
    fn email_required(&self) -> bool {
        self.scope.is_some()
            && self.requested.contains(SCOPE_EMAIL)
            && self
                .requested
                .iter()
                .all(|s| s == SCOPE_EMAIL || s == SCOPE_OPENID)
    }

    /// Whether `prompt=none` was asked (no page may be shown).
    fn prompt_none(&self) -> bool {
        self.prompt.iter().any(|p| p == "none")
    }

    /// The consent page's lines saying which prompt was asked.
    fn prompt_lines(&self) -> Vec<String> {
        self.prompt
            .iter()
            .filter_map(|p| match p.as_str() {
                "login" => Some("다시 로그인 (prompt=login)".to_owned()),
                "select_account" => Some("계정 선택 (prompt=select_account)".to_owned()),
                "create" => Some("카카오계정 만들기 (prompt=create)".to_owned()),
                _ => None,
            })
            .collect()
    }

    /// Whether the code will answer an ID token: `openid` is among the requested items, which it
    /// is on a plain request while OpenID Connect is on. An additional-consent request must name
    /// it, as on Kakao ("OIDC apps must include `openid`... or no new ID token is issued").
    fn wants_id_token(&self) -> bool {
        self.requested.contains(SCOPE_OPENID)
    }

    /// The items agreed when the person accepts, sharing the email or not.
    fn agreed(&self, share_email: bool) -> BTreeSet<String> {
        self.requested
            .iter()
            .filter(|s| share_email || s.as_str() != SCOPE_EMAIL)
            .cloned()
            .collect()
    }

    /// The parameters the consent form carries in hidden fields.
    fn hidden_fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = vec![
            ("client_id", self.client_id.clone()),
            ("redirect_uri", self.redirect_uri.clone()),
            ("response_type", "code".to_owned()),
        ];
        let optional = [
            ("state", &self.state),
            ("scope", &self.scope),
            ("code_challenge", &self.code_challenge),
            ("code_challenge_method", &self.code_challenge_method),
            ("nonce", &self.nonce),
            ("prompt", &self.prompt_raw),
            ("login_hint", &self.login_hint),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                fields.push((name, value.clone()));
            }
        }
        fields
    }

    /// 302 back to the app with `params` and the echoed `state`.
    fn redirect(&self, params: &[(&str, &str)]) -> HttpResponse {
        let mut all = params.to_vec();
        if let Some(state) = &self.state {
            all.push(("state", state));
        }
        reply::found(&reply::redirect_target(&self.redirect_uri, &all))
    }

    /// 302 back with a fresh code.
    fn redirect_with_code(&self, code: &str) -> HttpResponse {
        self.redirect(&[("code", code)])
    }

    /// 302 back as if the person pressed cancel.
    fn redirect_denied(&self) -> HttpResponse {
        self.redirect(&[
            ("error", "access_denied"),
            ("error_description", DENIED_DESCRIPTION),
        ])
    }

    /// 302 back with an arbitrary `error` (fault injection and `prompt=none`).
    fn redirect_error(&self, error: &str) -> HttpResponse {
        let description = match error {
            "access_denied" => Some(DENIED_DESCRIPTION),
            "consent_required" => Some("user consent required."),
            // What Kakao answers to `prompt=none` without a Kakao Account session is not
            // documented; this is OpenID Connect's `login_required` worded like Kakao's
            // `consent_required`.
            "login_required" => Some("user authentication required."),
            _ => None,
        };
        match description {
            Some(description) => {
                self.redirect(&[("error", error), ("error_description", description)])
            }
            None => self.redirect(&[("error", error)]),
        }
    }
}

/// A problem Kakao reports on its own error page instead of redirecting.
#[derive(Clone, Debug)]
pub(super) struct PageError {
    status: u16,
    title: &'static str,
    koe: &'static str,
    error: &'static str,
    description: String,
}

impl PageError {
    fn setup(koe: &'static str, error: &'static str, description: String) -> Self {
        Self {
            status: 400,
            title: "앱 관리자 설정 오류",
            koe,
            error,
            description,
        }
    }

    fn bad_request(koe: &'static str, error: &'static str, description: String) -> Self {
        Self {
            status: 400,
            title: "잘못된 요청",
            koe,
            error,
            description,
        }
    }

    /// The error page.
    pub(super) fn response(&self) -> HttpResponse {
        let page = ErrorPage {
            title: self.title,
            koe: self.koe,
            error: self.error,
            description: &self.description,
        };
        render(self.status, &page)
    }
}

/// Kakao-like error page (`templates/standin/error.html`).
#[derive(askama::Template)]
#[template(path = "standin/error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    koe: &'a str,
    error: &'a str,
    description: &'a str,
}

/// One selectable account on the consent page.
#[derive(Clone, Debug)]
struct AccountChoice {
    id: String,
    nickname: String,
    email: String,
    selected: bool,
    /// Linked to the app: the row offers "연결 끊기".
    linked: bool,
}

/// What the "new account" part of the form held (kept when the page is shown again).
#[derive(Clone, Debug)]
struct NewAccountForm {
    nickname: String,
    email: String,
    verified: bool,
    valid: bool,
}

impl Default for NewAccountForm {
    fn default() -> Self {
        Self {
            nickname: String::new(),
            email: String::new(),
            verified: true,
            valid: true,
        }
    }
}

/// Consent page (`templates/standin/consent.html`).
#[derive(askama::Template)]
#[template(path = "standin/consent.html")]
struct ConsentPage<'a> {
    client_id: &'a str,
    hidden: Vec<(&'static str, String)>,
    accounts: Vec<AccountChoice>,
    /// Accounts not listed (beyond `ACCOUNTS_LISTED`).
    more_accounts: usize,
    new_selected: bool,
    new_account: NewAccountForm,
    asks_nickname: bool,
    asks_email: bool,
    email_required: bool,
    share_email: bool,
    /// Which `prompt` was asked, one line each, so a browser test can see it.
    prompt_lines: Vec<String>,
    error: Option<&'a str>,
    /// What "연결 끊기" did, one line each.
    notices: Vec<String>,
}

/// Render an askama page, or a bare 500 if the template fails.
pub(super) fn render(status: u16, page: &impl askama::Template) -> HttpResponse {
    match page.render() {
        Ok(body) => reply::html(status, body),
        Err(err) => {
            log::error!("stand-in: cannot render a page: {err}");
            HttpResponse::InternalServerError().finish()
        }
    }
}

/// Whether `value` is a valid PKCE challenge or verifier: 43-128 unreserved characters.
fn is_pkce_string(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Split a `scope`/`prompt` value on commas and/or spaces (Kakao's docs use commas, its SDK spaces).
fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
}

/// The `client_id` of a browser request, or the `KOE101` page.
fn page_client_id(config: &StandInConfig, params: &Params) -> Result<String, PageError> {
    match params.non_empty("client_id") {
        None => Err(PageError::setup(
            "KOE101",
            "invalid_client",
            "Not exist client_id [null]".to_owned(),
        )),
        Some(id) if id != config.client_id => Err(PageError::setup(
            "KOE101",
            "invalid_client",
            format!("Not exist client_id {id}"),
        )),
        Some(id) => Ok(id.to_owned()),
    }
}

/// Validate the authorize parameters the way Kakao does before showing anything.
pub(super) fn validate(
    config: &StandInConfig,
    oidc: bool,
    params: &Params,
) -> Result<AuthorizeRequest, PageError> {
    let client_id = page_client_id(config, params)?;
    let redirect_uri = match params.non_empty("redirect_uri") {
        Some(uri) if config.redirect_uris.iter().any(|r| r == uri) => uri.to_owned(),
        other => {
            return Err(PageError::setup(
                "KOE006",
                "invalid_request",
                format!(
                    "등록하지 않은 리다이렉트 URI를 사용해 인가 코드를 요청했습니다: {}",
                    other.unwrap_or("[null]")
                ),
            ));
        }
    };
    match params.get("response_type") {
        Some("code") => {}
        Some("token") => {
            return Err(PageError::bad_request(
                "KOE202",
                "invalid_request",
                "Unsupported response type: token (implicit grant is not supported)".to_owned(),
            ));
        }
        other => {
            return Err(PageError::bad_request(
                "KOE201",
                "invalid_request",
                format!("Unsupported response type: {}", other.unwrap_or("[null]")),
            ));
        }
    }
    // Kakao advertises only S256 (`code_challenge_methods_supported: ["S256"]`); which KOE code it
    // shows for `plain` or a malformed challenge is not documented, so KOE001 (malformed request)
    // is the stand-in's choice. A missing method means `plain` (RFC 7636 4.3), so it fails too.
    let code_challenge = params.non_empty("code_challenge").map(str::to_owned);
    let code_challenge_method = params.non_empty("code_challenge_method").map(str::to_owned);
    match (&code_challenge, code_challenge_method.as_deref()) {
        (None, None) => {}
        (Some(challenge), Some("S256")) if is_pkce_string(challenge) => {}
        (Some(_), Some("S256")) => {
            return Err(PageError::bad_request(
                "KOE001",
                "invalid_request",
                "Invalid code_challenge".to_owned(),
            ));
        }
        (None, Some(_)) => {
            return Err(PageError::bad_request(
                "KOE001",
                "invalid_request",
                "code_challenge_method without code_challenge".to_owned(),
            ));
        }
        (Some(_), method) => {
            return Err(PageError::bad_request(
                "KOE001",
                "invalid_request",
                format!(
                    "Unsupported code_challenge_method: {} (only S256 is supported)",
                    method.unwrap_or("plain")
                ),
            ));
        }
    }
    let scope = params.non_empty("scope").map(str::to_owned);
    let configured = configured_scopes(oidc);
    let requested: BTreeSet<String> = match &scope {
        Some(raw) => {
            let asked: BTreeSet<String> = split_list(raw).map(str::to_owned).collect();
            // `openid` while OpenID Connect is off is reported like any item the app has not
            // configured; Kakao's exact answer for that case is unknown.
            let unknown: Vec<&str> = asked
                .iter()
                .map(String::as_str)
                .filter(|s| !configured.contains(s))
                .collect();
            if !unknown.is_empty() {
                return Err(PageError::setup(
                    "KOE205",
                    "invalid_scope",
                    format!(
                        "설정하지 않은 동의 항목을 요청했습니다: {}",
                        unknown.join(",")
                    ),
                ));
            }
            asked
        }
        None => BTreeSet::new(),
    };
    let (scope, requested) = if requested.is_empty() {
        (None, configured.iter().map(|s| (*s).to_owned()).collect())
    } else {
        (scope, requested)
    };
    let prompt_raw = params.non_empty("prompt").map(str::to_owned);
    let mut prompt: Vec<String> = Vec::new();
    for value in prompt_raw.as_deref().map(split_list).into_iter().flatten() {
        // Kakao's answer to an unknown prompt value (and to `none` with another value, which
        // OpenID Connect forbids) is not documented; the stand-in shows the malformed-request page.
        if !PROMPTS.contains(&value) {
            return Err(PageError::bad_request(
                "KOE001",
                "invalid_request",
                format!("Invalid prompt: {value}"),
            ));
        }
        if !prompt.iter().any(|p| p == value) {
            prompt.push(value.to_owned());
        }
    }
    if prompt.len() > 1 && prompt.iter().any(|p| p == "none") {
        return Err(PageError::bad_request(
            "KOE001",
            "invalid_request",
            "prompt=none cannot be combined with other prompt values".to_owned(),
        ));
    }
    Ok(AuthorizeRequest {
        client_id,
        redirect_uri,
        state: params.non_empty("state").map(str::to_owned),
        scope,
        requested,
        code_challenge,
        code_challenge_method,
        prompt,
        prompt_raw,
        login_hint: params.non_empty("login_hint").map(str::to_owned),
        nonce: params.non_empty("nonce").map(str::to_owned),
    })
}

/// The browser's Kakao Account session cookie value, if it sent one.
pub(super) fn session_cookie(req: &HttpRequest) -> Option<String> {
    req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned())
}

/// The session cookie as set after a sign-in: HttpOnly, SameSite=Lax, Path `/`, for the browser
/// session (no Max-Age).
fn session_set_cookie(value: String) -> Cookie<'static> {
    Cookie::build(SESSION_COOKIE, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .finish()
}

/// A code grant for `request` as `kakao_id`, authenticated at `auth_time`.
fn code_grant(request: &AuthorizeRequest, kakao_id: i64, auth_time: i64) -> CodeGrant {
    CodeGrant {
        kakao_id,
        client_id: request.client_id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        code_challenge: request.code_challenge.clone(),
        expires_at: Instant::now() + CODE_LIFETIME,
        nonce: request.nonce.clone(),
        auth_time,
        openid: request.wants_id_token(),
    }
}

/// Agree as `kakao_id`: sign the browser in (a new Kakao Account session replacing
/// `old_session`), link, mint a code and redirect; a 500 page if the account is unknown.
fn agree(
    standin: &StandIn,
    request: &AuthorizeRequest,
    kakao_id: i64,
    share_email: bool,
    old_session: Option<&str>,
) -> HttpResponse {
    let granted = {
        let mut state = standin.lock();
        if !state.accounts.contains_key(&kakao_id) {
            None
        } else {
            let session = state.start_session(kakao_id, old_session);
            let auth_time = state
                .sessions
                .get(&session)
                .map_or_else(unix_now, |s| s.auth_time);
            let grant = code_grant(request, kakao_id, auth_time);
            Some((
                state.grant_code(request.agreed(share_email), grant),
                session,
            ))
        }
    };
    match granted {
        Some((code, session)) => {
            let mut response = request.redirect_with_code(&code);
            if let Err(err) = response.add_cookie(&session_set_cookie(session)) {
                log::error!("stand-in: cannot set the session cookie: {err}");
            }
            response
        }
        None => {
            let page = PageError {
                status: 500,
                title: "스탠드인 설정 오류",
                koe: "STANDIN",
                error: "unknown_account",
                description: format!(
                    "Consent::Agree names Kakao id {kakao_id}, which add_user never returned"
                ),
            };
            page.response()
        }
    }
}

/// `prompt=none`: answer without any page. No valid session: `login_required`; a session whose
/// account is not linked, or has not agreed to what is asked: `consent_required` (Kakao's
/// documented answer for a non-member); otherwise a code at once, in that session.
///
/// What is asked: with `scope`, every item it names (`openid` needs no consent: it only asks for
/// an ID token); without, the app's one required item, the nickname. Kakao shows the consent
/// screen only when an account first links, so a declined optional email is not asked again.
fn silent(standin: &StandIn, request: &AuthorizeRequest, cookie: Option<&str>) -> HttpResponse {
    let code = {
        let mut state = standin.lock();
        let session = cookie.and_then(|c| state.sessions.get(c)).cloned();
        let Some(session) = session else {
            return request.redirect_error("login_required");
        };
        let agreed = state
            .links
            .get(&session.kakao_id)
            .map(|link| link.scopes.clone());
        let needed: Vec<&str> = if request.scope.is_some() {
            request
                .requested
                .iter()
                .map(String::as_str)
                .filter(|s| *s != SCOPE_OPENID)
                .collect()
        } else {
            vec![SCOPE_NICKNAME]
        };
        let Some(agreed) = agreed.filter(|a| needed.iter().all(|n| a.contains(*n))) else {
            return request.redirect_error("consent_required");
        };
        let scopes: BTreeSet<String> = request
            .requested
            .iter()
            .filter(|s| agreed.contains(*s) || s.as_str() == SCOPE_OPENID)
            .cloned()
            .collect();
        let grant = code_grant(request, session.kakao_id, session.auth_time);
        state.grant_code(scopes, grant)
    };
    request.redirect_with_code(&code)
}

/// Accounts the consent page lists at most (the first made). A long benchmark makes thousands,
/// and a page listing them all grew past a megabyte per sign-in; the others are still chosen
/// by typing their email as a new account.
const ACCOUNTS_LISTED: usize = 30;

/// The consent page for `request`, optionally with an error and the previous form input.
pub(super) fn consent_page(
    standin: &StandIn,
    request: &AuthorizeRequest,
    previous: Option<(&Params, &str)>,
    notices: Vec<String>,
) -> HttpResponse {
    let selected = previous
        .and_then(|(form, _)| form.get("account").map(str::to_owned))
        .unwrap_or_default();
    let (accounts, more_accounts): (Vec<AccountChoice>, usize) = {
        let state = standin.lock();
        let listed = state
            .accounts
            .values()
            .take(ACCOUNTS_LISTED)
            .map(|a| AccountChoice {
                id: a.id.to_string(),
                nickname: a
                    .user
                    .nickname
                    .clone()
                    .unwrap_or_else(|| "(닉네임 없음)".to_owned()),
                email: a
                    .user
                    .email
                    .clone()
                    .unwrap_or_else(|| "(이메일 없음)".to_owned()),
                selected: false,
                linked: state.links.contains_key(&a.id),
            })
            .collect();
        (listed, state.accounts.len().saturating_sub(ACCOUNTS_LISTED))
    };
    let mut accounts = accounts;
    let mut any_selected = false;
    // A `login_hint` goes into the new-account email field, so that field's choice is selected.
    for (i, account) in accounts.iter_mut().enumerate() {
        account.selected = if previous.is_some() {
            account.id == selected
        } else {
            i == 0 && request.login_hint.is_none()
        };
        any_selected |= account.selected;
    }
    let (new_account, share_email) = match previous {
        Some((form, _)) => (
            NewAccountForm {
                nickname: form.get("new_nickname").unwrap_or_default().to_owned(),
                email: form.get("new_email").unwrap_or_default().to_owned(),
                verified: form.has("new_email_verified"),
                valid: form.has("new_email_valid"),
            },
            form.has("share_email") || request.email_required(),
        ),
        None => (
            NewAccountForm {
                email: request.login_hint.clone().unwrap_or_default(),
                ..NewAccountForm::default()
            },
            true,
        ),
    };
    let page = ConsentPage {
        client_id: &request.client_id,
        hidden: request.hidden_fields(),
        accounts,
        more_accounts,
        new_selected: !any_selected,
        new_account,
        asks_nickname: request.requested.contains(SCOPE_NICKNAME),
        asks_email: request.requested.contains(SCOPE_EMAIL),
        email_required: request.email_required(),
        share_email,
        prompt_lines: request.prompt_lines(),
        error: previous.map(|(_, message)| message),
        notices,
    };
    render(if previous.is_some() { 400 } else { 200 }, &page)
}

/// `GET /oauth/authorize`.
pub(super) async fn authorize(standin: StandIn, req: HttpRequest, _body: Bytes) -> HttpResponse {
    let fault = standin.enter(Endpoint::Authorize);
    let params = Params::parse(req.query_string().as_bytes());
    standin.lock().last_authorize_query = Some(params.to_map());
    if let Some(response) = reply::apply_fault(fault.as_ref()).await {
        return response;
    }
    let oidc = standin.lock().oidc;
    let request = match validate(standin.config(), oidc, &params) {
        Ok(request) => request,
        Err(page) => return page.response(),
    };
    if let Some(Fault::AuthorizeError(error)) = &fault {
        return request.redirect_error(error);
    }
    let cookie = session_cookie(&req);
    // `prompt=none` never shows a page, so auto-consent (a stand-in for the page) does not apply.
    if request.prompt_none() {
        return silent(&standin, &request, cookie.as_deref());
    }
    let auto = standin.lock().auto_consent.clone();
    match auto {
        Some(Consent::Cancel) => request.redirect_denied(),
        Some(Consent::Agree {
            kakao_id,
            share_email,
        }) => agree(&standin, &request, kakao_id, share_email, cookie.as_deref()),
        Some(Consent::AgreeAsLoginHint) => match &request.login_hint {
            Some(email) => {
                let kakao_id = standin.lock().account_for_login_hint(email);
                agree(&standin, &request, kakao_id, true, cookie.as_deref())
            }
            None => PageError {
                status: 500,
                title: "스탠드인 설정 오류",
                koe: "STANDIN",
                error: "missing_login_hint",
                description:
                    "Consent::AgreeAsLoginHint needs a login_hint on the authorize request"
                        .to_owned(),
            }
            .response(),
        },
        None => consent_page(&standin, &request, None, Vec::new()),
    }
}

/// The account the consent form chose, creating a typed-in one if needed.
fn chosen_account(state: &mut State, form: &Params) -> Result<i64, &'static str> {
    match form.non_empty("account") {
        Some("new") => {
            let nickname = form.non_empty("new_nickname").map(|s| s.trim().to_owned());
            let email = form
                .non_empty("new_email")
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty());
            let nickname = nickname.filter(|s| !s.is_empty());
            if nickname.is_none() && email.is_none() {
                return Err("새 계정의 닉네임 또는 이메일을 입력해 주세요.");
            }
            if let Some(email) = &email {
                if !email.contains('@') {
                    return Err("이메일 형식이 올바르지 않습니다.");
                }
                if let Some(id) = state.account_by_email(email) {
                    return Ok(id);
                }
            }
            Ok(state.add_account(TestUser {
                nickname,
                email,
                email_verified: form.has("new_email_verified"),
                email_valid: form.has("new_email_valid"),
            }))
        }
        Some(_)
            if form
                .non_empty("new_nickname")
                .is_some_and(|s| !s.trim().is_empty())
                || form
                    .non_empty("new_email")
                    .is_some_and(|s| !s.trim().is_empty()) =>
        {
            // Without JavaScript, typing into the new-account fields does not select its radio
            // button; refuse rather than silently log in as the selected account.
            Err(
                "새 계정을 입력했다면 '새 계정 입력'을 선택해 주세요. 기존 계정으로 로그인하려면 입력란을 비워 주세요.",
            )
        }
        Some(id) => id
            .parse::<i64>()
            .ok()
            .filter(|id| state.accounts.contains_key(id))
            .ok_or("선택한 계정을 찾을 수 없습니다."),
        None => Err("로그인할 카카오계정을 선택해 주세요."),
    }
}

/// `POST /oauth/consent`: the consent form's answer.
pub(super) async fn consent(standin: StandIn, req: HttpRequest, body: Bytes) -> HttpResponse {
    if !reply::is_form(&req) {
        return PageError::bad_request(
            "KOE001",
            "invalid_request",
            "The consent form must be posted as application/x-www-form-urlencoded".to_owned(),
        )
        .response();
    }
    let form = Params::parse(&body);
    let oidc = standin.lock().oidc;
    let request = match validate(standin.config(), oidc, &form) {
        Ok(request) => request,
        Err(page) => return page.response(),
    };
    if form.get("action") == Some("cancel") {
        return request.redirect_denied();
    }
    let share_email = form.has("share_email");
    if request.email_required() && !share_email {
        return consent_page(
            &standin,
            &request,
            Some((&form, "[필수] 동의 항목에 모두 동의해 주세요.")),
            Vec::new(),
        );
    }
    let chosen = {
        let mut state = standin.lock();
        chosen_account(&mut state, &form)
    };
    let cookie = session_cookie(&req);
    match chosen {
        Ok(kakao_id) => agree(&standin, &request, kakao_id, share_email, cookie.as_deref()),
        Err(message) => consent_page(&standin, &request, Some((&form, message)), Vec::new()),
    }
}

/// `GET /oauth/logout` (Kakao Account logout): end the browser's Kakao Account session and
/// `302` to the registered `logout_redirect_uri`, echoing `state` when one was sent. An unknown
/// `client_id` is the `KOE101` page, an unregistered `logout_redirect_uri` the `KOE007` page
/// (Kakao's wording of that page is unknown).
pub(super) async fn account_logout(
    standin: StandIn,
    req: HttpRequest,
    _body: Bytes,
) -> HttpResponse {
    let fault = standin.enter(Endpoint::AccountLogout);
    if let Some(response) = reply::apply_fault(fault.as_ref()).await {
        return response;
    }
    let params = Params::parse(req.query_string().as_bytes());
    if let Err(page) = page_client_id(standin.config(), &params) {
        return page.response();
    }
    let target = params.non_empty("logout_redirect_uri");
    let cookie = session_cookie(&req);
    let registered = {
        let mut state = standin.lock();
        let registered = target.filter(|t| state.logout_redirect_uris.iter().any(|r| r == t));
        if registered.is_some()
            && let Some(cookie) = &cookie
        {
            state.sessions.remove(cookie);
        }
        registered
    };
    let Some(target) = registered else {
        return PageError::setup(
            "KOE007",
            "invalid_request",
            format!(
                "등록하지 않은 로그아웃 리다이렉트 URI를 사용했습니다: {}",
                target.unwrap_or("[null]")
            ),
        )
        .response();
    };
    let echoed: Vec<(&str, &str)> = params
        .non_empty("state")
        .map(|state| ("state", state))
        .into_iter()
        .collect();
    let mut response = reply::found(&reply::redirect_target(target, &echoed));
    let expired = Cookie::build(SESSION_COOKIE, "")
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .finish();
    if let Err(err) = response.add_removal_cookie(&expired) {
        log::error!("stand-in: cannot clear the session cookie: {err}");
    }
    response
}

/// Successful `/oauth/token` answer.
#[derive(Clone, Debug, Serialize)]
struct TokenResponse {
    token_type: &'static str,
    access_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
    expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token_expires_in: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
}

/// Client authentication (`client_secret_post` only, as Kakao).
fn check_client(config: &StandInConfig, form: &Params) -> Result<(), KauthError> {
    match form.non_empty("client_id") {
        None => {
            return Err(KauthError::new(
                401,
                "invalid_client",
                "Not exist client_id [null]",
                "KOE101",
            ));
        }
        Some(id) if id != config.client_id => {
            return Err(KauthError::new(
                401,
                "invalid_client",
                format!("Not exist client_id {id}"),
                "KOE101",
            ));
        }
        Some(_) => {}
    }
    if let Some(secret) = &config.client_secret
        && form.get("client_secret") != Some(secret.as_str())
    {
        return Err(KauthError::new(
            401,
            "invalid_client",
            "Bad client credentials",
            "KOE010",
        ));
    }
    Ok(())
}

/// The PKCE failure answer. Kakao's exact answer for a wrong `code_verifier` is not documented;
/// the stand-in reports it as `invalid_grant` with KOE320 (the code is unusable either way).
fn pkce_failed() -> KauthError {
    KauthError::new(400, "invalid_grant", "PKCE verification failed.", "KOE320")
}

/// The token answer's `scope`: the link's items, with `openid` exactly when an ID token is issued
/// (kakao-api.md 2.2: it "contains `openid` when an ID token was issued").
fn granted_scope(link: &Link, with_openid: bool) -> String {
    let mut scopes = link.scopes.clone();
    scopes.remove(SCOPE_OPENID);
    if with_openid {
        scopes.insert(SCOPE_OPENID.to_owned());
    }
    scopes.into_iter().collect::<Vec<_>>().join(" ")
}

/// A token answer plus the ID token to sign into it once the state lock is released.
type Issued = (TokenResponse, Option<IdTokenPlan>);

/// `grant_type=authorization_code`.
fn exchange_code(state: &mut State, form: &Params) -> Result<Issued, KauthError> {
    let code = form.non_empty("code").unwrap_or("null");
    let not_found = || {
        KauthError::new(
            400,
            "invalid_grant",
            format!("authorization code not found for code={code}"),
            "KOE320",
        )
    };
    // Removing it first makes every code single-use, even when a later check fails.
    let grant = state.codes.remove(code).ok_or_else(not_found)?;
    if grant.expires_at <= Instant::now() || form.get("client_id") != Some(grant.client_id.as_str())
    {
        return Err(not_found());
    }
    if form.get("redirect_uri") != Some(grant.redirect_uri.as_str()) {
        return Err(KauthError::new(
            400,
            "invalid_grant",
            "Redirect URI mismatch.",
            "KOE303",
        ));
    }
    // A verifier is checked only when the authorize request carried a challenge.
    if let Some(challenge) = &grant.code_challenge {
        let verifier = form.non_empty("code_verifier").ok_or_else(pkce_failed)?;
        let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        if !is_pkce_string(verifier) || &computed != challenge {
            return Err(pkce_failed());
        }
    }
    // Turning OpenID Connect off stops ID tokens at once, codes already granted included.
    let with_id_token = grant.openid && state.oidc;
    let scopes = state
        .links
        .get(&grant.kakao_id)
        .map(|link| granted_scope(link, with_id_token))
        .ok_or_else(not_found)?;
    let id_token_grant = with_id_token.then(|| IdTokenGrant {
        audience: grant.client_id.clone(),
        auth_time: grant.auth_time,
    });
    let plan = with_id_token
        .then(|| {
            oidc::plan(
                state,
                grant.kakao_id,
                &grant.client_id,
                grant.nonce.as_deref(),
                grant.auth_time,
                state.id_token_fault,
            )
        })
        .flatten();
    let refresh_token = state.issue_refresh_token(grant.kakao_id, id_token_grant);
    let access_token = state.issue_access_token(grant.kakao_id, Some(refresh_token.clone()));
    let response = TokenResponse {
        token_type: "bearer",
        access_token,
        id_token: None,
        expires_in: ACCESS_TOKEN_SECONDS,
        refresh_token: Some(refresh_token),
        refresh_token_expires_in: Some(REFRESH_TOKEN_SECONDS),
        scope: Some(scopes),
    };
    Ok((response, plan))
}

/// `grant_type=refresh_token`. The refresh token is renewed only when less than a month of its
/// life is left (Kakao's documented rule); otherwise the refresh fields are absent. An ID token
/// comes back only if the grant the refresh token came from had one (and OpenID Connect is still
/// on); it has no `nonce` (OpenID Connect Core 12.2: a refreshed ID token SHOULD NOT carry one;
/// whether Kakao repeats the original nonce is unknown) and the original `auth_time`.
fn refresh(state: &mut State, form: &Params) -> Result<Issued, KauthError> {
    let token = form.non_empty("refresh_token").ok_or_else(|| {
        KauthError::new(400, "invalid_grant", "refresh_token is required", "KOE319")
    })?;
    let invalid = || {
        KauthError::new(
            400,
            "invalid_grant",
            "expired_or_invalid_refresh_token",
            "KOE322",
        )
    };
    let record = state
        .refresh_tokens
        .get(token)
        .cloned()
        .ok_or_else(invalid)?;
    let now = Instant::now();
    if record.expires_at <= now || !state.links.contains_key(&record.kakao_id) {
        state.refresh_tokens.remove(token);
        return Err(invalid());
    }
    let (refresh_token, refresh_token_expires_in, kept) =
        if record.expires_at - now < REFRESH_ROTATION_THRESHOLD {
            state.refresh_tokens.remove(token);
            let renewed = state.issue_refresh_token(record.kakao_id, record.id_token.clone());
            (Some(renewed.clone()), Some(REFRESH_TOKEN_SECONDS), renewed)
        } else {
            (None, None, token.to_owned())
        };
    let plan = record
        .id_token
        .as_ref()
        .filter(|_| state.oidc)
        .and_then(|grant| {
            oidc::plan(
                state,
                record.kakao_id,
                &grant.audience,
                None,
                grant.auth_time,
                state.id_token_fault,
            )
        });
    let access_token = state.issue_access_token(record.kakao_id, Some(kept));
    let response = TokenResponse {
        token_type: "bearer",
        access_token,
        id_token: None,
        expires_in: ACCESS_TOKEN_SECONDS,
        refresh_token,
        refresh_token_expires_in,
        scope: None,
    };
    Ok((response, plan))
}

/// `POST /oauth/token`.
pub(super) async fn token(standin: StandIn, req: HttpRequest, body: Bytes) -> HttpResponse {
    let fault = standin.enter(Endpoint::Token);
    if let Some(response) = reply::apply_fault(fault.as_ref()).await {
        return response;
    }
    if !reply::is_form(&req) {
        return KauthError::new(
            400,
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded",
            "KOE001",
        )
        .response();
    }
    let form = Params::parse(&body);
    if let Err(err) = check_client(standin.config(), &form) {
        return err.response();
    }
    let result = {
        let mut state = standin.lock();
        match form.get("grant_type") {
            Some("authorization_code") => exchange_code(&mut state, &form),
            Some("refresh_token") => refresh(&mut state, &form),
            other => Err(KauthError::new(
                400,
                "invalid_request",
                format!("Unsupported grant type: {}", other.unwrap_or("[null]")),
                "KOE001",
            )),
        }
    };
    let (mut success, plan) = match result {
        Ok(issued) => issued,
        Err(err) => return err.response(),
    };
    if let Some(plan) = plan {
        match plan.sign() {
            Ok(id_token) => success.id_token = Some(id_token),
            Err(err) => {
                log::error!("stand-in: {err}");
                return HttpResponse::InternalServerError().finish();
            }
        }
    }
    reply::json(200, &success)
}
