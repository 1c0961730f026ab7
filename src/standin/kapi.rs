//! The kapi side of the stand-in: `/v2/user/me`, `/v1/user/access_token_info`,
//! `/v1/user/logout`, `/v1/user/unlink`, `/v2/user/scopes` and `/v1/user/ids`, with Bearer-token
//! and `KakaoAK` admin-key auth.

use std::time::Duration;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};
use chrono::SecondsFormat;
use serde::Serialize;

use super::reply::{self, KapiError, Params};
use super::state::{
    SCOPE_EMAIL, SCOPE_NICKNAME, SCOPE_OPENID, State, TokenProblem, configured_scopes,
};
use super::{Endpoint, Fault, StandIn, StandInConfig};

/// Who is calling, once authenticated.
#[derive(Clone, Debug)]
enum Caller {
    /// `Authorization: Bearer <token>`.
    Token {
        token: String,
        kakao_id: i64,
        remaining: Duration,
    },
    /// `Authorization: KakaoAK <admin key>` with `target_id_type=user_id&target_id=N`.
    Admin { kakao_id: i64 },
}

impl Caller {
    fn kakao_id(&self) -> i64 {
        match self {
            Caller::Token { kakao_id, .. } | Caller::Admin { kakao_id } => *kakao_id,
        }
    }
}

/// The request's parameters: the query string, plus a form body when one is declared.
fn request_params(req: &HttpRequest, body: &Bytes) -> Params {
    let query = Params::parse(req.query_string().as_bytes());
    if reply::is_form(req) {
        Params::parse(body).merge(query)
    } else {
        query
    }
}

/// Authenticate a kapi call against the state. `allow_admin` is false for APIs that need a token.
fn authenticate(
    config: &StandInConfig,
    state: &State,
    req: &HttpRequest,
    params: &Params,
    allow_admin: bool,
) -> Result<Caller, KapiError> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let (scheme, credential) = value.split_once(' ').unwrap_or((value, ""));
    let credential = credential.trim();
    if scheme.eq_ignore_ascii_case("Bearer") {
        return match state.check_access_token(credential) {
            Ok((kakao_id, remaining)) => Ok(Caller::Token {
                token: credential.to_owned(),
                kakao_id,
                remaining,
            }),
            Err(TokenProblem::DoesNotExist) => Err(KapiError::token_does_not_exist()),
            Err(TokenProblem::Expired) => Err(KapiError::token_expired()),
            Err(TokenProblem::NotLinked) => Err(KapiError::not_registered()),
        };
    }
    if !scheme.eq_ignore_ascii_case("KakaoAK") {
        return Err(KapiError::token_does_not_exist());
    }
    if !allow_admin || config.admin_key.as_deref() != Some(credential) {
        return Err(KapiError::new(
            401,
            -401,
            format!(
                "wrong appKey({credential}) type. this api requires an admin key or an access token."
            ),
        ));
    }
    if params.get("target_id_type") != Some("user_id") {
        return Err(KapiError::new(
            400,
            -2,
            "target_id_type is required and must be user_id.",
        ));
    }
    let kakao_id = params
        .get("target_id")
        .and_then(|v| v.trim().parse::<i64>().ok())
        .ok_or_else(|| KapiError::new(400, -2, "target_id is required and must be a user id."))?;
    if !state.links.contains_key(&kakao_id) {
        return Err(KapiError::not_registered());
    }
    Ok(Caller::Admin { kakao_id })
}

/// `/v2/user/me` answer (the fields the stand-in models, in Kakao's order).
#[derive(Clone, Debug, Serialize)]
struct UserMe {
    id: i64,
    connected_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    properties: Option<Properties>,
    kakao_account: KakaoAccount,
}

/// Deprecated but still sent: app user properties.
#[derive(Clone, Debug, Serialize)]
struct Properties {
    nickname: String,
}

/// `kakao_account` as the stand-in fills it.
#[derive(Clone, Debug, Serialize)]
struct KakaoAccount {
    profile_nickname_needs_agreement: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    profile: Option<Profile>,
    has_email: bool,
    email_needs_agreement: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    is_email_valid: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    is_email_verified: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
}

/// `kakao_account.profile`.
#[derive(Clone, Debug, Serialize)]
struct Profile {
    nickname: String,
    is_default_nickname: bool,
}

/// Build the user/me body for a linked user.
///
/// A nickname appears only when `profile_nickname` was agreed; a [`super::TestUser`] without a
/// nickname looks like one whose nickname item was not agreed. The email appears only when
/// `account_email` was agreed; without agreement Kakao sends `email_needs_agreement: true` and no
/// email fields. An account that has no email at all answers `has_email: false` (inference: Kakao
/// does not document that case).
fn user_me_body(state: &State, kakao_id: i64) -> Result<UserMe, KapiError> {
    let account = state
        .accounts
        .get(&kakao_id)
        .ok_or_else(KapiError::not_registered)?;
    let link = state
        .links
        .get(&kakao_id)
        .ok_or_else(KapiError::not_registered)?;
    let nickname = account
        .user
        .nickname
        .clone()
        .filter(|_| link.scopes.contains(SCOPE_NICKNAME));
    let email_agreed = link.scopes.contains(SCOPE_EMAIL);
    let email = account.user.email.clone();
    let (has_email, email_needs_agreement, shown) = match email {
        None => (false, false, None),
        Some(_) if !email_agreed => (true, true, None),
        Some(email) => (true, false, Some(email)),
    };
    let shown_flags = shown.is_some();
    Ok(UserMe {
        id: kakao_id,
        connected_at: link.connected_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        properties: nickname.clone().map(|nickname| Properties { nickname }),
        kakao_account: KakaoAccount {
            profile_nickname_needs_agreement: nickname.is_none(),
            profile: nickname.map(|nickname| Profile {
                nickname,
                is_default_nickname: false,
            }),
            has_email,
            email_needs_agreement,
            is_email_valid: shown_flags.then_some(account.user.email_valid),
            is_email_verified: shown_flags.then_some(account.user.email_verified),
            email: shown,
        },
    })
}

/// `GET|POST /v2/user/me`.
pub(super) async fn user_me(standin: StandIn, req: HttpRequest, body: Bytes) -> HttpResponse {
    let fault = standin.enter(Endpoint::UserMe);
    if let Some(response) = reply::apply_fault(fault.as_ref()).await {
        return response;
    }
    let params = request_params(&req, &body);
    let result = {
        let state = standin.lock();
        authenticate(standin.config(), &state, &req, &params, true)
            .and_then(|caller| user_me_body(&state, caller.kakao_id()))
    };
    match result {
        Ok(me) => reply::json(200, &me),
        Err(err) => err.response(),
    }
}

/// `/v1/user/access_token_info` answer.
#[derive(Clone, Debug, Serialize)]
struct TokenInfo {
    id: i64,
    expires_in: u64,
    app_id: i64,
}

/// `GET /v1/user/access_token_info`.
pub(super) async fn access_token_info(
    standin: StandIn,
    req: HttpRequest,
    body: Bytes,
) -> HttpResponse {
    let fault = standin.enter(Endpoint::TokenInfo);
    if let Some(response) = reply::apply_fault(fault.as_ref()).await {
        return response;
    }
    let params = request_params(&req, &body);
    let result = {
        let state = standin.lock();
        authenticate(standin.config(), &state, &req, &params, false)
    };
    let app_id = match fault {
        Some(Fault::ForeignAppId(app_id)) => app_id,
        _ => standin.config().app_id,
    };
    match result {
        Ok(Caller::Token {
            kakao_id,
            remaining,
            ..
        }) => reply::json(
            200,
            &TokenInfo {
                id: kakao_id,
                expires_in: remaining.as_secs(),
                app_id,
            },
        ),
        Ok(Caller::Admin { .. }) => KapiError::token_does_not_exist().response(),
        Err(err) => err.response(),
    }
}

/// `{"id":N}`, the answer of logout and unlink.
#[derive(Clone, Debug, Serialize)]
struct IdOnly {
    id: i64,
}

/// `POST /v1/user/logout`: a token logs out itself (and its refresh token); the admin key logs
/// out every token of the target user.
pub(super) async fn logout(standin: StandIn, req: HttpRequest, body: Bytes) -> HttpResponse {
    let fault = standin.enter(Endpoint::Logout);
    if let Some(response) = reply::apply_fault(fault.as_ref()).await {
        return response;
    }
    let params = request_params(&req, &body);
    let result = {
        let mut state = standin.lock();
        authenticate(standin.config(), &state, &req, &params, true).map(|caller| {
            match &caller {
                Caller::Token { token, .. } => state.logout_token(token),
                Caller::Admin { kakao_id } => state.logout_user(*kakao_id),
            }
            caller.kakao_id()
        })
    };
    match result {
        Ok(id) => reply::json(200, &IdOnly { id }),
        Err(err) => err.response(),
    }
}

/// `POST /v1/user/unlink`: the user's consent, codes and tokens are gone.
pub(super) async fn unlink(standin: StandIn, req: HttpRequest, body: Bytes) -> HttpResponse {
    let fault = standin.enter(Endpoint::Unlink);
    if let Some(response) = reply::apply_fault(fault.as_ref()).await {
        return response;
    }
    let params = request_params(&req, &body);
    let result = {
        let mut state = standin.lock();
        authenticate(standin.config(), &state, &req, &params, true).map(|caller| {
            let id = caller.kakao_id();
            state.unlink_user(id);
            id
        })
    };
    match result {
        Ok(id) => reply::json(200, &IdOnly { id }),
        Err(err) => err.response(),
    }
}

/// One consent item of `/v2/user/scopes`.
#[derive(Clone, Debug, Serialize)]
struct ScopeInfo {
    id: &'static str,
    display_name: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    using: bool,
    agreed: bool,
    /// Present only for an agreed item (as Kakao documents).
    #[serde(skip_serializing_if = "Option::is_none")]
    revocable: Option<bool>,
}

/// `/v2/user/scopes` answer.
#[derive(Clone, Debug, Serialize)]
struct ScopesAnswer {
    id: i64,
    scopes: Vec<ScopeInfo>,
}

/// How `/v2/user/scopes` describes a configured item: display name, type, and whether it can be
/// revoked once agreed. The nickname is the app's required item (not revocable), the email an
/// optional one (revocable). Kakao's display name and type for `openid` are not documented: the
/// stand-in says "OpenID Connect", PRIVACY, not revocable.
fn scope_catalogue(id: &str) -> Option<(&'static str, &'static str, bool)> {
    match id {
        SCOPE_NICKNAME => Some(("닉네임", "PRIVACY", false)),
        SCOPE_EMAIL => Some(("카카오계정(이메일)", "PRIVACY", true)),
        SCOPE_OPENID => Some(("OpenID Connect", "PRIVACY", false)),
        _ => None,
    }
}

/// The `/v2/user/scopes` body for a linked user: every configured item (or those `filter`
/// names; ids the app has not configured are left out: Kakao's answer for them is unknown).
fn scopes_body(
    state: &State,
    kakao_id: i64,
    filter: Option<&[String]>,
) -> Result<ScopesAnswer, KapiError> {
    let link = state
        .links
        .get(&kakao_id)
        .ok_or_else(KapiError::not_registered)?;
    let scopes = configured_scopes(state.oidc)
        .into_iter()
        .filter(|id| filter.is_none_or(|f| f.iter().any(|w| w == id)))
        .filter_map(|id| {
            let (display_name, kind, revocable) = scope_catalogue(id)?;
            let agreed = link.scopes.contains(id);
            Some(ScopeInfo {
                id,
                display_name,
                kind,
                using: true,
                agreed,
                revocable: agreed.then_some(revocable),
            })
        })
        .collect();
    Ok(ScopesAnswer {
        id: kakao_id,
        scopes,
    })
}

/// The optional `scopes` parameter: a JSON array of item ids, or -2 when it is not one.
fn scope_filter(params: &Params) -> Result<Option<Vec<String>>, KapiError> {
    params
        .non_empty("scopes")
        .map(|raw| {
            serde_json::from_str::<Vec<String>>(raw).map_err(|_| {
                KapiError::new(400, -2, "scopes must be a JSON array of consent item ids.")
            })
        })
        .transpose()
}

/// `GET /v2/user/scopes`: the consent items and what the user agreed to, by token or admin key.
pub(super) async fn scopes(standin: StandIn, req: HttpRequest, body: Bytes) -> HttpResponse {
    let fault = standin.enter(Endpoint::Scopes);
    if let Some(response) = reply::apply_fault(fault.as_ref()).await {
        return response;
    }
    let params = request_params(&req, &body);
    let result = {
        let state = standin.lock();
        authenticate(standin.config(), &state, &req, &params, true).and_then(|caller| {
            let filter = scope_filter(&params)?;
            scopes_body(&state, caller.kakao_id(), filter.as_deref())
        })
    };
    match result {
        Ok(answer) => reply::json(200, &answer),
        Err(err) => err.response(),
    }
}

/// `/v1/user/ids` answer. `total_count` is deprecated on Kakao but still sent; the page URLs are
/// `null` when there is no such page.
#[derive(Clone, Debug, Serialize)]
struct UserIds {
    elements: Vec<i64>,
    total_count: usize,
    before_url: Option<String>,
    after_url: Option<String>,
}

/// `-2` for a bad `/v1/user/ids` parameter (Kakao's wording is unknown).
fn bad_ids_parameter(what: &str) -> KapiError {
    KapiError::new(400, -2, format!("invalid parameter: {what}"))
}

/// Whether the request carries `Authorization: KakaoAK <the admin key>`.
fn has_admin_key(config: &StandInConfig, req: &HttpRequest) -> bool {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let (scheme, credential) = value.split_once(' ').unwrap_or((value, ""));
    scheme.eq_ignore_ascii_case("KakaoAK")
        && config
            .admin_key
            .as_deref()
            .is_some_and(|key| key == credential.trim())
}

/// One page of the linked users' ids. `from_id` is exclusive (a page's `after_url` names its last
/// id); Kakao does not say. `before_url` lists the ids before this page's first one, nearest
/// first, so it reverses `order`; it is `null` for an empty page.
fn user_ids_page(state: &State, params: &Params) -> Result<UserIds, KapiError> {
    let limit = match params.non_empty("limit") {
        None => 100,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| bad_ids_parameter("limit must be 1-100"))?,
    };
    let ascending = match params.non_empty("order") {
        None | Some("asc") => true,
        Some("desc") => false,
        Some(_) => return Err(bad_ids_parameter("order must be asc or desc")),
    };
    let from_id = params
        .non_empty("from_id")
        .map(|raw| raw.parse::<i64>())
        .transpose()
        .map_err(|_| bad_ids_parameter("from_id must be a user id"))?;
    let mut ids: Vec<i64> = state.links.keys().copied().collect();
    ids.sort_unstable();
    if !ascending {
        ids.reverse();
    }
    let after = |id: i64, anchor: i64, asc: bool| if asc { id > anchor } else { id < anchor };
    let rest: Vec<i64> = ids
        .iter()
        .copied()
        .filter(|id| from_id.is_none_or(|from| after(*id, from, ascending)))
        .collect();
    let elements: Vec<i64> = rest.iter().copied().take(limit).collect();
    let url = |order: &str, from: i64| {
        format!(
            "{}/v1/user/ids?limit={limit}&order={order}&from_id={from}",
            state.issuer
        )
    };
    let (order, opposite) = if ascending {
        ("asc", "desc")
    } else {
        ("desc", "asc")
    };
    let after_url = elements
        .last()
        .filter(|_| rest.len() > elements.len())
        .map(|last| url(order, *last));
    let before_url = elements
        .first()
        .filter(|first| ids.iter().any(|id| after(*id, **first, !ascending)))
        .map(|first| url(opposite, *first));
    Ok(UserIds {
        elements,
        total_count: ids.len(),
        before_url,
        after_url,
    })
}

/// `GET /v1/user/ids`: the ids of the users linked to the app, admin key only. Without the right
/// admin key: `401 {"msg":"wrong admin key","code":-401}` (Kakao's exact message is unknown).
pub(super) async fn user_ids(standin: StandIn, req: HttpRequest, _body: Bytes) -> HttpResponse {
    let fault = standin.enter(Endpoint::UserIds);
    if let Some(response) = reply::apply_fault(fault.as_ref()).await {
        return response;
    }
    if !has_admin_key(standin.config(), &req) {
        return KapiError::new(401, -401, "wrong admin key").response();
    }
    let params = Params::parse(req.query_string().as_bytes());
    let result = user_ids_page(&standin.lock(), &params);
    match result {
        Ok(page) => reply::json(200, &page),
        Err(err) => err.response(),
    }
}
